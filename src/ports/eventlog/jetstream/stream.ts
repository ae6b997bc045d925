import {
  AckPolicy, DeliverPolicy, DiscardPolicy, NatsError, nanos, RetentionPolicy, StorageType,
  type JetStreamClient, type JetStreamManager, type JsMsg, type StreamConfig, type StreamInfo, type StreamState,
} from 'nats';

/** JetStream's err_code for "stream not found" (nats-server errors.json, JSStreamNotFoundErr). */
export const STREAM_NOT_FOUND = 10059;
/** JetStream's err_code for "no message found" (JSNoMessageFoundErr): a get of a sequence that holds none. */
export const NO_MESSAGE_FOUND = 10037;
/** JetStream's err_code for "stream name already in use" (JSStreamNameExistErr): another opener created it first. */
const STREAM_NAME_EXISTS = 10058;
/** The server's default duplicate window (2 min); it may not exceed max_age. We send no Nats-Msg-Id (commit-protocol.ts). */
const DEFAULT_DUPLICATE_WINDOW_MS = 120_000;
/** Records per pull request of a scan: bounded, so a large read arrives in steps rather than all at once. */
const FETCH_MAX_MESSAGES = 1000;
/** An idle scan consumer is removed by the server after this, should our delete not reach it. */
const SCAN_CONSUMER_IDLE_MS = 30_000;

/** What the log asks of its stream; see JetStreamEventLogOptions. */
export interface StreamSettings {
  readonly name: string;
  readonly subjects: string;
  readonly maxAgeMs: number | undefined;
  readonly maxBytes: number | undefined;
  readonly replicas: number | undefined;
  /** Set on the stream when given (a set's partitions are named there); an existing one is left when absent. */
  readonly description?: string;
}

/**
 * Creates the stream (file storage, limits retention, discard old: the stream's own retention removes the oldest
 * records, a prefix, as trim does), or binds to it and brings its retention and replicas to the settings. Throws,
 * naming the stream and what is wrong, when an existing stream holds other subjects or keeps its messages in memory.
 */
export async function ensureStream(jsm: JetStreamManager, s: StreamSettings): Promise<StreamInfo> {
  const limits = {
    max_age: nanos(s.maxAgeMs ?? 0),
    max_bytes: s.maxBytes ?? -1,
    num_replicas: s.replicas ?? 1,
    duplicate_window: nanos(Math.min(DEFAULT_DUPLICATE_WINDOW_MS, s.maxAgeMs || DEFAULT_DUPLICATE_WINDOW_MS)),
  };
  const described = s.description === undefined ? {} : { description: s.description };
  let info = await streamInfo(jsm, s.name);
  if (info === undefined) {
    try {
      return await jsm.streams.add({
        name: s.name, subjects: [s.subjects], storage: StorageType.File, retention: RetentionPolicy.Limits,
        discard: DiscardPolicy.Old, ...limits, ...described,
      });
    } catch (err) {
      if (apiErrorCode(err) !== STREAM_NAME_EXISTS) throw err;
      info = await streamInfo(jsm, s.name);
      if (info === undefined) throw err;
    }
  }
  const c = info.config;
  if (!c.subjects?.includes(s.subjects)) {
    throw new Error(`stream '${s.name}' exists with subjects [${(c.subjects ?? []).join(', ')}], not '${s.subjects}': `
      + 'choose another stream name or subject prefix');
  }
  if (c.storage !== StorageType.File) {
    throw new Error(`stream '${s.name}' exists with ${c.storage} storage; the event log needs file storage`);
  }
  const isSame = c.max_age === limits.max_age && c.max_bytes === limits.max_bytes && c.num_replicas === limits.num_replicas
    && (s.description === undefined || c.description === s.description);
  if (isSame) return info;
  const { name: _name, ...rest } = c;
  const update: Partial<StreamConfig> = { ...rest, ...limits, ...described };
  return jsm.streams.update(s.name, update);
}

async function streamInfo(jsm: JetStreamManager, name: string): Promise<StreamInfo | undefined> {
  try {
    return await jsm.streams.info(name);
  } catch (err) {
    if (apiErrorCode(err) === STREAM_NOT_FOUND) return undefined;
    throw err;
  }
}

