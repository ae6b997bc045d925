import { connect } from 'node:net';
import { userInfo } from 'node:os';
import pg from 'pg';
import { redactUrl } from '../../src/ports/bus/nats/index.js';

/** How long a probe waits for a service before calling it unreachable. */
const PROBE_TIMEOUT_MS = 2000;

type Service = 'PostgreSQL' | 'NATS';

/** Why the last probe of each service failed, for the skip reason. */
const failures = new Map<Service, string>();

/** CORRAL_TEST_POSTGRES_URL or the local test database; with no user in it, the OS user (as psql/libpq do). */
export function postgresUrl(): string {
  const url = new URL(process.env.CORRAL_TEST_POSTGRES_URL ?? 'postgres://127.0.0.1:5432/test');
  if (!url.username && !process.env.PGUSER) url.username = process.env.USER ?? userInfo().username;
  return url.toString();
}

export function natsUrl(): string {
  return process.env.CORRAL_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
}

/**
 * The PostgreSQL URL when the server answers `SELECT 1` within 2 s, else undefined: the caller then registers its
 * tests with `skip: skipReason('PostgreSQL')`, so they show as skipped. With CORRAL_REQUIRE_SERVICES=1 (CI) an
 * unreachable server throws instead, failing the test file.
 */
export async function requirePostgres(): Promise<string | undefined> {
  const url = postgresUrl();
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: PROBE_TIMEOUT_MS, query_timeout: PROBE_TIMEOUT_MS });
  client.on('error', () => undefined); // a late socket error after a failed probe has nobody to tell
  try {
    await client.connect();
    await client.query('SELECT 1');
    return url;
  } catch (err) {
    return unavailable('PostgreSQL', url, err);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The NATS URL when its port accepts a TCP connection within 2 s; otherwise as requirePostgres. */
export async function requireNats(): Promise<string | undefined> {
  const url = natsUrl();
  try {
    const { hostname, port } = new URL(url);
    await tcpProbe(hostname, Number(port || 4222));
    return url;
  } catch (err) {
    return unavailable('NATS', url, err);
  }
}

/** Why the service's tests are skipped; undefined when its last probe succeeded (or none ran). */
export function skipReason(service: Service): string | undefined {
  return failures.get(service);
}

function unavailable(service: Service, url: string, cause: unknown): undefined {
  const reason = `${service} not reachable at ${redactUrl(url)}: ${cause instanceof Error ? cause.message : String(cause)}`;
  if (process.env.CORRAL_REQUIRE_SERVICES === '1') throw new Error(`${reason} (CORRAL_REQUIRE_SERVICES=1)`, { cause });
  failures.set(service, reason);
  return undefined;
}

function tcpProbe(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    socket.setTimeout(PROBE_TIMEOUT_MS, () => socket.destroy(new Error(`no answer within ${PROBE_TIMEOUT_MS} ms`)));
    socket.once('connect', () => {
      socket.end();
      resolve();
    });
    socket.once('error', reject);
  });
}


/** Drops test schemas (and all in them) on the server at `url`, on a connection of its own. */
export async function dropSchemas(url: string, schemas: readonly string[]): Promise<void> {
  if (schemas.length === 0) return;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (const s of schemas) await client.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
  } finally {
    await client.end();
  }
}
