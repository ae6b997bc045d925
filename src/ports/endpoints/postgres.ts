import pg from 'pg';
import { redactUrl } from '../bus/nats/index.js';
import { checkIdentifier } from './spec.js';
import { EndpointFailed, type Endpoint, type EndpointBatch, type EndpointSpec } from './index.js';

export type PostgresEndpointSpec = Extract<EndpointSpec, { readonly type: 'postgres' }>;

/** Two connections: a route delivers one batch at a time, and a second covers a slow one being replaced. */
const POOL_SIZE = 2;
const CONNECT_TIMEOUT_MS = 10_000;
/** Client-side limit on one statement, so a stalled server ends in a retryable failure, not a hung route. */
const QUERY_TIMEOUT_MS = 30_000;
/**
 * SQLSTATE classes and codes where the same statement may succeed later: connection exceptions (08), transaction
 * rollbacks such as deadlocks (40), insufficient resources (53), operator intervention (57: shutdown, cancel) and
 * system errors (58). Everything else (permission denied, bad data, missing database) needs a human.
 */
const RETRYABLE_SQLSTATE = /^(08|40|53|57|58)/;

/**
 * Writes each batch as rows of one INSERT into `schema.table` (both created at first delivery when absent); the key
 * (partition, sequence, route) makes a redelivery insert nothing. Connection failures and timeouts are retryable, SQL
 * refusals (permission denied, bad data) are not.
 */
export class PostgresEndpoint implements Endpoint {
  private readonly pool: pg.Pool;
  private readonly table: string;
  private tableReady: Promise<void> | undefined;

  /** Throws InvalidEndpointSpec for a table or schema name that is not a plain identifier. */
  constructor(private readonly name: string, private readonly spec: PostgresEndpointSpec) {
    const table = `"${checkIdentifier('table', spec.table)}"`;
    this.table = spec.schema === undefined ? table : `"${checkIdentifier('schema', spec.schema)}".${table}`;
    this.pool = new pg.Pool({ connectionString: spec.url, max: POOL_SIZE, connectionTimeoutMillis: CONNECT_TIMEOUT_MS, query_timeout: QUERY_TIMEOUT_MS });
    // An idle connection's failure: the pool drops it and the next delivery opens another.
    this.pool.on('error', () => undefined);
  }

  async deliver(batch: EndpointBatch): Promise<void> {
    const { messages } = batch;
    if (messages.length === 0) return;
    await this.ensureTable();
    try {
      // One statement whatever the batch size: eight array parameters, unnested into rows.
      await this.pool.query(`INSERT INTO ${this.table}
          (partition, sequence, route, device_id, module_id, source, enqueued_time, message)
        SELECT u.p, u.s, $1, u.d, u.m, u.src, 'epoch'::timestamptz + u.e * interval '1 millisecond', u.j::jsonb
        FROM unnest($2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[]) AS u(p, s, d, m, src, e, j)
        ON CONFLICT DO NOTHING`, [
        batch.route,
        messages.map((m) => m.partition),
        messages.map((m) => String(m.sequence)),
        messages.map((m) => m.deviceId),
        messages.map((m) => m.moduleId),
        messages.map((m) => m.source),
        messages.map((m) => String(Math.trunc(m.enqueuedTimeMs))),
        messages.map((m) => m.json),
      ]);
    } catch (err) {
      throw this.failure(`insert into ${this.table}`, err);
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  /** Creates the schema and table once per endpoint; a failed attempt is tried again at the next delivery. */
  private ensureTable(): Promise<void> {
    this.tableReady ??= this.createTable().catch((err: unknown) => {
      this.tableReady = undefined;
      throw this.failure(`create ${this.table}`, err);
    });
    return this.tableReady;
  }

  private async createTable(): Promise<void> {
    const client = await this.pool.connect();
    let failed: Error | undefined;
    try {
      // Nothing to do when it exists: CREATE … IF NOT EXISTS would still need CREATE rights the writer may lack.
      const { rows } = await client.query<{ oid: string | null }>('SELECT to_regclass($1) AS oid', [this.table]);
      if (rows[0]?.oid != null) return;
      await client.query('BEGIN');
      // Nodes starting together take turns; IF NOT EXISTS alone races on the catalog's unique indexes.
      await client.query(`SELECT pg_advisory_xact_lock(hashtextextended('corral.endpoint.' || $1, 0))`, [this.table]);
      if (this.spec.schema !== undefined) {
        const { rowCount } = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [this.spec.schema]);
        if (rowCount === 0) await client.query(`CREATE SCHEMA IF NOT EXISTS "${this.spec.schema}"`);
      }
      await client.query(`CREATE TABLE IF NOT EXISTS ${this.table} (
        partition text NOT NULL,
        sequence bigint NOT NULL,
        route text NOT NULL,
        device_id text NOT NULL,
        module_id text NOT NULL,
        source text NOT NULL,
        enqueued_time timestamptz NOT NULL,
        message jsonb NOT NULL,
        PRIMARY KEY (partition, sequence, route))`);
      await client.query('COMMIT');
    } catch (err) {
      failed = err instanceof Error ? err : new Error(String(err));
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      // With an error the connection is closed, not pooled: it may be mid-transaction or broken.
      client.release(failed);
    }
  }

  private failure(operation: string, err: unknown): EndpointFailed {
    if (err instanceof EndpointFailed) return err;
    if (err instanceof pg.DatabaseError && err.code !== undefined) {
      const retryable = RETRYABLE_SQLSTATE.test(err.code);
      return new EndpointFailed(this.name, `${operation} failed: ${err.message} (SQLSTATE ${err.code})`, retryable, { cause: err });
    }
    // Not from the server: refused or broken connections, timeouts. The URL is shown without its password.
    const message = err instanceof Error ? err.message : String(err);
    return new EndpointFailed(this.name, `${operation} at ${redactUrl(this.spec.url)} failed: ${message}`, true, { cause: err });
  }
}
