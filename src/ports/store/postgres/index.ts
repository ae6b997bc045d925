import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type {
  MqttSessionStore, BatchOp, C2dStore, IdentityCounts, IdentityKey, IdentityRecord, IdentityStore, ImportSession, PolicyRecord, PolicyStore,
  PresenceUpdate, ScanOptions, Store, CaCertificateStore,
} from '../index.js';
import { identityKeyText } from '../index.js';
import { IDENTITY_COLUMNS, REPLACE_COLUMNS, identityFromRow, identityValues, importUpsertSet, replaceValues } from '../sql/rows.js';
import { PostgresC2d } from './c2d.js';
import { PostgresCaCertificates } from './ca-certificates.js';
import { POSTGRES_MIGRATIONS } from './migrations.js';
import { PostgresQueryStore, postgresDeviceCondition, postgresQueryDialect } from './query.js';
import { inTransaction } from './tx.js';
import { PostgresJobs } from './jobs.js';
import type { JobStore } from '../jobs.js';
import type { PipelineStore } from '../pipeline.js';
import { PostgresPipeline } from './pipeline.js';

type Db = pg.Pool | pg.PoolClient;
type Row = Record<string, unknown>;

const COLS = IDENTITY_COLUMNS.join(', ');
const PARAMS = IDENTITY_COLUMNS.map((_, i) => `$${i + 1}`).join(', ');
/** The columns a replace writes, from $3 on (the key is $1, $2), values as replaceValues() gives them. */
const SET_REPLACED = REPLACE_COLUMNS.map((c, i) => `${c} = $${i + 3}`).join(', ');
const IMPORT_SET = importUpsertSet('GREATEST');
/** Imports at least this big refresh the planner's statistics at once. */
const ANALYZE_AFTER_ROWS = 10_000;
/**
 * How each staged op is written: its columns after (import_id, op), and rows per INSERT. Rows bind 31 (upsert) or
 * 3 (delete) parameters, far under PostgreSQL's 65535. A full chunk runs as a prepared statement: measured here,
 * prepared 250-row INSERTs stage about three times as fast as unprepared ones at the parameter limit.
 */
const STAGING = {
  upsert: { columns: `seq, ${COLS}`, perRow: IDENTITY_COLUMNS.length + 1, rowsPerStatement: 250 },
  delete: { columns: 'seq, device_id, module_id', perRow: 3, rowsPerStatement: 1000 },
} as const;
/** SQLSTATE 21000: an INSERT … ON CONFLICT DO UPDATE met the same key twice. */
const CARDINALITY_VIOLATION = '21000';

export interface PostgresOptions {
  readonly url: string;
  /**
   * Schema holding the tables: created if missing, and the whole search_path of every connection (a startup
   * `options` parameter, so an `options` in the URL would replace it).
   */
  readonly schema?: string;
  readonly poolSize?: number;
  /** Told when an idle pooled connection fails (the pool drops it; the next query opens a new one). */
  readonly onIdleError?: (err: Error) => void;
}


/** The shared store: PostgreSQL through a pg Pool; several hub nodes may use one database at once. */
export class PostgresStore implements Store {
  readonly capabilities = { skipLocked: true };
  readonly identities: IdentityStore;
  readonly policies: PolicyStore;
  readonly c2d: C2dStore;
  readonly caCertificates: CaCertificateStore;
  readonly jobs: JobStore;
  readonly mqttSessions: MqttSessionStore;
  readonly query: PostgresQueryStore;
  readonly pipeline: PipelineStore;
  private closed = false;

  private constructor(private readonly pool: pg.Pool) {
    this.jobs = new PostgresJobs(pool, postgresDeviceCondition);
    // Not bytewise-jsonb: always correct, as postgresDeviceCondition assumes.
    this.pipeline = new PostgresPipeline(pool, postgresQueryDialect({ jsonbStringsBytewise: false }));
    this.identities = new PostgresIdentities(pool);
    this.policies = new PostgresPolicies(pool);
    this.c2d = new PostgresC2d(pool);
    this.caCertificates = new PostgresCaCertificates(pool);
    this.query = new PostgresQueryStore(pool);
    this.mqttSessions = {
      get: async (clientId) => {
        const { rows } = await pool.query<{ subscriptions: string[] }>('SELECT subscriptions FROM mqtt_sessions WHERE client_id = $1', [clientId]);
        return rows[0]?.subscriptions;
      },
      put: async (clientId, subscriptions, nowMs) => {
        await pool.query(`INSERT INTO mqtt_sessions (client_id, subscriptions, updated_ms) VALUES ($1, $2, $3)
          ON CONFLICT (client_id) DO UPDATE SET subscriptions = excluded.subscriptions, updated_ms = excluded.updated_ms`,
        [clientId, JSON.stringify(subscriptions), nowMs]);
      },
      delete: async (clientId) => { await pool.query('DELETE FROM mqtt_sessions WHERE client_id = $1', [clientId]); },
    };
  }

