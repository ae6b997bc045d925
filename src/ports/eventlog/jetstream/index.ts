import { randomBytes } from 'node:crypto';
import { connect, type JetStreamClient, type JetStreamManager, type JsMsg, type NatsConnection } from 'nats';
import { redactUrl } from '../../bus/nats/index.js';
import {
  EventLogClosed,
  type EventLog, type EventRecord, type ReadOptions, type StoredEvent, type TrimOptions,
} from '../index.js';
import { deviceFilter, recordBytesLimit, recordsFilter, toOutgoing, toStoredEvent, type OutgoingRecord } from './codec.js';
import { StreamWriter } from './commit-protocol.js';
import { Committer, type CommitterStats } from './committer.js';
import { Publisher } from './publisher.js';
import { ensureStream, keepCut, scan, type ScanLimits } from './stream.js';

const DEFAULT_STREAM = 'CORRAL_EVENTS';
/** nats.js's own default for JetStream requests. */
const DEFAULT_COMMIT_TIMEOUT_MS = 5000;
/** NATS's default max_payload, should the server not say. */
const DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024;
/** How long close() lets a drain of its own connection run: a drain waits on the server, which may be gone. */
const DRAIN_LIMIT_MS = 5000;

export interface JetStreamEventLogOptions {
  /** `nats://[user:pass@]host:port`: the log opens its own connection and drains it on close. */
  readonly natsUrl?: string;
  /** Or a connection the caller owns (shared with the Bus, say); close leaves it open. Exactly one of the two. */
  readonly connection?: NatsConnection;
  /** Default 'CORRAL_EVENTS'. One event log writes to a stream (commit-protocol.ts); a cluster gives each node its own. */
  readonly stream?: string;
  /** Subjects are `<subjectPrefix>.<kind>.<device>.<module>`; no other stream may hold them. E.g. 'corral.events.node-1'. */
  readonly subjectPrefix: string;
  /** The stream drops records stored longer ago than this (the stream's max_age); none when absent. At least 1000. */
  readonly maxAgeMs?: number;
  /** The stream drops its oldest records beyond this size (max_bytes); none when absent. */
  readonly maxBytes?: number;
  /** Default 1. Stream replicas in a JetStream cluster (3 for a production cluster: an ack then means a quorum has it). */
  readonly replicas?: number;
  /** Default 5000. How long a commit waits for the server's acks before it fails; bounds every other request too. */
  readonly commitTimeoutMs?: number;
  /** Default 5000. Records per commit (one append's are never split), so one commit's acks return in a few ms. */
  readonly maxBatchRecords?: number;
  /** Default 8 MiB. Bytes per commit, bounding what is in flight. */
  readonly maxBatchBytes?: number;
  /** The connection's name as the server shows it, when the log opens its own. */
  readonly connectionName?: string;
}

/**
 * The scale-out EventLog on a NATS JetStream stream (nats-server 2.9 or later): one message per record, the stream
 * sequence as the record's sequence, group-committed appends made all-or-nothing by commit-protocol.ts, reads through
 * ephemeral consumers (a device's filtered on the server by subject), trims as purges of a prefix.
 *
 * Durability is the server's: an ack means the message is in the stream's file (and, with replicas, on a quorum).
 * nats-server writes it before acking but fsyncs only every 2 minutes by default: 2.9 has no setting for it (it rejects
 * `sync_interval`), later servers take `jetstream { sync_interval: always }`. So on one server an acknowledged record
 * survives a crash of the process but not of the machine; replicas (or that setting) are what cover the machine.
 */
