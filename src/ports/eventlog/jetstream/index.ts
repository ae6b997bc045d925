import { randomBytes } from 'node:crypto';
import { connect, type JetStreamManager, type NatsConnection } from 'nats';
import { redactUrl } from '../../bus/nats/index.js';
import {
  EventLogClosed, UnknownPartition,
  type EventLog, type EventLogReader, type EventLogSet, type EventRecord, type ReadOptions, type StoredEvent,
  type TrimOptions,
} from '../index.js';
import { recordBytesLimit, recordsFilter, toOutgoing, type OutgoingRecord } from './codec.js';
import { StreamWriter } from './commit-protocol.js';
import { Committer, type CommitterStats } from './committer.js';
import {
  isPartitionName, listPartitions, partitionDescription, partitionOf, streamOf, subjectPrefixOf, type PartitionNaming,
} from './partitions.js';
import { Publisher } from './publisher.js';
import { JetStreamPartitionReader } from './reader.js';
import { ensureStream, keepCut } from './stream.js';
import { maxPayloadOf, messageOf, scanLimits, StreamView } from './view.js';

export { partitionOf } from './partitions.js';
export { JetStreamPartitionReader } from './reader.js';

const DEFAULT_STREAM = 'CORRAL_EVENTS';
const DEFAULT_SUBJECT_PREFIX = 'corral.events';
/** nats.js's own default for JetStream requests. */
const DEFAULT_COMMIT_TIMEOUT_MS = 5000;
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
  /** Set as the stream's description (a set names its partition there); an existing one is left when absent. */
  readonly description?: string;
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
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly ownsConnection: boolean,
    private readonly jsm: JetStreamManager,
    private readonly publisher: Publisher,
    private readonly writer: StreamWriter,
    private readonly view: StreamView,
    private readonly stream: string,
    private readonly prefix: string,
    private readonly maxMessageBytes: number,
    opts: JetStreamEventLogOptions,
  ) {
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
        maxAgeMs: opts.maxAgeMs, maxBytes: opts.maxBytes, replicas: opts.replicas, description: opts.description,
      });
      const maxPayload = maxPayloadOf(nc);
      const maxMsgSize = info.config.max_msg_size ?? -1;
      const maxMessageBytes = maxMsgSize > 0 ? Math.min(maxPayload, maxMsgSize) : maxPayload;
      const limits = scanLimits(nc, timeout);
      publisher = await Publisher.start(nc);
      const writer = await StreamWriter.open(js, jsm, publisher, {
        stream, prefix: opts.subjectPrefix, writer: randomBytes(6).toString('hex'), limits,
      });
      const view = new StreamView(js, jsm, stream, opts.subjectPrefix, limits);
      return new JetStreamEventLog(nc, opts.connection === undefined, jsm, publisher, writer, view, stream,
        opts.subjectPrefix, maxMessageBytes, opts);
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
    const to = this.writer.committed;
    return this.view.track('read', () => this.view.read(opts, to));
  }

  async lastSequence(): Promise<number> {
    this.assertOpen();
    return this.writer.committed;
  }

  /** A binary search of point gets by sequence, judging the records' own enqueued times (StreamView.seekTime). */
  async seekTime(timeMs: number): Promise<number> {
    this.assertOpen();
    const to = this.writer.committed;
    return this.view.track('seek', () => this.view.seekTime(timeMs, to));
  }

  /**
   * Purges the prefix below the first record to keep. Runs beside commits: everything it judges or removes is at or
   * below the committed sequence it started with, and only trims remove committed records.
   */
  async trim(opts: TrimOptions): Promise<number> {
    this.assertOpen();
    return this.view.track('trim', () => this.trimPrefix(opts));
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.committer.idle();
      await this.view.settled();
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
    if (opts.olderThanMs !== undefined) cut = Math.max(cut, await this.view.firstNotBefore(opts.nowMs - opts.olderThanMs, upTo));
    cut = Math.min(cut, upTo + 1);
    if (cut <= state.first_seq) return 0;
    return (await this.jsm.streams.purge(this.stream, { seq: cut })).purged;
  }

  private assertOpen(): void {
    if (this.closing !== undefined) throw new EventLogClosed();
  }
}