  /** Opens a pool and checks the server answers (creating `schema` when given); throws the driver's error if not. */
  static async connect(opts: PostgresOptions): Promise<PostgresStore> {
    const schema = opts.schema === undefined ? undefined : quoteSchema(opts.schema);
    const pool = new pg.Pool({
      connectionString: opts.url,
      max: opts.poolSize ?? 10,
      // A startup parameter rather than a SET after connect: it holds before the first query on every connection.
      options: schema === undefined ? undefined : `-c search_path=${schema}`,
    });
    pool.on('error', (err) => opts.onIdleError?.(err));
    try {
      if (schema !== undefined) await inTransaction(pool, (c) => createSchema(c, schema));
      else await pool.query('SELECT 1');
    } catch (err) {
      await pool.end();
      throw err;
    }
    return new PostgresStore(pool);
  }

  async migrate(): Promise<void> {
    await inTransaction(this.pool, async (c) => {
      // Several nodes may start at once: the lock makes them take turns; it ends with the transaction.
      await c.query(`SELECT pg_advisory_xact_lock(hashtextextended('corral.migrate.' || current_schema(), 0))`);
      await c.query('CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
      const { rows } = await c.query<{ version: number }>('SELECT version FROM schema_migrations');
      const applied = new Set(rows.map((r) => r.version));
      for (const m of POSTGRES_MIGRATIONS) {
        if (applied.has(m.version)) continue;
        await c.query(m.sql);
        await c.query('INSERT INTO schema_migrations (version) VALUES ($1)', [m.version]);
      }
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }
}

/** Only plain identifiers, so the name survives the startup `options` string unescaped. */
function quoteSchema(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(name)) {
    throw new Error(`schema '${name}' is not a plain identifier (letters, digits, _; at most 63 characters)`);
  }
  return `"${name}"`;
}

async function createSchema(c: pg.PoolClient, quoted: string): Promise<void> {
  // CREATE SCHEMA IF NOT EXISTS still fails on a unique index when two nodes race; the lock serialises them.
  await c.query(`SELECT pg_advisory_xact_lock(hashtextextended('corral.schema.' || $1, 0))`, [quoted]);
  await c.query(`CREATE SCHEMA IF NOT EXISTS ${quoted}`);
}

class PostgresIdentities implements IdentityStore {
  constructor(private readonly pool: pg.Pool) {}

  async get(key: IdentityKey): Promise<IdentityRecord | undefined> {
    const { rows } = await this.pool.query<Row>(`SELECT ${COLS} FROM identities WHERE device_id = $1 AND module_id = $2`,
      [key.deviceId, key.moduleId]);
    return rows.length ? identityFromRow(rows[0]) : undefined;
  }

  async getMany(keys: readonly IdentityKey[]): Promise<IdentityRecord[]> {
    if (keys.length === 0) return [];
    const { rows } = await this.pool.query<Row>(`SELECT ${COLS} FROM identities
        WHERE (device_id, module_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
    [keys.map((k) => k.deviceId), keys.map((k) => k.moduleId)]);
    const byKey = new Map(rows.map((r) => [identityKeyText({ deviceId: r.device_id as string, moduleId: r.module_id as string }), r]));
    const out: IdentityRecord[] = [];
    for (const k of keys) {
      const row = byKey.get(identityKeyText(k));
      if (row) out.push(identityFromRow(row));
    }
    return out;
  }

  async insert(record: IdentityRecord): Promise<boolean> {
    return insertOn(this.pool, record);
  }

  async replace(record: IdentityRecord, expectedRev: number): Promise<boolean> {
    return replaceOn(this.pool, record, expectedRev);
  }

  async delete(key: IdentityKey, expectedRev?: number): Promise<boolean> {
    if (expectedRev === undefined) return deleteOn(this.pool, key);
    return inTransaction(this.pool, (c) => deleteOn(c, key, expectedRev));
  }

  async updatePresence(key: IdentityKey, p: PresenceUpdate): Promise<boolean> {
    const args: unknown[] = [key.deviceId, key.moduleId];
    const sets: string[] = [];
    const set = (column: string, value: string | undefined): void => {
      if (value !== undefined) sets.push(`${column} = $${args.push(value)}`);
    };
    set('connection_state', p.connectionState);
    set('connection_state_updated_time', p.connectionStateUpdatedTime);
    set('last_activity_time', p.lastActivityTime);
    const guard = p.onlyIfStateUpdatedAt === undefined ? '' : ` AND connection_state_updated_time = $${args.push(p.onlyIfStateUpdatedAt)}`;
    const sql = sets.length === 0
      ? `SELECT 1 FROM identities WHERE device_id = $1 AND module_id = $2${guard}`
      : `UPDATE identities SET ${sets.join(', ')} WHERE device_id = $1 AND module_id = $2${guard}`;
    return (await this.pool.query(sql, args)).rowCount === 1;
  }

  async applyBatch(ops: readonly BatchOp[]): Promise<boolean[]> {
    if (ops.length === 0) return [];
    if (ops.every((op) => op.kind === 'replace') && distinctKeys(ops)) return replaceAll(this.pool, ops as Extract<BatchOp, { kind: 'replace' }>[]);
    return inTransaction(this.pool, async (c) => {
      const results: boolean[] = [];
      for (const op of ops) results.push(await applyOn(c, op));
      return results;
    });
  }

  async scan(o: ScanOptions): Promise<IdentityRecord[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    const param = (v: unknown): string => `$${args.push(v)}`;
    if (o.scope === 'devices') where.push(`module_id = ''`);
    if (o.scope === 'modules') where.push(`device_id = ${param(o.deviceId ?? '')} AND module_id <> ''`);
    if (o.after) where.push(`(device_id, module_id) > (${param(o.after.deviceId)}, ${param(o.after.moduleId)})`);
    const sql = `SELECT ${COLS} FROM identities ${where.length ? 'WHERE ' + where.join(' AND ') : ''}
      ORDER BY device_id, module_id LIMIT ${param(o.limit)}`;
    return (await this.pool.query<Row>(sql, args)).rows.map(identityFromRow);
  }

  async counts(): Promise<IdentityCounts> {
    const { rows } = await this.pool.query<IdentityCounts>(`SELECT count(*)::integer AS total,
        (count(*) FILTER (WHERE status = 'enabled'))::integer AS enabled,
        (count(*) FILTER (WHERE status = 'disabled'))::integer AS disabled,
        (count(*) FILTER (WHERE connection_state = 'Connected'))::integer AS connected
      FROM identities WHERE module_id = ''`);
    const r = rows[0];
    return { total: r.total, enabled: r.enabled, disabled: r.disabled, connected: r.connected };
  }

  async beginImport(): Promise<ImportSession> {
    return new PostgresImport(this.pool, randomUUID());
  }
}


function applyOn(c: pg.PoolClient, op: BatchOp): Promise<boolean> {
  switch (op.kind) {
    case 'insert': return insertOn(c, op.record);
    case 'replace': return replaceOn(c, op.record, op.expectedRev);
    case 'delete': return deleteOn(c, op.key, op.expectedRev);
  }
}

async function insertOn(db: Db, record: IdentityRecord): Promise<boolean> {
  const r = await db.query(`INSERT INTO identities (${COLS}) VALUES (${PARAMS}) ON CONFLICT DO NOTHING`, identityValues(record, 1));
  return r.rowCount === 1;
}

async function replaceOn(db: Db, record: IdentityRecord, expectedRev: number): Promise<boolean> {
  const values = [record.deviceId, record.moduleId, ...replaceValues(record, expectedRev + 1), expectedRev];
  const r = await db.query(`UPDATE identities SET ${SET_REPLACED}
      WHERE device_id = $1 AND module_id = $2 AND rev = $${values.length}`, values);
  return r.rowCount === 1;
}

const JSONB_COLUMNS = new Set(['parent_scopes', 'tags', 'desired', 'reported', 'desired_meta', 'reported_meta']);
const INTEGER_COLUMNS = new Set(['iot_edge', 'desired_version', 'reported_version', 'twin_version', 'rev']);
const castOf = (c: string): string => (JSONB_COLUMNS.has(c) ? '::jsonb' : INTEGER_COLUMNS.has(c) ? '::integer' : '');
/**
 * Every replace of a batch in one statement (one round trip instead of one per record; a job's batch of 1000 twin
 * writes): each row is written only where its rev is still the expected one, and RETURNING tells which were.
 */
const REPLACE_ALL = `UPDATE identities AS i SET ${REPLACE_COLUMNS.map((c) => `${c} = v.${c}${castOf(c)}`).join(', ')}
  FROM unnest(${['device_id', 'module_id', 'expected_rev', ...REPLACE_COLUMNS].map((_, k) => `$${k + 1}::text[]`).join(', ')})
    AS v(device_id, module_id, expected_rev, ${REPLACE_COLUMNS.join(', ')})
  WHERE i.device_id = v.device_id AND i.module_id = v.module_id AND i.rev = v.expected_rev::integer
  RETURNING i.device_id, i.module_id`;

/** One statement writes a row at most once, so a batch naming a record twice takes the op-by-op path. */
function distinctKeys(ops: readonly BatchOp[]): boolean {
  return new Set(ops.map((op) => identityKeyText(op.kind === 'delete' ? op.key : op.record))).size === ops.length;
}

async function replaceAll(db: Db, ops: readonly Extract<BatchOp, { kind: 'replace' }>[]): Promise<boolean[]> {
  const text = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
  const columns: (string | null)[][] = Array.from({ length: REPLACE_COLUMNS.length + 3 }, () => []);
  for (const op of ops) {
    const row = [op.record.deviceId, op.record.moduleId, op.expectedRev, ...replaceValues(op.record, op.expectedRev + 1)];
    row.forEach((v, k) => columns[k]?.push(text(v)));
  }
  const { rows } = await db.query<{ device_id: string; module_id: string }>({ name: 'corral_replace_all', text: REPLACE_ALL, values: columns });
  const written = new Set(rows.map((r) => identityKeyText({ deviceId: r.device_id, moduleId: r.module_id })));
  return ops.map((op) => written.has(identityKeyText(op.record)));
}

/** With expectedRev, `db` must be in a transaction: the row lock holds the rev until the delete. */
async function deleteOn(db: Db, key: IdentityKey, expectedRev?: number): Promise<boolean> {
  if (expectedRev !== undefined) {
    const { rows } = await db.query<{ rev: number }>('SELECT rev FROM identities WHERE device_id = $1 AND module_id = $2 FOR UPDATE',
      [key.deviceId, key.moduleId]);
    if (rows[0]?.rev !== expectedRev) return false;
  }
  const r = key.moduleId === ''
    ? await db.query('DELETE FROM identities WHERE device_id = $1', [key.deviceId])
    : await db.query('DELETE FROM identities WHERE device_id = $1 AND module_id = $2', [key.deviceId, key.moduleId]);
  return (r.rowCount ?? 0) > 0;
}

/** `INSERT … VALUES` of `rows` tuples: `$1` is the import id, each tuple binds its own parameters after it. */
function stagingInsertSql(op: 'upsert' | 'delete', rows: number): string {
  const { columns, perRow } = STAGING[op];
  const tuples: string[] = [];
  for (let i = 0, p = 2; i < rows; i++) {
    const params = Array.from({ length: perRow }, () => `$${p++}`);
    tuples.push(`($1, '${op}', ${params.join(', ')})`);
  }
  return `INSERT INTO import_staging (import_id, op, ${columns}) VALUES ${tuples.join(', ')}`;
}

/** The full-chunk statements, named so each pooled connection parses and plans them once. */
const STAGE_FULL_CHUNK = {
  upsert: { name: 'corral_stage_upsert', text: stagingInsertSql('upsert', STAGING.upsert.rowsPerStatement) },
  delete: { name: 'corral_stage_delete', text: stagingInsertSql('delete', STAGING.delete.rowsPerStatement) },
} as const;

function stagingInsert(op: 'upsert' | 'delete', rows: number, values: unknown[]): pg.QueryConfig {
  if (rows === STAGING[op].rowsPerStatement) return { ...STAGE_FULL_CHUNK[op], values };
  return { text: stagingInsertSql(op, rows), values };
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

class PostgresImport implements ImportSession {
  private seq = 0;

  constructor(private readonly pool: pg.Pool, private readonly importId: string) {}

  async stage(upserts: readonly IdentityRecord[], deletes: readonly IdentityKey[]): Promise<void> {
    if (upserts.length + deletes.length === 0) return;
    // Sequence numbers are taken before the first await, so concurrent stage() calls never share one.
    const statements = [
      ...chunks(upserts, STAGING.upsert.rowsPerStatement).map((rows) => this.upsertStatement(rows)),
      ...chunks(deletes, STAGING.delete.rowsPerStatement).map((keys) => this.deleteStatement(keys)),
    ];
    await inTransaction(this.pool, async (c) => {
      for (const s of statements) await c.query(s);
    });
  }

  async commit(): Promise<{ upserted: number; deleted: number }> {
    const id = this.importId;
    const result = await inTransaction(this.pool, async (c) => {
      const modules = await c.query(`DELETE FROM identities WHERE (device_id, module_id) IN
          (SELECT device_id, module_id FROM import_staging WHERE import_id = $1 AND op = 'delete' AND module_id <> '')`, [id]);
      const devices = await c.query(`DELETE FROM identities WHERE device_id IN
          (SELECT device_id FROM import_staging WHERE import_id = $1 AND op = 'delete' AND module_id = '')`, [id]);
      const upserted = await upsertStaged(c, id);
      await c.query('DELETE FROM import_staging WHERE import_id = $1', [id]);
      return { upserted, deleted: (modules.rowCount ?? 0) + (devices.rowCount ?? 0) };
    });
    // After a bulk change the planner's row counts are stale until autovacuum comes by; fleet queries plan on them.
    if (result.upserted + result.deleted >= ANALYZE_AFTER_ROWS) await this.pool.query('ANALYZE identities');
    return result;
  }

  async abort(): Promise<void> {
    await this.pool.query('DELETE FROM import_staging WHERE import_id = $1', [this.importId]);
  }

  private upsertStatement(records: readonly IdentityRecord[]): pg.QueryConfig {
    const values: unknown[] = [this.importId];
    for (const r of records) values.push(this.seq++, ...identityValues(r, 1));
    return stagingInsert('upsert', records.length, values);
  }

  private deleteStatement(keys: readonly IdentityKey[]): pg.QueryConfig {
    const values: unknown[] = [this.importId];
    for (const k of keys) values.push(this.seq++, k.deviceId, k.moduleId);
    return stagingInsert('delete', keys.length, values);
  }
}

/**
 * Writes the staged upserts; an existing record takes `rev + 1` (staged rows carry rev 1). One statement cannot
 * touch a key twice, so when a key was staged more than once the last staging wins and the rev moves on once per
 * staging, as applying them one by one would. Returns the number of staged upserts applied.
 */
async function upsertStaged(c: pg.PoolClient, importId: string): Promise<number> {
  const conflict = `ON CONFLICT (device_id, module_id) DO UPDATE SET ${IMPORT_SET}, rev = identities.rev + excluded.rev`;
  await c.query('SAVEPOINT upsert_staged');
  try {
    const r = await c.query(`INSERT INTO identities (${COLS})
        SELECT ${COLS} FROM import_staging WHERE import_id = $1 AND op = 'upsert' ${conflict}`, [importId]);
    return r.rowCount ?? 0;
  } catch (err) {
    if ((err as { code?: unknown }).code !== CARDINALITY_VIOLATION) throw err;
  }
  await c.query('ROLLBACK TO SAVEPOINT upsert_staged');
  const cols = IDENTITY_COLUMNS.filter((col) => col !== 'rev').join(', ');
  await c.query(`INSERT INTO identities (${COLS})
      SELECT ${cols}, times FROM (
        SELECT DISTINCT ON (device_id, module_id) ${cols}, count(*) OVER (PARTITION BY device_id, module_id)::integer AS times
        FROM import_staging WHERE import_id = $1 AND op = 'upsert' ORDER BY device_id, module_id, seq DESC
      ) AS last ${conflict}`, [importId]);
  const { rows } = await c.query<{ n: number }>(`SELECT count(*)::integer AS n FROM import_staging
      WHERE import_id = $1 AND op = 'upsert'`, [importId]);
  return rows[0].n;
}

class PostgresPolicies implements PolicyStore {
  constructor(private readonly pool: pg.Pool) {}

  async list(): Promise<PolicyRecord[]> {
    const { rows } = await this.pool.query<Row>('SELECT name, rights, primary_key, secondary_key FROM policies ORDER BY name');
    return rows.map((r) => ({
      name: r.name as string,
      rights: r.rights as string[],
      primaryKey: r.primary_key as string,
      secondaryKey: r.secondary_key as string,
    }));
  }

  async insertMissing(records: readonly PolicyRecord[]): Promise<void> {
    if (records.length === 0) return;
    const values = records.flatMap((p) => [p.name, JSON.stringify(p.rights), p.primaryKey, p.secondaryKey]);
    const tuples = records.map((_, i) => `($${4 * i + 1}, $${4 * i + 2}, $${4 * i + 3}, $${4 * i + 4})`);
    await this.pool.query(`INSERT INTO policies (name, rights, primary_key, secondary_key) VALUES ${tuples.join(', ')}
      ON CONFLICT DO NOTHING`, values);
  }
}