/** The JetStream err_code of a failed API request (nats-server errors.json), if it is one. */
export function apiErrorCode(err: unknown): number | undefined {
  return err instanceof NatsError ? err.api_error?.err_code : undefined;
}

/** The highest sequence that holds a message (interior deletes skipped; needs `deleted_details`), if any does. */
export function lastStoredSequence(state: StreamState): number | undefined {
  if (state.messages === 0) return undefined;
  const deleted = new Set(state.deleted ?? []);
  for (let seq = state.last_seq; seq >= state.first_seq; seq--) if (!deleted.has(seq)) return seq;
  return undefined;
}

/**
 * The lowest sequence to keep so that at most `keep` of the messages at or below `upTo` remain: counts messages, not
 * sequences, since a deleted message (commit-protocol.ts) leaves a gap. Needs `deleted_details`. (The server's
 * `purge({ keep })` counts sequences and would remove too many across a gap.)
 */
export function keepCut(state: StreamState, upTo: number, keep: number): number {
  const gaps = (state.deleted ?? []).filter((s) => s >= state.first_seq && s <= upTo).sort((a, b) => b - a);
  let cut = upTo + 1;
  let need = Math.max(0, Math.floor(keep));
  let g = 0;
  while (need > 0 && cut > state.first_seq) {
    while (g < gaps.length && gaps[g] >= cut) g++;
    const below = g < gaps.length ? gaps[g] : state.first_seq - 1;
    const stored = cut - 1 - below;
    if (stored >= need) return cut - need;
    need -= stored;
    cut = below;
  }
  return cut;
}

/** How a scan's pulls are bounded. */
export interface ScanLimits {
  /** At least the largest message, else the server refuses the pull (409) rather than send it. */
  readonly maxFetchBytes: number;
  /** A pull that gets no answer (its request lost with the connection, say) ends after this. */
  readonly timeoutMs: number;
}

/** Which messages a scan visits. */
export interface ScanRange extends ScanLimits {
  /** Lowest sequence; below the stream's first means from the first. */
  readonly from: number;
  /** Highest sequence: later messages (a commit in flight) are not visited. */
  readonly to: number;
  readonly filter: string;
  /** Headers without bodies, for scans that judge records by their headers. */
  readonly headersOnly: boolean;
  readonly limit: number;
}

/**
 * Visits the messages in `range`, in sequence order, until `visit` returns false. Through an ephemeral pull consumer
 * (in memory, no acks), fetched with no_wait so each pull ends at once at the end of what is stored, and deleted
 * afterwards; its creation reports how many messages match, so a scan with none costs one round trip.
 */
export async function scan(js: JetStreamClient, jsm: JetStreamManager, stream: string, range: ScanRange,
  visit: (msg: JsMsg) => boolean): Promise<void> {
  if (!(range.limit > 0) || range.from > range.to) return;
  const consumer = await jsm.consumers.add(stream, {
    ack_policy: AckPolicy.None, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: Math.max(1, range.from),
    filter_subject: range.filter, headers_only: range.headersOnly, mem_storage: true, num_replicas: 1,
    inactive_threshold: nanos(SCAN_CONSUMER_IDLE_MS),
  });
  try {
    let left = Math.min(range.limit, consumer.num_pending);
    while (left > 0) {
      let got = 0;
      let pending = 0;
      let isDone = false;
      // no_wait: the server answers at once with what it has. (With nothing at all it would wait for `expires`, but
      // a pull is only made while the consumer counts messages still to come.) js.fetch, though nats.js 2.x marks it
      // deprecated, because the Consumer API that replaces it has no no_wait.
      const pull = js.fetch(stream, consumer.name, {
        batch: Math.min(left, FETCH_MAX_MESSAGES), max_bytes: range.maxFetchBytes, no_wait: true, expires: range.timeoutMs,
      });
      // Every message of the pull is taken off the iterator, even after the end, so its subscription ends cleanly.
      for await (const msg of pull) {
        got++;
        pending = msg.info.pending;
        if (isDone) continue;
        if (msg.seq > range.to || !visit(msg)) isDone = true;
        else if (--left === 0 || msg.seq === range.to) isDone = true;
      }
      if (isDone || got === 0 || pending === 0) return;
    }
  } finally {
    jsm.consumers.delete(stream, consumer.name).catch(() => undefined); // else the server removes it when idle
  }
}
