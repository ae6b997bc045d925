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
   * Deletes records older than the given age or beyond the given total count (retention); returns how many were
   * removed. Only a prefix of the log is removed, so what remains is always a contiguous run of sequences: age is
   * judged in sequence order, stopping at the first record not older than the cutoff.
   */
  trim(opts: TrimOptions): Promise<number>;
  /** Commits pending appends first; afterwards every call rejects with EventLogClosed. Idempotent. */
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

function describe(value: unknown): string {
  if (typeof value === 'string') return `'${value.length > 40 ? value.slice(0, 40) + '…' : value}'`;
  if (value === null || typeof value !== 'object') return String(value);
  return value.constructor?.name ?? 'object';
}
