import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  EventLogClosed, UnknownPartition,
  type EventLog, type EventLogReader, type EventLogSet, type EventRecord, type ReadOptions, type StoredEvent,
  type TrimOptions,
  checkEventRecord, seekBySequence,
} from '../index.js';
import { GroupCommit, type GroupCommitStats } from './group-commit.js';

type Db = Database.Database;
type Statement = Database.Statement;
/** One record as bound, after `seq`: kind, device_id, module_id, enqueued_ms, properties (JSON), body. */
type Row = readonly [string, string, string, number, string, Uint8Array];

const SCHEMA_VERSION = 1;
const COLUMNS = 'seq, kind, device_id, module_id, enqueued_ms, properties, body';
const PARAMS_PER_ROW = 7;
/**
 * Rows per INSERT statement (the tail of a batch uses the powers of two below). Measured inserting a batch of 1000
 * 256-byte records from 1000 devices into a 200k-record log: without the device index, 1 row per statement 1.33 ms,
 * 8 rows 0.80, 32 rows 0.69, 64 rows 0.72, 256 rows 0.76; with it, 1 row 2.7 ms but 8 to 64 rows 3.5 to 4.0, so
 * there it stays at 1.
 */
const ROWS_PER_INSERT = { withDeviceIndex: 1, withoutDeviceIndex: 32 } as const;
/** Rows deleted per transaction by trim, which yields to the event loop between them. */
const TRIM_CHUNK_ROWS = 10_000;
/** Sequences scanned per step by a device read without the device index, which yields between steps. */
const SCAN_WINDOW_SEQS = 50_000;

/**
 * AUTOINCREMENT keeps the highest sequence ever used in sqlite_sequence, so a trim that empties the log never lets a
 * sequence be reused, across reopens too.
 */
const SCHEMA = `
  CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    device_id TEXT NOT NULL,
    module_id TEXT NOT NULL,
    enqueued_ms INTEGER NOT NULL,
    properties TEXT NOT NULL,
    body BLOB NOT NULL
  );
`;
/**
 * A rowid table's index ends with the rowid, so this is (device_id, seq): a device's read is one range scan already in
 * sequence order, without a sort. (An index on (device_id, module_id, seq) could not serve "device_id = ? AND seq > ?
 * ORDER BY seq" without sorting all the device's records.)
 */
const DEVICE_INDEX = 'CREATE INDEX IF NOT EXISTS events_device ON events (device_id)';

export interface SqliteEventLogOptions {
  /**
   * Default 2. Under load a commit starts at most this often (≤ 500 commits/s: fsyncs, IOPS and event-loop time stay
   * bounded), everything appended meanwhile sharing it; a lone append after an idle spell does not wait. The cost is
   * closed-loop throughput with few appenders in flight, at most in-flight / maxBatchDelayMs: 0 (commit on the next
   * event-loop turn) measured 12k rec/s with 10 in flight where 2 gives 3.8k; at 1000 in flight they are equal.
   */
  readonly maxBatchDelayMs?: number;
  /** Default 5000. Records per commit (one append's are never split), so a commit blocks the event loop briefly. */
  readonly maxBatchRecords?: number;
  /**
   * Keep the (device_id, seq) index that makes a device's read one range scan (default true; created or dropped on
   * open to match). It is the dominant write cost: each record's entry lands on its device's page, so a commit writes
   * one index page per distinct device in it (bench/eventlog.ts: 6–7× fewer records/s at 1000 devices). Without
   * it a device's read scans the log from `after` in steps of SCAN_WINDOW_SEQS, yielding between steps.
   */
  readonly deviceIndex?: boolean;
}

/**
 * The embedded EventLog: its own SQLite file (never the state store's, so telemetry never contends with registry
 * writes), WAL with synchronous = FULL: each commit syncs the WAL, so an acknowledged record survives a power loss.
 * Appends are group-committed (GroupCommit). One SqliteEventLog appends to a file (it hands out sequences from
 * memory; a second appender's commits would fail on the primary key, never overwrite); others, in any process, may
 * open it to read. Reads see committed records only.
 */
