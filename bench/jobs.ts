import { randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { disposeHub, type RunningHub } from '../test/support/hub-process.js';
import { postgresUrl, requirePostgres, skipReason } from '../test/support/services.js';
import {
  copyPostgres, copySqlite, postgresCountBench, postgresPeer, sqliteCountBench, sqlitePeer, type PeerCopy,
} from './jobs/peer.js';
import { writeDevicesFile } from './registry/devices.js';
import {
  benchSchemaName, countLabel, dropSchema, importFleet, positiveInt, startBenchHub, type BenchStore,
} from './support/hub.js';
import { API_VERSION, serviceApi, type ServiceApi } from './support/service-api.js';

/**
 * `npm run bench -- jobs [--devices N] [--condition TEXT]`
 *
 * jobs-twin-update-<N>-<store>: the registry benchmark's fleet imported into a real hub (SQLite, then PostgreSQL),
 * then one scheduleUpdateTwin job over every device (`PUT /jobs/v2/{id}`), polled every 250 ms until it ends. Peers:
 * IoT Hub S1 at its published jobs throttle (computed, not measured), and the same update written by hand as one
 * SQL UPDATE on a copy of the database (measured). Figures go to stdout, one line each; progress goes to stderr.
 */

const SQLITE_ADDRESS = '127.0.0.52';
const POSTGRES_ADDRESS = '127.0.0.53';
const POLL_MS = 250;
/** The job's maxExecutionTimeInSeconds; the poll gives up a minute after it. */
const MAX_EXECUTION_SECONDS = 3600;
const PROGRESS_EVERY_MS = 5000;
/** A job whose status and statistics stay the same this long is stuck: the run fails rather than wait an hour. */
const STALL_SECONDS = 120;
/**
 * IoT Hub S1's throttle on "jobs device operations (update twin, invoke direct method)": 10 devices/s per hub
 * (Free/S1; learn.microsoft.com/azure/iot-hub/iot-hub-devguide-quotas-throttling). 1M devices: 100,000 s ≈ 27.8 h.
 */
const IOT_HUB_S1_JOB_DEVICES_PER_SECOND = 10;
/** Matches every device of the fleet (ids `bench-dev-…`); `--condition` gives another. */
const DEFAULT_CONDITION = "STARTSWITH(deviceId, 'bench-dev-')";

interface Options {
  readonly devices: number;
  readonly condition: string;
}

function parseOptions(args: string[]): Options {
  const { values } = parseArgs({
    args, strict: true, allowPositionals: false,
    options: { devices: { type: 'string' }, condition: { type: 'string' } },
  });
  return { devices: positiveInt('devices', values.devices, 1_000_000), condition: values.condition ?? DEFAULT_CONDITION };
}

function progress(message: string): void {
  process.stderr.write(`[bench jobs] ${message}\n`);
}

/** One decimal, two below 10 s (the hand-written UPDATE at small N). */
const seconds = (ms: number) => `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
/** Two decimals, or two significant digits below 0.01 (Corral against S1 is a tiny ratio). */
const ratio = (a: number, b: number) => {
  const r = a / b;
  return `ratio ${r >= 0.01 ? r.toFixed(2) : r.toPrecision(2)}×`;
};

interface JobStatistics {
  readonly deviceCount?: number;
  readonly failedCount?: number;
  readonly succeededCount?: number;
  readonly runningCount?: number;
  readonly pendingCount?: number;
}

interface JobResponse {
  readonly jobId?: string;
  readonly status?: string;
  readonly createdTime?: string;
  readonly startTime?: string;
  readonly endTime?: string;
  readonly failureReason?: string;
  readonly statusMessage?: string;
  readonly deviceJobStatistics?: JobStatistics;
}

const ENDED = new Set(['completed', 'failed', 'cancelled']);

/**
 * Schedules the job and polls it to its end; resolves with the job's last response and the wall time from the PUT
 * being sent to the end of the poll answer that first said it had ended (so up to one poll interval late).
 */
async function runJob(api: ServiceApi, hub: RunningHub, opts: Options, n: number): Promise<{ job: JobResponse; elapsedMs: number }> {
  const jobId = `bench-twin-update-${randomBytes(4).toString('hex')}`;
  const path = `/jobs/v2/${encodeURIComponent(jobId)}?api-version=${API_VERSION}`;
  const body = {
    jobId, type: 'scheduleUpdateTwin', queryCondition: opts.condition,
    updateTwin: { etag: '*', properties: { desired: { bench: n } } },
    startTime: null, maxExecutionTimeInSeconds: MAX_EXECUTION_SECONDS,
  };
  progress(`${api.host}: PUT /jobs/v2/${jobId} (queryCondition ${opts.condition}, desired.bench = ${n})`);
  const started = performance.now();
  let job = (await api.json('PUT', path, body)).json as JobResponse;
  let lastProgress = started;
  let lastChange = started;
  let seen = '';
  while (!ENDED.has(job.status ?? '')) {
    const now = performance.now();
    const state = JSON.stringify([job.status, job.deviceJobStatistics]);
    if (state !== seen) [seen, lastChange] = [state, now];
    if (now - lastChange > STALL_SECONDS * 1000 || now - started > (MAX_EXECUTION_SECONDS + 60) * 1000) {
      throw new Error(`job ${jobId} stuck: ${JSON.stringify(job)} unchanged for ${seconds(now - lastChange)}\n${hub.logs.slice(-10).join('\n')}`);
    }
    await sleep(POLL_MS);
    job = (await api.json('GET', path)).json as JobResponse;
    if (performance.now() - lastProgress >= PROGRESS_EVERY_MS) {
      lastProgress = performance.now();
      const s = job.deviceJobStatistics ?? {};
      const done = (s.succeededCount ?? 0) + (s.failedCount ?? 0);
      progress(`${jobId} ${job.status}: ${done} of ${s.deviceCount ?? '?'} devices done (${s.failedCount ?? 0} failed), `
        + `${Math.round(done / ((lastProgress - started) / 1000))} devices/s so far`);
    }
  }
  return { job, elapsedMs: performance.now() - started };
}

/** The job ended well for every device, and every device's twin says so (through a query, and in the database). */
async function verify(api: ServiceApi, store: BenchStore, hub: RunningHub, job: JobResponse, devices: number, n: number): Promise<void> {
  const s = job.deviceJobStatistics ?? {};
  if (job.status !== 'completed' || s.deviceCount !== devices || s.succeededCount !== devices || (s.failedCount ?? 0) !== 0) {
    throw new Error(`job ${job.jobId} ended ${job.status} with ${JSON.stringify(s)} (expected ${devices} devices, all succeeded): ${JSON.stringify(job)}`);
  }
  const { rows } = await api.queryAll(`SELECT COUNT() AS n FROM devices WHERE properties.desired.bench = ${n}`, 100);
  const counted = (rows[0] as { n?: unknown } | undefined)?.n;
  if (rows.length !== 1 || counted !== devices) throw new Error(`a query counts ${JSON.stringify(rows)} devices with desired.bench = ${n}, expected ${devices}`);
  const stored = store.kind === 'sqlite'
    ? sqliteCountBench(join(hub.dataDir, 'corral.db'), n)
    : await postgresCountBench(store.url, store.schema, n);
  if (stored !== devices) throw new Error(`the database holds ${stored} devices with desired.bench = ${n}, expected ${devices}`);
}

/** One hub: import, copy the database for the peer, run and check the job, stop the hub, time the peer. */
async function benchStore(store: BenchStore, address: string, file: string, work: string, opts: Options, cleanups: (() => Promise<void>)[]): Promise<void> {
  const peerSchema = store.kind === 'postgres' ? `${store.schema}_peer` : undefined;
  if (store.kind === 'postgres') {
    cleanups.push(() => dropSchema(store.url, store.schema));
    cleanups.push(() => dropSchema(store.url, peerSchema!));
  }
  const hub = await startBenchHub(address, store, 'bench-jobs');
  let hubUp = true;
  cleanups.push(async () => { if (hubUp) await disposeHub(hub); });
  progress(`${store.kind} hub up on ${address}${store.kind === 'postgres' ? ` (schema ${store.schema})` : ''}; importing`);
  const importMs = await importFleet(hub, file, opts.devices);
  progress(`imported ${opts.devices} devices in ${seconds(importMs)}`);

  const copy = join(work, 'peer.db');
  progress(`copying the database for the hand-written UPDATE (untimed)`);
  if (store.kind === 'sqlite') await copySqlite(join(hub.dataDir, 'corral.db'), copy);
  else await copyPostgres(store.url, store.schema, peerSchema!);

  const n = randomInt(1, 1_000_000_000);
  const api = serviceApi(hub);
  let corralMs: number;
  try {
    const { job, elapsedMs } = await runJob(api, hub, opts, n);
    corralMs = elapsedMs;
    progress(`job ${job.status} in ${seconds(corralMs)} (hub's own times: created ${job.createdTime}, started ${job.startTime}, ended ${job.endTime})`);
    await verify(api, store, hub, job, opts.devices, n);
    progress(`verified: ${opts.devices} devices succeeded, each twin's desired.bench = ${n}`);
  } finally {
    api.close();
  }
  hubUp = false;
  await disposeHub(hub); // the peer runs alone on the machine, as the hub did

  let peer: PeerCopy | undefined;
  let handMs: number;
  try {
    peer = store.kind === 'sqlite' ? sqlitePeer(copy) : await postgresPeer(store.url, peerSchema!);
    progress('hand-written UPDATE of every device on the copy');
    handMs = await peer.timeUpdate(n, opts.devices);
  } finally {
    await peer?.close();
    for (const f of [copy, `${copy}-wal`, `${copy}-shm`]) rmSync(f, { force: true });
  }

  const perSecond = Math.round(opts.devices / (corralMs / 1000));
  const s1Ms = (opts.devices / IOT_HUB_S1_JOB_DEVICES_PER_SECOND) * 1000;
  console.log(`jobs-twin-update-${countLabel(opts.devices)}-${store.kind}  corral ${seconds(corralMs)} (${perSecond} devices/s)`
    + `  iothub-s1 ${seconds(s1Ms)} (${(s1Ms / 3_600_000).toFixed(1)} h; computed from its published ${IOT_HUB_S1_JOB_DEVICES_PER_SECOND} devices/s, not measured)  ${ratio(corralMs, s1Ms)}`
    + `  hand-sql ${seconds(handMs)}  ${ratio(corralMs, handMs)}`);
}

export async function run(args: string[]): Promise<void> {
  const opts = parseOptions(args);
  const work = mkdtempSync(join(tmpdir(), 'corral-bench-jobs-'));
  const cleanups: (() => Promise<void>)[] = [];
  const cleanUp = async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch((err: unknown) => progress(`cleanup failed: ${String(err)}`));
  };
  try {
    const file = join(work, 'devices.jsonl');
    const bytes = await writeDevicesFile(file, opts.devices);
    progress(`wrote ${opts.devices} devices (${(bytes / 1e6).toFixed(0)} MB) to ${file}`);
    await benchStore({ kind: 'sqlite' }, SQLITE_ADDRESS, file, work, opts, cleanups);
    await cleanUp();
    const url = await requirePostgres();
    if (!url) {
      progress(`PostgreSQL half skipped: ${skipReason('PostgreSQL') ?? `no server at ${postgresUrl()}`}`);
      return;
    }
    await benchStore({ kind: 'postgres', url, schema: benchSchemaName() }, POSTGRES_ADDRESS, file, work, opts, cleanups);
  } finally {
    await cleanUp();
    rmSync(work, { recursive: true, force: true });
  }
}
