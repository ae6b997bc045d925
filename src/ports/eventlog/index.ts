/**
 * The EventLog port: the durable, ordered log of every device-to-cloud message and system event. Telemetry is
 * appended here before the hub acknowledges it (MQTT PUBACK, HTTP 204), so an acknowledged message is never lost;
 * routing reads it behind the writer with its own checkpoints (ARCHITECTURE.md, "Telemetry in").
 *
 * Sequences are `number`s: positive safe integers, strictly increasing per log in append order, never reused, not
 * even after a trim emptied the log or a reopen (2^53 appends is beyond any log's life).
 */

export interface EventRecord {
  /** 'telemetry' | 'connectionState' | 'twinChange' | 'lifecycle' | … (free string; core owns the vocabulary) */
  readonly kind: string;
  readonly deviceId: string;
  /** '' for a device. */
  readonly moduleId: string;
  readonly enqueuedTimeMs: number;
  /** System properties (message-id, correlation-id, content-type, content-encoding, auth method, generation id, …) and application properties. */
  readonly properties: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
}

export interface StoredEvent extends EventRecord {
  /** Strictly increasing per log, in append order; see the module comment. */
  readonly sequence: number;
}

export interface ReadOptions {
  /** Only records with a greater sequence; 0 reads from the start. */
  readonly after: number;
  /** At most this many records; 0 or less gives none. */
  readonly limit: number;
  /** Only this device's records, its modules' included. */
  readonly deviceId?: string;
}

export interface TrimOptions {
  /** Remove the records enqueued more than this long before `nowMs`, oldest first (see EventLog.trim). */
  readonly olderThanMs?: number;
  /** Keep at most this many records, the newest. */
  readonly maxRecords?: number;
  readonly nowMs: number;
}

export interface EventLog {
  /**
   * Appends durably (fsync'd per the adapter's rule) and resolves with the sequence numbers, in order. Concurrent
   * callers are batched into one commit (group commit); one call's records are committed together or not at all,
   * and calls are ordered as they were made. The records must not be mutated until the promise settles.
   * Rejects with InvalidEventRecord (nothing of that call stored, other callers unaffected), EventLogWriteFailed
   * (the commit failed: nothing of its batch stored) or EventLogClosed.
   */
  append(records: readonly EventRecord[]): Promise<number[]>;
  /** Reads committed records with sequence > after, up to limit, optionally for one device, in sequence order. */
  read(opts: ReadOptions): Promise<StoredEvent[]>;
  /** Highest sequence committed, 0 if none was ever appended; a trim does not lower it. */
  lastSequence(): Promise<number>;
  /**
   * A sequence to read after so that the first records read are the ones enqueued at or after `timeMs`: the last
   * sequence enqueued before it (records are enqueued in nearly sequence order; a record a few ms out of order may
   * come before), 0 when the log's first retained record is not older, lastSequence() when none is as new.
   */
  seekTime(timeMs: number): Promise<number>;
  /**
   * Deletes records older than the given age or beyond the given total count (retention); returns how many were
   * removed. Only a prefix of the log is removed, so what remains is always a contiguous run of sequences: age is
   * judged in sequence order, stopping at the first record not older than the cutoff.
   */
  trim(opts: TrimOptions): Promise<number>;
  /** Commits pending appends first; afterwards every call rejects with EventLogClosed. Idempotent. */
  close(): Promise<void>;
}

/** What a consumer reads: one partition of the cluster's log (see EventLogSet). */
export type EventLogReader = Pick<EventLog, 'read' | 'lastSequence' | 'seekTime'>;

/**
 * The cluster's log as partitions, Event Hubs' way: each node appends to a partition of its own (one writer per
 * partition keeps commits all-or-nothing, see jetstream/commit-protocol.ts), and any node reads every partition.
 * Records are ordered within a partition; a device is on one node at a time, so its records are in order too.
 */
export interface EventLogSet {
  /** This node's partition name ('0' for the embedded log). */
  readonly localPartition: string;
  /** This node's partition, for appends. */
  readonly local: EventLog;
  /** Every partition with records or a writer, this node's included, sorted. */
  partitions(): Promise<string[]>;
  /** A reader of a partition, this node's included (the same object for the same name). */
  reader(partition: string): EventLogReader;
  /** Closes the readers and the local log. */
  close(): Promise<void>;
}

