import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { disposeHub, type RunningHub } from '../test/support/hub-process.js';
import { seededRandom } from '../test/support/mqtt-raw.js';
import { postgresUrl, requirePostgres, skipReason } from '../test/support/services.js';
import { openCompiled } from './query/compiled.js';
import {
  BATCH_SIZE, batchAsked, groupsProblem, handTenProblem, must, restTenProblem, sameGroups, storeTenProblem,
} from './query/checks.js';
import { postgresHand, sqliteHand, type HandSql } from './query/hand.js';
import { medianOf, sequentialLoop } from './query/loop.js';
import { batchTag, writeDevicesFile } from './registry/devices.js';
import {
  benchSchemaName, countLabel, dropSchema, importFleet, positiveInt, startBenchHub, type BenchStore,
} from './support/hub.js';
import { closedLoop, percentile, type LoadResult } from './support/https-load.js';
import { queryRequest, serviceApi, type ServiceApi } from './support/service-api.js';

/**
 * `npm run bench -- query [--devices N] [--seconds D]`
 *
 * The registry benchmark's fleet, each device also tagged `tags.batch = 'b-<i mod N/10>'` (10 devices a batch),
 * imported into a real hub, indexes declared on tags.batch and the grouped reported path; then, on SQLite and on
 * PostgreSQL:
 * 1. query-10-of-<N>-<store>: one client asks REST for a random batch's 10 twins, against the hand-written SQL
 *    asked of the same database from this process (different layers: HTTP + TLS + JSON against in-process SQL);
 * 2. query-10-of-<N>-<store>-store: the hub's parse + compiled plan through a Store in this process, against the same
 *    hand-written SQL (the same layer);
 * 3. query-group-by-<N>-<store>: a GROUP BY over the fleet through REST against the hand-written GROUP BY.
 * Figures go to stdout, one line each; progress goes to stderr.
 */

const SQLITE_ADDRESS = '127.0.0.52';
const POSTGRES_ADDRESS = '127.0.0.53';
/** Not counted: TLS handshake, JIT, statement and page caches settle first. */
const WARMUP_SECONDS = 2;
/** x-ms-max-item-count of the 10-of-N queries (the page holds all 10) and limit of the in-process run. */
const PAGE_SIZE = 100;
/** The GROUP BY's pages: all groups (60 firmware versions) in one. */
const GROUP_PAGE_SIZE = 1000;
const GROUP_BY_RUNS = 5;
/** The reported property grouped on: 60 firmware versions `4.<0-9>.<0-5>` (registry/devices.ts). */
const GROUP_PATH = ['firmware', 'version'] as const;
const GROUP_FIELD = `properties.reported.${GROUP_PATH.join('.')}`;
const INDEXED_PATHS = ['tags.batch', GROUP_FIELD] as const;
const GROUP_QUERY = `SELECT ${GROUP_FIELD} AS v, COUNT() AS n FROM devices GROUP BY ${GROUP_FIELD}`;
/** Every side asks the same batches in the same order: a generator from this seed. */
const BATCH_SEED = 0x5eed10;

interface Options {
  readonly devices: number;
  readonly seconds: number;
}

function parseOptions(args: string[]): Options {
  const { values } = parseArgs({
    args, strict: true, allowPositionals: false,
    options: { devices: { type: 'string' }, seconds: { type: 'string' } },
  });
  const devices = positiveInt('devices', values.devices, 1_000_000);
  if (devices % BATCH_SIZE !== 0) throw new Error(`--devices must be a multiple of ${BATCH_SIZE} (every batch holds ${BATCH_SIZE} devices), got ${devices}`);
  return { devices, seconds: positiveInt('seconds', values.seconds, 10) };
}

function progress(message: string): void {
  process.stderr.write(`[bench query] ${message}\n`);
}