export class SqliteEventLog implements EventLog {
  private readonly committer: GroupCommit<Row>;
  private readonly inserts = new Map<number, Statement>();
  private readonly insertRows: (rows: readonly Row[], first: number) => void;
  private readonly stmts: ReturnType<typeof prepareStatements>;
  private readonly trims = new Set<Promise<number>>();
  private readonly rowsPerInsert: number;
  private readonly hasDeviceIndex: boolean;
  private closing: Promise<void> | undefined;

  private constructor(private readonly db: Db, private lastSeq: number, opts: SqliteEventLogOptions) {
    this.hasDeviceIndex = opts.deviceIndex ?? true;
    this.rowsPerInsert = this.hasDeviceIndex ? ROWS_PER_INSERT.withDeviceIndex : ROWS_PER_INSERT.withoutDeviceIndex;
    this.stmts = prepareStatements(db);
    this.insertRows = db.transaction((rows: readonly Row[], first: number) => this.insertChunks(rows, first));
    this.committer = new GroupCommit<Row>((rows) => this.commitRows(rows), {
      maxBatchDelayMs: opts.maxBatchDelayMs ?? 2,
      maxBatchRecords: opts.maxBatchRecords ?? 5000,
    });
  }

  /** Opens (creating the file, its directory and the schema) the log at `file`. Throws if the schema is newer. */
  static open(file: string, opts: SqliteEventLogOptions = {}): SqliteEventLog {
    checkOptions(opts);
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    const db = new Database(file);
    try {
      db.pragma('journal_mode = WAL');
      // FULL, not the store's NORMAL: in WAL mode NORMAL may lose the last commits on power loss, FULL syncs the
      // WAL on every commit (https://www.sqlite.org/pragma.html#pragma_synchronous).
      db.pragma('synchronous = FULL');
      // Only this process writes the file; a brief wait covers an external reader's checkpoint or a backup.
      db.pragma('busy_timeout = 1000');
      migrate(db);
      db.exec(opts.deviceIndex ?? true ? DEVICE_INDEX : 'DROP INDEX IF EXISTS events_device');
      const lastSeq = db.prepare(`SELECT max(
          coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0),
          coalesce((SELECT max(seq) FROM events), 0))`).pluck().get() as number;
      return new SqliteEventLog(db, lastSeq, opts);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /** Commit counters since open. */
  get stats(): GroupCommitStats {
    return this.committer.stats;
  }

  async append(records: readonly EventRecord[]): Promise<number[]> {
    this.assertOpen();
    const rows = records.map(toRow);
    if (rows.length === 0) return [];
    return this.committer.submit(rows);
  }

  async read(opts: ReadOptions): Promise<StoredEvent[]> {
    this.assertOpen();
    const limit = Math.floor(opts.limit);
    if (!(limit > 0)) return [];
    let rows: unknown[][];
    if (opts.deviceId === undefined) rows = this.stmts.readAll.all(opts.after, limit) as unknown[][];
    else if (this.hasDeviceIndex) rows = this.stmts.readDevice.all(opts.deviceId, opts.after, limit) as unknown[][];
    else rows = await this.scanDevice(opts.deviceId, opts.after, limit);
    return rows.map(eventFromRow);
  }

  async lastSequence(): Promise<number> {
    this.assertOpen();
    return this.lastSeq;
  }

  /**
   * A binary search by sequence, reading enqueued_ms point-wise (O(log n) rowid seeks), rather than an index on time
   * that every append would pay for. Synchronous reads between awaits that resolve at once: no commit or trim step
   * interleaves.
   */
  async seekTime(timeMs: number): Promise<number> {
    this.assertOpen();
    return seekBySequence(timeMs, this.lastSeq, async (seq) => {
      const row = this.stmts.firstFrom.get(seq) as [number, number] | undefined;
      return row === undefined ? undefined : { sequence: row[0], enqueuedTimeMs: row[1] };
    });
  }

  async trim(opts: TrimOptions): Promise<number> {
    this.assertOpen();
    const done = this.trimPrefix(this.trimCut(opts));
    this.trims.add(done);
    try {
      return await done;
    } finally {
      this.trims.delete(done);
    }
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.allSettled(this.trims);
      this.committer.drain();
      this.db.close();
    })();
    return this.closing;
  }

