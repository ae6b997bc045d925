import { randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { disposeHub, startHub, tempDataDir, type RunningHub } from '../test/support/hub-process.js';
import { serviceToken } from '../test/support/rest.js';
import { requirePostgres, skipReason } from '../test/support/services.js';
import { benchDeviceId, writeDevicesFile } from './registry/devices.js';
import { buildPeerRows, insertPeerRows } from './registry/peer.js';
import { benchSchemaName, countLabel, dropSchema, importFleet, positiveInt } from './support/hub.js';
import { closedLoop, percentile, type BenchRequest, type LoadResult } from './support/https-load.js';

/**
 * `npm run bench -- registry [--devices N] [--clients C] [--seconds D]`
 *
 * 1. registry-import-<N>-sqlite: a real hub on SQLite imports N devices from a streamed JSONL file, against plain
 *    batched INSERTs of the same rows into a fresh SQLite file.
 * 2. device-get-<N>, twin-patch-<N>: closed-loop REST load at N devices, the SQLite hub beside a PostgreSQL hub
 *    (which imports the same file first; that import is printed against the SQLite one).
 * Figures go to stdout, one line each; progress goes to stderr.
 */

const SQLITE_ADDRESS = '127.0.0.50';
const POSTGRES_ADDRESS = '127.0.0.51';
const API_VERSION = '2021-04-12';
/** Not counted: TLS handshakes, JIT and caches settle first. */
const WARMUP_SECONDS = 2;

interface Options {
  readonly devices: number;
  readonly clients: number;
  readonly seconds: number;
}

function parseOptions(args: string[]): Options {
  const { values } = parseArgs({
    args, strict: true, allowPositionals: false,
    options: { devices: { type: 'string' }, clients: { type: 'string' }, seconds: { type: 'string' } },
  });
  return {
    devices: positiveInt('devices', values.devices, 1_000_000),
    clients: positiveInt('clients', values.clients, 32),
    seconds: positiveInt('seconds', values.seconds, 10),
  };
}

function progress(message: string): void {
  process.stderr.write(`[bench registry] ${message}\n`);
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const ratio = (a: number, b: number) => `ratio ${(a / b).toFixed(2)}×`;

interface HubLoads {
  readonly get: LoadResult;
  readonly patch: LoadResult;
}

/** The device-get loop, then the twin-patch loop, on random devices of the imported fleet. */
async function loadHub(hub: RunningHub, opts: Options): Promise<HubLoads> {
  const host = hub.info.hostName;
  const authorization = serviceToken(hub.info.connectionStrings.iothubowner, Math.ceil(Date.now() / 1000) + 6 * 3600);
  const randomId = () => encodeURIComponent(benchDeviceId(randomInt(opts.devices)));
  const getDevice = (): BenchRequest => ({
    method: 'GET', path: `/devices/${randomId()}?api-version=${API_VERSION}`, headers: { authorization },
  });
  const patchTwin = (): BenchRequest => ({
    method: 'PATCH',
    path: `/twins/${randomId()}?api-version=${API_VERSION}`,
    headers: { authorization, 'content-type': 'application/json; charset=utf-8', 'if-match': '*' },
    body: JSON.stringify({ properties: { desired: { setpoint: Math.round((18 + Math.random() * 6) * 10) / 10 } } }),
  });
  const loadOpts = { host, clients: opts.clients, seconds: opts.seconds, warmupSeconds: WARMUP_SECONDS };
  progress(`${host}: GET /devices/{id} × ${opts.clients} clients for ${opts.seconds} s`);
  const get = checked('device get', await closedLoop({ ...loadOpts, next: getDevice }));
  progress(`${host}: PATCH /twins/{id} × ${opts.clients} clients for ${opts.seconds} s`);
  const patch = checked('twin patch', await closedLoop({ ...loadOpts, next: patchTwin }));
  return { get, patch };
}

function checked(what: string, r: LoadResult): LoadResult {
  if (r.errors > 0) throw new Error(`${what}: ${r.errors} of ${r.latenciesMs.length} responses failed (first: HTTP ${r.firstErrorStatus})`);
  if (r.latenciesMs.length === 0) throw new Error(`${what}: no request finished inside the window`);
  return r;
}

function loadFigure(r: LoadResult): string {
  return `p50 ${percentile(r.latenciesMs, 50).toFixed(2)} ms p99 ${percentile(r.latenciesMs, 99).toFixed(2)} ms ${Math.round(r.opsPerSecond)} ops/s`;
}

function printLoads(label: string, sqlite: HubLoads, postgres: HubLoads | undefined): void {
  for (const [name, pick] of [['device-get', (l: HubLoads) => l.get], ['twin-patch', (l: HubLoads) => l.patch]] as const) {
    const s = pick(sqlite);
    const p = postgres && pick(postgres);
    const peer = p ? `  postgres ${loadFigure(p)}  ${ratio(s.opsPerSecond, p.opsPerSecond)}` : '  postgres skipped';
    console.log(`${name}-${label}  sqlite ${loadFigure(s)}${peer}`);
  }
}

/** Figure 1's peer: rows built first (untimed), then only the inserts timed. */
function timePeer(work: string, devices: number): number {
  progress(`building ${devices} peer rows in memory (untimed)`);
  const rows = buildPeerRows(devices); // ~3 KB a row, garbage once this returns, before the hubs run
  progress('peer: plain batched INSERTs into a fresh SQLite file');
  const ms = insertPeerRows(join(work, 'peer.db'), rows);
  rmSync(join(work, 'peer.db'), { force: true });
  rmSync(join(work, 'peer.db-wal'), { force: true });
  rmSync(join(work, 'peer.db-shm'), { force: true });
  return ms;
}

export async function run(args: string[]): Promise<void> {
  const opts = parseOptions(args);
  const label = countLabel(opts.devices);
  const work = mkdtempSync(join(tmpdir(), 'corral-bench-registry-'));
  const cleanups: (() => Promise<void>)[] = [];
  try {
    const file = join(work, 'devices.jsonl');
    const bytes = await writeDevicesFile(file, opts.devices);
    progress(`wrote ${opts.devices} devices (${(bytes / 1e6).toFixed(0)} MB) to ${file}`);
    const peerMs = timePeer(work, opts.devices);

    const sqliteHub = await startHub({ address: SQLITE_ADDRESS, dataDir: tempDataDir('bench-sqlite') });
    cleanups.push(() => disposeHub(sqliteHub));
    progress(`SQLite hub up on ${SQLITE_ADDRESS}; importing`);
    const sqliteImportMs = await importFleet(sqliteHub, file, opts.devices);
    console.log(`registry-import-${label}-sqlite  corral ${seconds(sqliteImportMs)}  plain-inserts ${seconds(peerMs)}  ${ratio(sqliteImportMs, peerMs)}`);
    const sqliteLoads = await loadHub(sqliteHub, opts);
    await disposeHub(sqliteHub); // one hub at a time: the machine's cores are shared with the load
    cleanups.pop();

    const url = await requirePostgres();
    if (!url) {
      progress(`PostgreSQL half skipped: ${skipReason('PostgreSQL')}`);
      printLoads(label, sqliteLoads, undefined);
      return;
    }
    const schema = benchSchemaName();
    cleanups.push(() => dropSchema(url, schema));
    const pgHub = await startHub({
      address: POSTGRES_ADDRESS, dataDir: tempDataDir('bench-postgres'),
      args: ['--store', 'postgres', '--postgres-url', url, '--postgres-schema', schema],
    });
    cleanups.push(() => disposeHub(pgHub));
    progress(`PostgreSQL hub up on ${POSTGRES_ADDRESS} (schema ${schema}); importing`);
    const pgImportMs = await importFleet(pgHub, file, opts.devices);
    console.log(`registry-import-${label}-postgres  postgres ${seconds(pgImportMs)}  sqlite ${seconds(sqliteImportMs)}  ${ratio(pgImportMs, sqliteImportMs)}`);
    const pgLoads = await loadHub(pgHub, opts);
    printLoads(label, sqliteLoads, pgLoads);
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch((err: unknown) => progress(`cleanup failed: ${String(err)}`));
    rmSync(work, { recursive: true, force: true });
  }
}