/** The log was closed before the call. */
export class EventLogClosed extends Error {
  constructor() {
    super('the event log is closed');
    this.name = new.target.name;
  }
}

/** A commit failed; none of the records of its batch was stored. */
export class EventLogWriteFailed extends Error {
  constructor(records: number, options?: ErrorOptions) {
    super(`the event log could not commit a batch of ${records} records; none of them was stored`, options);
    this.name = new.target.name;
  }
}

/** EventLogSet.reader or its calls: no partition of that name (the set has none, or its stream is gone). */
export class UnknownPartition extends Error {
  constructor(partition: string, detail: string) {
    super(`no event log partition '${partition}': ${detail}`);
    this.name = new.target.name;
  }
}

/** A record does not have the EventRecord shape; names the field and the value seen. */
export class InvalidEventRecord extends Error {
  constructor(index: number, field: string, seen: unknown) {
    super(`event record ${index}: ${field} is invalid (got ${describe(seen)})`);
    this.name = new.target.name;
  }
}

/**
 * Checks one record of an append (its position in the call is `index`) and throws InvalidEventRecord naming the
 * first bad field; every adapter checks before it batches, so a bad record fails its own call only.
 */
export function checkEventRecord(r: EventRecord, index: number): void {
  if (typeof r.kind !== 'string' || r.kind === '') throw new InvalidEventRecord(index, 'kind', r.kind);
  if (typeof r.deviceId !== 'string') throw new InvalidEventRecord(index, 'deviceId', r.deviceId);
  if (typeof r.moduleId !== 'string') throw new InvalidEventRecord(index, 'moduleId', r.moduleId);
  if (!Number.isFinite(r.enqueuedTimeMs)) throw new InvalidEventRecord(index, 'enqueuedTimeMs', r.enqueuedTimeMs);
  if (!(r.body instanceof Uint8Array)) throw new InvalidEventRecord(index, 'body', r.body);
  const props: unknown = r.properties;
  if (typeof props !== 'object' || props === null) throw new InvalidEventRecord(index, 'properties', props);
  for (const [key, value] of Object.entries(props)) {
    if (typeof value !== 'string') throw new InvalidEventRecord(index, `properties['${key}']`, value);
  }
}

/** What seekBySequence probes: a record's place and time. */
export type RecordTime = Pick<StoredEvent, 'sequence' | 'enqueuedTimeMs'>;

/**
 * EventLog.seekTime as a binary search over sequences 1..`last` (the highest committed), for adapters with cheap point
 * reads and no index on time: `firstFrom(seq)` gives the first retained record with a sequence ≥ seq, if any (gaps,
 * a trimmed prefix and records above `last` are all fine). O(log last) probes. Throws RangeError for a NaN time.
 */
export async function seekBySequence(timeMs: number, last: number,
  firstFrom: (sequence: number) => Promise<RecordTime | undefined>): Promise<number> {
  if (Number.isNaN(timeMs)) throw new RangeError('seekTime needs a time in ms, got NaN');
  // Invariant, taking the records as ordered by time: those below `lo` are older than timeMs, and the first at or
  // after `hi` is not (or none is, up to last).
  let lo = 1;
  let hi = last + 1;
  let sawOlder = false;
  let sawNewer = false;
  while (lo < hi) {
    const mid = lo + Math.floor((hi - lo) / 2);
    const r = await firstFrom(mid);
    if (r === undefined || r.sequence >= hi) {
      hi = mid;
    } else if (r.enqueuedTimeMs >= timeMs) {
      hi = r.sequence;
      sawNewer = true;
    } else {
      lo = r.sequence + 1;
      sawOlder = true;
    }
  }
  if (!sawNewer) return last;
  return sawOlder ? hi - 1 : 0;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return `'${value.length > 40 ? value.slice(0, 40) + '…' : value}'`;
  if (value === null || typeof value !== 'object') return String(value);
  return value.constructor?.name ?? 'object';
}
