import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { connect } from 'nats';
import type { EventRecord } from '../src/ports/eventlog/index.js';
import { JetStreamEventLog } from '../src/ports/eventlog/jetstream/index.js';
import { SqliteEventLog } from '../src/ports/eventlog/sqlite/index.js';
import { requireNats, skipReason } from '../test/support/services.js';
import { percentile } from './support/https-load.js';

/**
 * `npm run bench -- eventlog [--producers P] [--seconds D] [--bytes B] [--max-batch-delay-ms M] [--max-batch-records R]`
 *
 * eventlog-append: P concurrent producers (one device each) each append one B-byte record at a time in a closed loop
 * (append, await, append again) for D seconds, into the SQLite EventLog with its defaults (group commit,
 * synchronous = FULL, the device index). Peer, same run, same producers and records: the same schema and pragmas
 * with one transaction per record, i.e. durability without group commit.
 * eventlog-append-noindex: the same pair with `deviceIndex: false` (and the peer's schema without the index too).
 * eventlog-append-jetstream: the same producers and records into the JetStream EventLog with its defaults, on a fresh
 * stream (deleted afterwards) at CORRAL_TEST_NATS_URL (default nats://127.0.0.1:4222); peer: the SQLite EventLog's
 * figure from eventlog-append above. Skipped, and said so, when NATS is not reachable.
 * All files live in one temp dir on the same disk. Figures go to stdout, progress to stderr.
 */

const WARMUP_SECONDS = 1;

interface Options {
  readonly producers: number;
  readonly seconds: number;
  readonly bytes: number;
  readonly maxBatchDelayMs?: number;
  readonly maxBatchRecords?: number;
}

interface LoopResult {
  readonly appends: number;
  readonly elapsedMs: number;
  /** Per-append latency in ms, ascending. */
  readonly latencies: Float64Array;
}

type Append = (records: readonly EventRecord[]) => Promise<unknown>;