export class JetStreamEventLog implements EventLog {
  private readonly committer: Committer<OutgoingRecord>;
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly prefixTokens: number;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly ownsConnection: boolean,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly publisher: Publisher,
    private readonly writer: StreamWriter,
    private readonly stream: string,
    private readonly prefix: string,
    private readonly maxMessageBytes: number,
    private readonly limits: ScanLimits,
    opts: JetStreamEventLogOptions,
  ) {
    this.prefixTokens = prefix.split('.').length;
    this.committer = new Committer<OutgoingRecord>((rows) => writer.commit(rows), (row) => row.bytes, {
      maxBatchRecords: opts.maxBatchRecords ?? 5000,
      maxBatchBytes: opts.maxBatchBytes ?? 8 * 1024 * 1024,
    });
  }

  /**
   * Connects (unless given a connection), creates the stream or binds to it (setting its max age, max bytes and
   * replicas to the options), and deletes an incomplete commit a stopped writer left at its tail. Throws RangeError for
   * bad options, or an Error naming the server or the stream when either refuses.
   */
  static async open(opts: JetStreamEventLogOptions): Promise<JetStreamEventLog> {
    checkOptions(opts);
    const stream = opts.stream ?? DEFAULT_STREAM;
    const nc = opts.connection ?? await connectTo(opts.natsUrl ?? '', opts.connectionName);
    let publisher: Publisher | undefined;
    try {
      // The commit timeout bounds every request to the server, settling a failed commit's included.
      const timeout = opts.commitTimeoutMs ?? DEFAULT_COMMIT_TIMEOUT_MS;
      const jsm = await nc.jetstreamManager({ timeout });
      const js = nc.jetstream({ timeout });
      const info = await ensureStream(jsm, {
        name: stream, subjects: recordsFilter(opts.subjectPrefix),
        maxAgeMs: opts.maxAgeMs, maxBytes: opts.maxBytes, replicas: opts.replicas,
      });
      const maxPayload = nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD_BYTES;
      const maxMsgSize = info.config.max_msg_size ?? -1;
      const maxMessageBytes = maxMsgSize > 0 ? Math.min(maxPayload, maxMsgSize) : maxPayload;
      // A pull's byte bound: well above the largest message, which the server would otherwise refuse to send (409).
      const limits: ScanLimits = { maxFetchBytes: Math.max(16 * 1024 * 1024, 2 * maxPayload), timeoutMs: timeout };
      publisher = await Publisher.start(nc);
      const writer = await StreamWriter.open(js, jsm, publisher, {
        stream, prefix: opts.subjectPrefix, writer: randomBytes(6).toString('hex'), limits,
      });
      return new JetStreamEventLog(nc, opts.connection === undefined, js, jsm, publisher, writer, stream,
        opts.subjectPrefix, maxMessageBytes, limits, opts);
    } catch (err) {
      publisher?.stop();
      if (opts.connection === undefined) await nc.close().catch(() => undefined);
      throw new Error(`cannot open the event log on stream '${stream}': ${messageOf(err)}`, { cause: err });
    }
  }

  /**
   * The largest record this log stores: body, properties and subject (the server's max_payload, or the stream's
   * max_msg_size if smaller, less room for headers). A larger one fails its append with InvalidEventRecord, so the hub
   * should check at start that its largest device-to-cloud message fits.
   */
  get maxRecordBytes(): number {
    return recordBytesLimit(this.maxMessageBytes);
  }

  /** Commit counters since open. */
  get stats(): CommitterStats {
    return this.committer.stats;
  }

  async append(records: readonly EventRecord[]): Promise<number[]> {
    this.assertOpen();
    const rows = records.map((r, i) => toOutgoing(this.prefix, r, i, this.maxMessageBytes));
    if (rows.length === 0) return [];
    return this.committer.submit(rows);
  }

  async read(opts: ReadOptions): Promise<StoredEvent[]> {
    this.assertOpen();
    const limit = Math.floor(opts.limit);
    const to = this.writer.committed;
    if (!(limit > 0) || opts.after >= to) return [];
    const filter = opts.deviceId === undefined ? recordsFilter(this.prefix) : deviceFilter(this.prefix, opts.deviceId);
    const out: StoredEvent[] = [];
    await this.track('read', scan(this.js, this.jsm, this.stream, {
      from: Math.floor(opts.after) + 1, to, filter, headersOnly: false, limit, ...this.limits,
    }, (msg) => {
      out.push(this.decode(msg));
      return true;
    }));
    return out;
  }

  async lastSequence(): Promise<number> {
    this.assertOpen();
    return this.writer.committed;
  }

  /**
   * Purges the prefix below the first record to keep. Runs beside commits: everything it judges or removes is at or
   * below the committed sequence it started with, and only trims remove committed records.
   */
  async trim(opts: TrimOptions): Promise<number> {
    this.assertOpen();
    return this.track('trim', this.trimPrefix(opts));
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.committer.idle();
      await Promise.allSettled(this.inFlight);
      await this.writer.tidy();
      this.publisher.stop();
      if (this.ownsConnection) await drain(this.nc);
    })();
    return this.closing;
  }

  private async trimPrefix(opts: TrimOptions): Promise<number> {
    const upTo = this.writer.committed;
    const { state } = await this.jsm.streams.info(this.stream, { deleted_details: opts.maxRecords !== undefined });
    if (state.messages === 0) return 0;
    let cut = state.first_seq;
    if (opts.maxRecords !== undefined) cut = Math.max(cut, keepCut(state, upTo, opts.maxRecords));
    if (opts.olderThanMs !== undefined) cut = Math.max(cut, await this.firstNotBefore(opts.nowMs - opts.olderThanMs, upTo));
    cut = Math.min(cut, upTo + 1);
    if (cut <= state.first_seq) return 0;
    return (await this.jsm.streams.purge(this.stream, { seq: cut })).purged;
  }

  /** The sequence of the first record (in sequence order) enqueued at or after cutoffMs; upTo + 1 if none is. */
  private async firstNotBefore(cutoffMs: number, upTo: number): Promise<number> {
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

  private decode(msg: JsMsg): StoredEvent {
    return toStoredEvent(this.prefixTokens, msg.seq, msg.subject, msg.headers, msg.data,
      () => Math.floor(msg.info.timestampNanos / 1e6));
  }

  /** Runs a read or trim so close() can wait for it, naming the stream in its failure. */
  private async track<T>(what: string, work: Promise<T>): Promise<T> {
    this.inFlight.add(work);
    try {
      return await work;
    } catch (err) {
      throw new Error(`event log stream '${this.stream}': ${what} failed: ${messageOf(err)}`, { cause: err });
    } finally {
      this.inFlight.delete(work);
    }
  }

  private assertOpen(): void {
    if (this.closing !== undefined) throw new EventLogClosed();
  }
}