  /** A device's records without the device index: windows of sequences in order, yielding between them. */
  private async scanDevice(deviceId: string, after: number, limit: number): Promise<unknown[][]> {
    const out: unknown[][] = [];
    let from = Math.max(after, ((this.stmts.firstSeq.get() as number | null) ?? 1) - 1);
    while (out.length < limit && from < this.lastSeq) {
      const to = from + SCAN_WINDOW_SEQS;
      out.push(...(this.stmts.scanDevice.all(from, to, deviceId, limit - out.length) as unknown[][]));
      from = to;
      if (out.length < limit && from < this.lastSeq) {
        await new Promise((resolve) => setImmediate(resolve));
        this.assertOpen();
      }
    }
    return out;
  }

  private assertOpen(): void {
    if (this.closing !== undefined) throw new EventLogClosed();
  }

  private commitRows(rows: readonly Row[]): number {
    const first = this.lastSeq + 1;
    this.insertRows(rows, first);
    this.lastSeq = first + rows.length - 1;
    return first;
  }

  /** INSERTs of rowsPerInsert rows each, then of decreasing powers of two for the tail. */
  private insertChunks(rows: readonly Row[], first: number): void {
    let at = 0;
    while (at < rows.length) {
      let size = this.rowsPerInsert;
      while (size > rows.length - at) size >>= 1;
      const params = new Array<unknown>(size * PARAMS_PER_ROW);
      for (let i = 0, p = 0; i < size; i++) {
        const row = rows[at + i];
        params[p++] = first + at + i;
        for (let c = 0; c < row.length; c++) params[p++] = row[c];
      }
      this.insertStatement(size).run(params);
      at += size;
    }
  }

  private insertStatement(rows: number): Statement {
    let stmt = this.inserts.get(rows);
    if (stmt === undefined) {
      const tuple = `(${new Array(PARAMS_PER_ROW).fill('?').join(', ')})`;
      stmt = this.db.prepare(`INSERT INTO events (${COLUMNS}) VALUES ${new Array(rows).fill(tuple).join(', ')}`);
      this.inserts.set(rows, stmt);
    }
    return stmt;
  }

  /** The highest sequence to remove: the union of the age and the count rules. */
  private trimCut(opts: TrimOptions): number {
    let cut = 0;
    if (opts.maxRecords !== undefined) {
      // The table always holds a contiguous run ending at lastSeq: appends take consecutive sequences and trims only
      // remove prefixes. So the newest maxRecords are exactly those above lastSeq - maxRecords.
      cut = Math.max(cut, this.lastSeq - Math.max(0, Math.floor(opts.maxRecords)));
    }
    if (opts.olderThanMs !== undefined) {
      const firstYoung = this.stmts.firstNotBefore.get(opts.nowMs - opts.olderThanMs) as number | undefined;
      cut = Math.max(cut, firstYoung === undefined ? this.lastSeq : firstYoung - 1);
    }
    return cut;
  }

  /** Deletes sequences ≤ cut in transactions of TRIM_CHUNK_ROWS, yielding between them; stops early on close. */
  private async trimPrefix(cut: number): Promise<number> {
    let removed = 0;
    for (;;) {
      const first = this.stmts.firstSeq.get() as number | null;
      if (first === null || first > cut) return removed;
      const upTo = Math.min(cut, first + TRIM_CHUNK_ROWS - 1);
      removed += this.stmts.deleteUpTo.run(upTo).changes;
      if (upTo === cut) return removed;
      await new Promise((resolve) => setImmediate(resolve));
      if (this.closing !== undefined) return removed;
    }
  }
}