export interface JetStreamEventLogSetOptions {
  /** `nats://[user:pass@]host:port`: the set opens its own connection and drains it on close. */
  readonly natsUrl?: string;
  /** Or a connection the caller owns (shared with the Bus, say); close leaves it open. Exactly one of the two. */
  readonly connection?: NatsConnection;
  /**
   * This node's id (HubConfig.nodeId); its partition is partitionOf(nodeId). Keep it stable across restarts: a new id
   * is a new partition and stream, and the old one lingers, listed, until deleted.
   */
  readonly nodeId: string;
  /** Default 'CORRAL_EVENTS'. Partition p's stream is `<streamPrefix>_<p>`. */
  readonly streamPrefix?: string;
  /** Default 'corral.events'. Partition p's subjects are `<subjectPrefix>.<p>.<kind>.<device>.<module>`. */
  readonly subjectPrefix?: string;
  /** This node's stream's max_age, max_bytes and replicas (JetStreamEventLogOptions); other nodes' are theirs to set. */
  readonly maxAgeMs?: number;
  readonly maxBytes?: number;
  readonly replicas?: number;
  /** Default 5000. As JetStreamEventLogOptions; bounds the readers' requests too. */
  readonly commitTimeoutMs?: number;
  /** The connection's name as the server shows it, when the set opens its own. */
  readonly connectionName?: string;
}

/**
 * The cluster's log on JetStream: one stream per node (its partition), all on one NATS connection. This node appends
 * through a JetStreamEventLog on its own stream; other nodes' streams are read through JetStreamPartitionReaders, which
 * never publish, create or change a stream. A partition's stream names it in its description, so partitions() maps
 * streams back exactly.
 */
export class JetStreamEventLogSet implements EventLogSet {
  private readonly readers = new Map<string, JetStreamPartitionReader>();
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly ownsConnection: boolean,
    private readonly jsm: JetStreamManager,
    private readonly naming: PartitionNaming,
    private readonly timeoutMs: number,
    readonly localPartition: string,
    readonly local: JetStreamEventLog,
  ) {}

  /**
   * Connects (unless given a connection) and opens this node's partition (JetStreamEventLog.open: creates or binds its
   * stream). Throws RangeError for bad options, or an Error naming the server or the stream when either refuses.
   */
  static async open(opts: JetStreamEventLogSetOptions): Promise<JetStreamEventLogSet> {
    if ((opts.natsUrl === undefined) === (opts.connection === undefined)) {
      throw new RangeError('give exactly one of natsUrl and connection');
    }
    const partition = partitionOf(opts.nodeId);
    const naming = { streamPrefix: opts.streamPrefix ?? DEFAULT_STREAM, subjectPrefix: opts.subjectPrefix ?? DEFAULT_SUBJECT_PREFIX };
    if (!STREAM_NAME.test(naming.streamPrefix)) {
      throw new RangeError(`streamPrefix must be letters, digits, '_' and '-', got '${naming.streamPrefix}'`);
    }
    const nc = opts.connection ?? await connectTo(opts.natsUrl ?? '', opts.connectionName);
    try {
      const timeoutMs = opts.commitTimeoutMs ?? DEFAULT_COMMIT_TIMEOUT_MS;
      const local = await JetStreamEventLog.open({
        connection: nc, stream: streamOf(naming, partition), subjectPrefix: subjectPrefixOf(naming, partition),
        description: partitionDescription(naming, partition), maxAgeMs: opts.maxAgeMs, maxBytes: opts.maxBytes,
        replicas: opts.replicas, commitTimeoutMs: opts.commitTimeoutMs,
      });
      const jsm = await nc.jetstreamManager({ timeout: timeoutMs });
      return new JetStreamEventLogSet(nc, opts.connection === undefined, jsm, naming, timeoutMs, partition, local);
    } catch (err) {
      if (opts.connection === undefined) await nc.close().catch(() => undefined);
      throw err;
    }
  }

  async partitions(): Promise<string[]> {
    if (this.closing !== undefined) throw new EventLogClosed();
    let found: string[];
    try {
      found = await listPartitions(this.jsm, this.naming);
    } catch (err) {
      throw new Error(`cannot list the event log partitions (streams ${this.naming.streamPrefix}_*): ${messageOf(err)}`, { cause: err });
    }
    return [...new Set([...found, this.localPartition])].sort();
  }

  /**
   * The local log for this node's partition, else a cached read-only reader. Throws UnknownPartition for a name no
   * partition can have; a well-formed name without a stream rejects each call with it. Throws EventLogClosed after close.
   */
  reader(partition: string): EventLogReader {
    if (this.closing !== undefined) throw new EventLogClosed();
    if (partition === this.localPartition) return this.local;
    let reader = this.readers.get(partition);
    if (reader === undefined) {
      if (!isPartitionName(partition)) throw new UnknownPartition(partition, "a partition name is letters, digits, '_' and '-'");
      const js = this.nc.jetstream({ timeout: this.timeoutMs });
      const view = new StreamView(js, this.jsm, streamOf(this.naming, partition), subjectPrefixOf(this.naming, partition),
        scanLimits(this.nc, this.timeoutMs));
      reader = new JetStreamPartitionReader(view, this.jsm, partition, partitionDescription(this.naming, partition));
      this.readers.set(partition, reader);
    }
    return reader;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.allSettled([...this.readers.values()].map((r) => r.close()));
      await this.local.close();
      if (this.ownsConnection) await drain(this.nc);
    })();
    return this.closing;
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