async function connectTo(url: string, name: string | undefined): Promise<NatsConnection> {
  try {
    return await connect({ servers: url, maxReconnectAttempts: -1, ...(name === undefined ? {} : { name }) });
  } catch (err) {
    throw new Error(`cannot connect to NATS at ${redactUrl(url)}: ${messageOf(err)}`, { cause: err });
  }
}

async function drain(nc: NatsConnection): Promise<void> {
  if (nc.isClosed()) return;
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<void>((resolve) => { timer = setTimeout(resolve, DRAIN_LIMIT_MS); });
  await Promise.race([nc.drain().catch(() => undefined), limit]);
  clearTimeout(timer);
  if (!nc.isClosed()) await nc.close().catch(() => undefined);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

const STREAM_NAME = /^[A-Za-z0-9_-]+$/;
const PREFIX_TOKEN = /^[^\s\x00-\x1f\x7f.*>]+$/;

function checkOptions(o: JetStreamEventLogOptions): void {
  if ((o.natsUrl === undefined) === (o.connection === undefined)) {
    throw new RangeError('give exactly one of natsUrl and connection');
  }
  if (o.stream !== undefined && !STREAM_NAME.test(o.stream)) {
    throw new RangeError(`stream must be letters, digits, '_' and '-', got '${o.stream}'`);
  }
  if (typeof o.subjectPrefix !== 'string' || !o.subjectPrefix.split('.').every((t) => PREFIX_TOKEN.test(t))) {
    throw new RangeError(`subjectPrefix must be '.'-separated tokens without wildcards or whitespace, got '${o.subjectPrefix}'`);
  }
  const positive = (name: string, v: number | undefined, min: number): void => {
    if (v !== undefined && !(Number.isSafeInteger(v) && v >= min)) throw new RangeError(`${name} must be an integer ≥ ${min}, got ${v}`);
  };
  positive('maxAgeMs', o.maxAgeMs, 1000);
  positive('maxBytes', o.maxBytes, 1);
  positive('replicas', o.replicas, 1);
  positive('commitTimeoutMs', o.commitTimeoutMs, 1);
  positive('maxBatchRecords', o.maxBatchRecords, 1);
  positive('maxBatchBytes', o.maxBatchBytes, 1);
}
