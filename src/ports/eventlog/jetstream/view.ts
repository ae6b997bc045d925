import type { JetStreamClient, JetStreamManager, JsMsg, NatsConnection, SeqMsgRequest } from 'nats';
import {
  EventLogClosed, UnknownPartition, seekBySequence,
  type ReadOptions, type RecordTime, type StoredEvent,
} from '../index.js';
import { deviceFilter, recordsFilter, toStoredEvent } from './codec.js';
import { apiErrorCode, NO_MESSAGE_FOUND, scan, type ScanLimits } from './stream.js';

/** NATS's default max_payload, should the server not say. */
const DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024;

/** The largest message the server takes on `nc`. */
export function maxPayloadOf(nc: NatsConnection): number {
  return nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD_BYTES;
}

/** Scan bounds on `nc`: a pull's byte bound well above the largest message, which the server would otherwise refuse to send (409). */
export function scanLimits(nc: NatsConnection, timeoutMs: number): ScanLimits {
  return { maxFetchBytes: Math.max(16 * 1024 * 1024, 2 * maxPayloadOf(nc)), timeoutMs };
}

/**
 * Reads of one stream's records up to a committed sequence the caller gives: what the writing log and a read-only
 * reader of another node's partition share. Never publishes or changes the stream; scans use ephemeral consumers.
 * Tracks its calls so a closing owner can wait for them.
 */
export class StreamView {
  private readonly prefixTokens: number;
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    readonly stream: string,
    private readonly prefix: string,
    private readonly limits: ScanLimits,
  ) {
    this.prefixTokens = prefix.split('.').length;
  }

  /** EventLog.read below `to`, the highest committed sequence. */
  async read(opts: ReadOptions, to: number): Promise<StoredEvent[]> {
    const limit = Math.floor(opts.limit);
    if (!(limit > 0) || opts.after >= to) return [];
    const filter = opts.deviceId === undefined ? recordsFilter(this.prefix) : deviceFilter(this.prefix, opts.deviceId);
    const out: StoredEvent[] = [];
    await scan(this.js, this.jsm, this.stream, {
      from: Math.floor(opts.after) + 1, to, filter, headersOnly: false, limit, ...this.limits,
    }, (msg) => {
      out.push(this.decode(msg));
      return true;
    });
    return out;
  }

  /**
   * EventLog.seekTime below `to`: a binary search of point gets, one round trip each, judging the records' own
   * enqueued times. (Not the server's start-time lookups: those judge when the server stored a message, which is
   * not the record's enqueuedTimeMs, and nats-server 2.9 offers them to consumers only.)
   */
  seekTime(timeMs: number, to: number): Promise<number> {
    return seekBySequence(timeMs, to, (seq) => this.firstFrom(seq));
  }

  /** The sequence of the first record (in sequence order) enqueued at or after cutoffMs; upTo + 1 if none is. */
  async firstNotBefore(cutoffMs: number, upTo: number): Promise<number> {
    let found = upTo + 1;
    await scan(this.js, this.jsm, this.stream, {
      from: 1, to: upTo, filter: recordsFilter(this.prefix), headersOnly: true, limit: Number.MAX_SAFE_INTEGER,
      ...this.limits,
    }, (msg) => {
      if (this.decode(msg).enqueuedTimeMs < cutoffMs) return true;
      found = msg.seq;
      return false;
    });
    return found;
  }

  /** Runs a call so settled() can wait for it, naming the stream in its failure (the port's own errors pass as they are). */
  async track<T>(what: string, work: () => Promise<T>): Promise<T> {
    const running = work();
    this.inFlight.add(running);
    try {
      return await running;
    } catch (err) {
      if (err instanceof UnknownPartition || err instanceof EventLogClosed || err instanceof RangeError) throw err;
      throw new Error(`event log stream '${this.stream}': ${what} failed: ${messageOf(err)}`, { cause: err });
    } finally {
      this.inFlight.delete(running);
    }
  }

  /** Resolves once every tracked call has settled. */
  async settled(): Promise<void> {
    await Promise.allSettled(this.inFlight);
  }

  /**
   * The first record stored at or after `seq`, if any. MSG.GET's next_by_subj (nats-server 2.9) skips deleted
   * sequences; nats.js 2.29 types the request without it, hence the cast.
   */
  private async firstFrom(seq: number): Promise<RecordTime | undefined> {
    try {
      const m = await this.jsm.streams.getMessage(this.stream, { seq, next_by_subj: recordsFilter(this.prefix) } as SeqMsgRequest);
      return toStoredEvent(this.prefixTokens, m.seq, m.subject, m.header, m.data, () => m.time.getTime());
    } catch (err) {
      if (apiErrorCode(err) === NO_MESSAGE_FOUND) return undefined;
      throw err;
    }
  }

  private decode(msg: JsMsg): StoredEvent {
    return toStoredEvent(this.prefixTokens, msg.seq, msg.subject, msg.headers, msg.data,
      () => Math.floor(msg.info.timestampNanos / 1e6));
  }
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