const ms = (x: number) => `${x.toFixed(2)} ms`;
const latency = (sorted: Float64Array) => `p50 ${ms(percentile(sorted, 50))} p99 ${ms(percentile(sorted, 99))}`;
const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
const latencyRatio = (a: Float64Array, b: Float64Array) =>
  `ratio p50 ${ratio(percentile(a, 50), percentile(b, 50))} p99 ${ratio(percentile(a, 99), percentile(b, 99))}`;

const tenOfNQuery = (tag: string) => `SELECT * FROM devices WHERE tags.batch = '${tag}'`;

/** Random batches, the same sequence for every side. */
function batchSequence(devices: number): () => string {
  const random = seededRandom(BATCH_SEED);
  const batches = devices / BATCH_SIZE;
  return () => batchTag(Math.floor(random() * batches));
}

/** Declares the indexes through the hub's REST API and checks it lists them. */
async function declareIndexes(api: ServiceApi): Promise<void> {
  for (const path of INDEXED_PATHS) {
    const res = await api.json('POST', '/corral/v1/indexes', { path });
    progress(`${api.host}: index ${path} declared in ${(res.elapsedMs / 1000).toFixed(1)} s (HTTP ${res.status})`);
  }
  const listed = JSON.stringify((await api.json('GET', '/corral/v1/indexes')).json);
  for (const path of INDEXED_PATHS) {
    // Listed as 'tags.batch' or as a document and path segments; either way the last segment is there.
    if (!listed.includes(path) && !listed.includes(`"${path.split('.').at(-1)}"`)) {
      throw new Error(`GET /corral/v1/indexes on ${api.host} does not list ${path}: ${listed.slice(0, 1000)}`);
    }
  }
}

function checkedLoad(what: string, r: LoadResult): LoadResult {
  if (r.errors > 0) throw new Error(`${what}: ${r.errors} of ${r.latenciesMs.length} answers wrong (first: HTTP ${r.firstErrorStatus}: ${r.firstProblem})`);
  if (r.latenciesMs.length === 0) throw new Error(`${what}: no request finished inside the window`);
  return r;
}

/** The three figures of one hub: its store's name in them is `store.kind`. */
async function benchHub(hub: RunningHub, store: BenchStore, opts: Options, label: string): Promise<void> {
  const api = serviceApi(hub);
  const sqliteFile = join(hub.dataDir, 'corral.db');
  let hand: HandSql | undefined;
  try {
    await declareIndexes(api);
    const name = `${label}-${store.kind}`;

    progress(`${hub.info.hostName}: REST 10-of-${label} queries, 1 client, ${opts.seconds} s`);
    const nextRest = batchSequence(opts.devices);
    const rest = checkedLoad('REST 10-of-N query', await closedLoop({
      host: hub.info.hostName, clients: 1, seconds: opts.seconds, warmupSeconds: WARMUP_SECONDS,
      next: () => queryRequest(api.authorization, tenOfNQuery(nextRest()), PAGE_SIZE),
      check: (r, _status, body) => restTenProblem(batchAsked(r.body ?? ''), body),
    }));

    hand = store.kind === 'sqlite' ? sqliteHand(sqliteFile, GROUP_PATH) : await postgresHand(store.url, store.schema, GROUP_PATH);
    const plan = await hand.batchPlan(batchTag(0));
    progress(`hand-sql plan of the batch query: ${plan.text}${plan.indexed ? '' : '  (NO INDEX: every row is read)'}`);
    const handSide = hand;
    const handLatencies = await sequentialLoop({
      seconds: opts.seconds, warmupSeconds: WARMUP_SECONDS, next: batchSequence(opts.devices),
      ask: (tag) => handSide.batch(tag), check: (tag, rows) => must('hand-sql 10-of-N', handTenProblem(tag, rows)),
    });
    const handName = plan.indexed ? 'hand-sql' : 'hand-sql(full scan)';
    console.log(`query-10-of-${name}  corral ${latency(rest.latenciesMs)}  ${handName} ${latency(handLatencies)}  ${latencyRatio(rest.latenciesMs, handLatencies)}`);

    progress('the compiled query through a Store in this process');
    const compiled = await openCompiled(store, sqliteFile);
    try {
      const compiledLatencies = await sequentialLoop({
        seconds: opts.seconds, warmupSeconds: WARMUP_SECONDS, next: batchSequence(opts.devices),
        ask: (tag) => compiled.run(tenOfNQuery(tag), PAGE_SIZE), check: (tag, page) => must('compiled 10-of-N', storeTenProblem(tag, page)),
      });
      console.log(`query-10-of-${name}-store  compiled ${latency(compiledLatencies)}  hand ${latency(handLatencies)}  ${latencyRatio(compiledLatencies, handLatencies)}`);
    } finally {
      await compiled.close();
    }

    const groupPlan = await hand.groupByPlan();
    progress(`hand-sql plan of the GROUP BY: ${groupPlan.text}`);
    const groups = await hand.groupBy();
    const total = [...groups.values()].reduce((a, b) => a + b, 0);
    if (total !== opts.devices) throw new Error(`hand-sql GROUP BY counts ${total} devices, expected ${opts.devices}`);
    progress(`GROUP BY ${GROUP_FIELD}: ${groups.size} groups; REST, median of ${GROUP_BY_RUNS}`);
    const restGroupMs = await medianOf(GROUP_BY_RUNS, () => api.queryAll(GROUP_QUERY, GROUP_PAGE_SIZE),
      (answer) => must('REST GROUP BY', groupsProblem(answer.rows, groups)));
    const handGroupMs = await medianOf(GROUP_BY_RUNS, () => handSide.groupBy(), (answer) => must('hand-sql GROUP BY', sameGroups(answer, groups)));
    console.log(`query-group-by-${name}  corral ${ms(restGroupMs)}  hand-sql ${ms(handGroupMs)}  ratio ${ratio(restGroupMs, handGroupMs)}`);
  } finally {
    await hand?.close();
    api.close();
  }
}