function number(name: string, text: string | undefined, fallback: number | undefined, min: number): number | undefined {
  if (text === undefined) return fallback;
  const n = Number(text.replace(/_/g, ''));
  if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number ≥ ${min}, got '${text}'`);
  return n;
}

function parseOptions(args: string[]): Options {
  const { values } = parseArgs({
    args, strict: true, allowPositionals: false,
    options: {
      producers: { type: 'string' }, seconds: { type: 'string' }, bytes: { type: 'string' },
      'max-batch-delay-ms': { type: 'string' }, 'max-batch-records': { type: 'string' },
    },
  });
  return {
    producers: number('producers', values.producers, 1000, 1) ?? 1000,
    seconds: number('seconds', values.seconds, 5, 0.1) ?? 5,
    bytes: number('bytes', values.bytes, 256, 0) ?? 256,
    maxBatchDelayMs: number('max-batch-delay-ms', values['max-batch-delay-ms'], undefined, 0),
    maxBatchRecords: number('max-batch-records', values['max-batch-records'], undefined, 1),
  };
}

/** Producer p's n-th record: a B-byte body and the system properties a telemetry message carries. */
function recordMaker(producers: number, bytes: number): (p: number, n: number) => EventRecord {
  const bodies = Array.from({ length: producers }, () => new Uint8Array(randomBytes(bytes)));
  return (p, n) => ({
    kind: 'telemetry', deviceId: `bench-dev-${String(p).padStart(5, '0')}`, moduleId: '', enqueuedTimeMs: Date.now(),
    properties: { 'message-id': `${p}-${n}`, 'content-type': 'application/json', 'content-encoding': 'utf-8' },
    body: bodies[p],
  });
}

/** P producers, each appending one record and awaiting it before the next, until `seconds` have passed. */
async function closedLoop(append: Append, producers: number, seconds: number, make: (p: number, n: number) => EventRecord): Promise<LoopResult> {
  const latencies: number[] = [];
  const started = performance.now();
  const endAt = started + seconds * 1000;
  await Promise.all(Array.from({ length: producers }, async (_, p) => {
    for (let n = 0; performance.now() < endAt; n++) {
      const t = performance.now();
      await append([make(p, n)]);
      latencies.push(performance.now() - t);
    }
  }));
  return { appends: latencies.length, elapsedMs: performance.now() - started, latencies: Float64Array.from(latencies).sort() };
}

type MakeRecord = (p: number, n: number) => EventRecord;

/** The commit counters both EventLog adapters keep. */
interface CommitStats {
  readonly commits: number;
  readonly records: number;
  readonly largestBatch: number;
}

/** A warm-up, then the measured closed loop on `log`; prints how its appends were grouped into commits. */
async function measureLog(label: string, log: { append: Append; readonly stats: CommitStats }, o: Options, make: MakeRecord): Promise<LoopResult> {
  await closedLoop((r) => log.append(r), o.producers, WARMUP_SECONDS, make);
  const before = log.stats;
  const result = await closedLoop((r) => log.append(r), o.producers, o.seconds, make);
  const after = log.stats;
  const commits = after.commits - before.commits;
  process.stderr.write(`  ${label}: ${commits} commits, ${((after.records - before.records) / commits).toFixed(0)} records per `
    + `commit on average, largest ${after.largestBatch}\n`);
  return result;
}

async function measureCorral(file: string, o: Options, deviceIndex: boolean, make: MakeRecord): Promise<LoopResult> {
  const log = SqliteEventLog.open(file, { maxBatchDelayMs: o.maxBatchDelayMs, maxBatchRecords: o.maxBatchRecords, deviceIndex });
  try {
    return await measureLog('corral', log, o, make);
  } finally {
    await log.close();
  }
}

/**
 * The peer: the EventLog's own schema (created by opening it once), the same pragmas, and each record committed in
 * its own transaction as it is appended.
 */
async function measurePerRecordCommit(file: string, o: Options, deviceIndex: boolean, make: MakeRecord): Promise<LoopResult> {
  await SqliteEventLog.open(file, { deviceIndex }).close();
  const db = new Database(file);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    const insert = db.prepare(`INSERT INTO events (kind, device_id, module_id, enqueued_ms, properties, body)
      VALUES (?, ?, ?, ?, ?, ?)`);
    const commitOne = db.transaction((r: EventRecord) => {
      insert.run(r.kind, r.deviceId, r.moduleId, r.enqueuedTimeMs, JSON.stringify(r.properties), r.body);
    });
    const append: Append = async (records) => {
      for (const r of records) commitOne.immediate(r);
    };
    await closedLoop(append, o.producers, WARMUP_SECONDS, make);
    return await closedLoop(append, o.producers, o.seconds, make);
  } finally {
    db.close();
  }
}

const rate = (r: LoopResult): number => r.appends / (r.elapsedMs / 1000);
const ms = (x: number): string => (x < 10 ? x.toFixed(2) : x.toFixed(1));

/** The JetStream EventLog with its defaults on a fresh stream, which is deleted afterwards. */
async function measureJetStream(url: string, o: Options, make: MakeRecord): Promise<LoopResult> {
  const nc = await connect({ servers: url, name: 'corral-bench-eventlog' });
  const id = randomBytes(4).toString('hex');
  const stream = `CORRAL_BENCH_${id}`;
  try {
    const log = await JetStreamEventLog.open({ connection: nc, stream, subjectPrefix: `corral-bench.${id}` });
    try {
      return await measureLog('jetstream', log, o, make);
    } finally {
      await log.close();
    }
  } finally {
    await (await nc.jetstreamManager()).streams.delete(stream).catch(() => undefined);
    await nc.close();
  }
}

async function jetstreamFigure(o: Options, make: MakeRecord, sqlite: LoopResult): Promise<void> {
  process.stderr.write('eventlog-append-jetstream:\n');
  const url = await requireNats();
  if (url === undefined) {
    process.stderr.write(`  skipped: ${skipReason('NATS')}\n`);
    return;
  }
  const js = await measureJetStream(url, o, make);
  process.stdout.write(`eventlog-append-jetstream  jetstream ${Math.round(rate(js))} rec/s p50 ${ms(percentile(js.latencies, 50))} ms `
    + `p99 ${ms(percentile(js.latencies, 99))} ms  sqlite ${Math.round(rate(sqlite))} rec/s  ratio ${(rate(js) / rate(sqlite)).toFixed(2)}×\n`);
}

async function figure(name: string, dir: string, o: Options, deviceIndex: boolean, make: MakeRecord): Promise<LoopResult> {
  process.stderr.write(`${name}:\n`);
  const corral = await measureCorral(join(dir, `${name}-corral.db`), o, deviceIndex, make);
  const peer = await measurePerRecordCommit(join(dir, `${name}-peer.db`), o, deviceIndex, make);
  process.stderr.write(`  per-record-commit: p50 ${ms(percentile(peer.latencies, 50))} ms p99 ${ms(percentile(peer.latencies, 99))} ms\n`);
  const ratio = rate(corral) / rate(peer);
  process.stdout.write(`${name}  corral ${Math.round(rate(corral))} rec/s p50 ${ms(percentile(corral.latencies, 50))} ms `
    + `p99 ${ms(percentile(corral.latencies, 99))} ms  per-record-commit ${Math.round(rate(peer))} rec/s  ratio ${ratio.toFixed(1)}×\n`);
  return corral;
}

export async function run(args: string[]): Promise<void> {
  const o = parseOptions(args);
  const dir = mkdtempSync(join(tmpdir(), 'corral-bench-eventlog-'));
  try {
    const make = recordMaker(o.producers, o.bytes);
    process.stderr.write(`eventlog: ${o.producers} producers, ${o.bytes}-byte bodies, ${o.seconds} s each after ${WARMUP_SECONDS} s `
      + `warm-up, ${cpus().length} cores, files in ${dir}\n`);
    const sqlite = await figure('eventlog-append', dir, o, true, make);
    await figure('eventlog-append-noindex', dir, o, false, make);
    await jetstreamFigure(o, make, sqlite);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
