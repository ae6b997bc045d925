import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { startHub, tempDataDir, type RunningHub } from '../../test/support/hub-process.js';
import { serviceToken } from '../../test/support/rest.js';
import { streamFile } from './https-load.js';

/**
 * Pieces benchmarks share around a real hub process: flags, figure labels, starting a hub on either store,
 * importing a fleet file, and the PostgreSQL schema a hub runs in.
 */

/** A `--name N` flag: a positive integer (`1_000_000` allowed), or `fallback` when absent. */
export function positiveInt(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text.replace(/_/g, ''));
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got '${text}'`);
  return n;
}

/** 1000000 → '1m', 20000 → '20k', for figure names. */
export function countLabel(n: number): string {
  if (n % 1_000_000 === 0) return `${n / 1_000_000}m`;
  if (n % 1000 === 0) return `${n / 1000}k`;
  return String(n);
}

/** A fresh schema name for a PostgreSQL hub: `bench_<12 hex>`. */
export function benchSchemaName(): string {
  return `bench_${randomBytes(6).toString('hex')}`;
}

export type BenchStore = { readonly kind: 'sqlite' } | { readonly kind: 'postgres'; readonly url: string; readonly schema: string };

/** `corral start` on `address` with a temp data dir, on SQLite or in a PostgreSQL schema (created by the hub). */
export function startBenchHub(address: string, store: BenchStore, label: string): Promise<RunningHub> {
  return startHub({
    address,
    dataDir: tempDataDir(`${label}-${store.kind}`),
    args: store.kind === 'sqlite' ? [] : ['--store', 'postgres', '--postgres-url', store.url, '--postgres-schema', store.schema],
  });
}

/** Streams the JSONL file to the hub's import and checks the report; resolves with the wall time in ms. */
export async function importFleet(hub: RunningHub, file: string, devices: number): Promise<number> {
  const res = await streamFile(hub.info.hostName, 'POST', '/corral/v1/registry/import', {
    authorization: serviceToken(hub.info.connectionStrings.iothubowner),
    'content-type': 'application/x-ndjson',
  }, file);
  const report = res.json as { ok?: unknown; upserted?: unknown } | undefined;
  if (res.status !== 200 || report?.ok !== true || report.upserted !== devices) {
    throw new Error(`import into ${hub.info.hostName} failed: HTTP ${res.status} ${res.text.slice(0, 2000)}\n${hub.logs.slice(-20).join('\n')}`);
  }
  return res.elapsedMs;
}

/** Drops a schema a benchmark's hub (or peer) made, with everything in it. */
export async function dropSchema(url: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}