/** The embedded log as a set of one partition, '0': one node, which appends and reads it. */
export class SqliteEventLogSet implements EventLogSet {
  readonly localPartition = '0';

  constructor(readonly local: SqliteEventLog) {}

  /** Opens the log at `file` (SqliteEventLog.open) as the set's one partition. */
  static open(file: string, opts: SqliteEventLogOptions = {}): SqliteEventLogSet {
    return new SqliteEventLogSet(SqliteEventLog.open(file, opts));
  }

  async partitions(): Promise<string[]> {
    return [this.localPartition];
  }

  /** The local log for '0'; throws UnknownPartition for any other name. */
  reader(partition: string): EventLogReader {
    if (partition !== this.localPartition) throw new UnknownPartition(partition, "the embedded event log has one partition, '0'");
    return this.local;
  }

  close(): Promise<void> {
    return this.local.close();
  }
}

function prepareStatements(db: Db) {
  const select = `SELECT ${COLUMNS} FROM events`;
  return {
    readAll: db.prepare(`${select} WHERE seq > ? ORDER BY seq LIMIT ?`).raw(),
    readDevice: db.prepare(`${select} WHERE device_id = ? AND seq > ? ORDER BY seq LIMIT ?`).raw(),
    scanDevice: db.prepare(`${select} WHERE seq > ? AND seq <= ? AND device_id = ? ORDER BY seq LIMIT ?`).raw(),
    firstSeq: db.prepare('SELECT min(seq) FROM events').pluck(),
    firstFrom: db.prepare('SELECT seq, enqueued_ms FROM events WHERE seq >= ? ORDER BY seq LIMIT 1').raw(),
    firstNotBefore: db.prepare('SELECT seq FROM events WHERE enqueued_ms >= ? ORDER BY seq LIMIT 1').pluck(),
    deleteUpTo: db.prepare('DELETE FROM events WHERE seq <= ?'),
  };
}

function migrate(db: Db): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SCHEMA_VERSION) {
    throw new Error(`event log schema version ${version} is newer than this build's ${SCHEMA_VERSION}`);
  }
  if (version === SCHEMA_VERSION) return;
  db.transaction(() => {
    db.exec(SCHEMA);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}

function checkOptions(opts: SqliteEventLogOptions): void {
  const { maxBatchDelayMs, maxBatchRecords } = opts;
  if (maxBatchDelayMs !== undefined && !(maxBatchDelayMs >= 0 && maxBatchDelayMs <= 1000)) {
    throw new RangeError(`maxBatchDelayMs must be between 0 and 1000, got ${maxBatchDelayMs}`);
  }
  if (maxBatchRecords !== undefined && !(Number.isInteger(maxBatchRecords) && maxBatchRecords >= 1)) {
    throw new RangeError(`maxBatchRecords must be a positive integer, got ${maxBatchRecords}`);
  }
}

/** Checks one record and encodes it, so a malformed record fails its own append, never a shared commit. */
function toRow(r: EventRecord, index: number): Row {
  checkEventRecord(r, index);
  return [r.kind, r.deviceId, r.moduleId, r.enqueuedTimeMs, JSON.stringify(r.properties), r.body];
}

/** A raw row in COLUMNS order; the body comes back as a Buffer (a Uint8Array). */
function eventFromRow(row: unknown[]): StoredEvent {
  return {
    sequence: row[0] as number,
    kind: row[1] as string,
    deviceId: row[2] as string,
    moduleId: row[3] as string,
    enqueuedTimeMs: row[4] as number,
    properties: JSON.parse(row[5] as string) as Record<string, string>,
    body: row[6] as Uint8Array,
  };
}