export async function run(args: string[]): Promise<void> {
  const opts = parseOptions(args);
  const label = countLabel(opts.devices);
  const work = mkdtempSync(join(tmpdir(), 'corral-bench-query-'));
  const cleanups: (() => Promise<void>)[] = [];
  const cleanUp = async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch((err: unknown) => progress(`cleanup failed: ${String(err)}`));
  };
  try {
    const file = join(work, 'devices.jsonl');
    const bytes = await writeDevicesFile(file, opts.devices, { batches: opts.devices / BATCH_SIZE });
    progress(`wrote ${opts.devices} devices in ${opts.devices / BATCH_SIZE} batches of ${BATCH_SIZE} (${(bytes / 1e6).toFixed(0)} MB) to ${file}`);

    const stores: [BenchStore, string][] = [[{ kind: 'sqlite' }, SQLITE_ADDRESS]];
    const url = await requirePostgres();
    if (url) stores.push([{ kind: 'postgres', url, schema: benchSchemaName() }, POSTGRES_ADDRESS]);
    for (const [store, address] of stores) {
      if (store.kind === 'postgres') cleanups.push(() => dropSchema(store.url, store.schema));
      const hub = await startBenchHub(address, store, 'bench-query');
      cleanups.push(() => disposeHub(hub));
      progress(`${store.kind} hub up on ${address}${store.kind === 'postgres' ? ` (schema ${store.schema})` : ''}; importing`);
      const importMs = await importFleet(hub, file, opts.devices);
      progress(`imported ${opts.devices} devices in ${(importMs / 1000).toFixed(1)} s`);
      await benchHub(hub, store, opts, label);
      await cleanUp(); // one hub at a time: the machine's cores are shared with the load
    }
    if (!url) progress(`PostgreSQL half skipped: ${skipReason('PostgreSQL') ?? `no server at ${postgresUrl()}`}`);
  } finally {
    await cleanUp();
    rmSync(work, { recursive: true, force: true });
  }
}
