import Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type {
  MqttSessionStore, BatchOp, C2dStore, IdentityCounts, IdentityKey, IdentityRecord, IdentityStore, ImportSession, PolicyRecord, PolicyStore,
  PresenceUpdate, ScanOptions, Store, CaCertificateStore,
} from '../index.js';
import { IDENTITY_COLUMNS, REPLACE_COLUMNS, identityFromRow, identityValues, importUpsertSet, replaceValues } from '../sql/rows.js';
import { SqliteC2d } from './c2d.js';
import { SqliteCaCertificates } from './ca-certificates.js';
import { SqliteJobs } from './jobs.js';
import type { JobStore } from '../jobs.js';
import type { PipelineStore } from '../pipeline.js';
import { SqlitePipeline } from './pipeline.js';
import { SQLITE_MIGRATIONS } from './migrations.js';
import { SQLITE_QUERY_DIALECT, SqliteQueryStore, sqliteDeviceCondition } from './query.js';

type Db = Database.Database;
type Row = Record<string, unknown>;

const COLS = IDENTITY_COLUMNS.join(', ');
const PARAMS = IDENTITY_COLUMNS.map(() => '?').join(', ');
const SET_REPLACED = REPLACE_COLUMNS.map((c) => `${c} = ?`).join(', ');


/** The embedded store: one SQLite file in WAL mode. better-sqlite3 is synchronous, so each call is atomic. */
export class SqliteStore implements Store {
  readonly capabilities = { skipLocked: false };
  readonly identities: IdentityStore;
  readonly policies: PolicyStore;
  readonly c2d: C2dStore;
  readonly caCertificates: CaCertificateStore;
  readonly mqttSessions: MqttSessionStore;
  readonly jobs: JobStore;
  readonly query: SqliteQueryStore;
  readonly pipeline: PipelineStore;

  private constructor(private readonly db: Db) {
    this.jobs = new SqliteJobs(db, sqliteDeviceCondition);
    this.pipeline = new SqlitePipeline(db, SQLITE_QUERY_DIALECT);
    this.identities = new SqliteIdentities(db);
    this.policies = new SqlitePolicies(db);
    this.c2d = new SqliteC2d(db);
    this.caCertificates = new SqliteCaCertificates(db);
    this.query = new SqliteQueryStore(db);
    this.mqttSessions = {
      get: async (clientId) => {
        const text = db.prepare('SELECT subscriptions FROM mqtt_sessions WHERE client_id = ?').pluck().get(clientId) as string | undefined;
        return text === undefined ? undefined : JSON.parse(text) as string[];
      },
      put: async (clientId, subscriptions, nowMs) => {
        db.prepare(`INSERT INTO mqtt_sessions (client_id, subscriptions, updated_ms) VALUES (?, ?, ?)
          ON CONFLICT (client_id) DO UPDATE SET subscriptions = excluded.subscriptions, updated_ms = excluded.updated_ms`)
          .run(clientId, JSON.stringify(subscriptions), nowMs);
      },
      delete: async (clientId) => { db.prepare('DELETE FROM mqtt_sessions WHERE client_id = ?').run(clientId); },
    };
  }

  /** Opens (creating) the database file; ':memory:' for tests. */
  static open(file: string): SqliteStore {
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('busy_timeout = 5000');
    // 128 MiB of page cache (the default is 2 MiB): a million-device registry's indexes then stay in memory, which
    // keeps lookups and imports from thrashing; temp tables (import staging) get the same room.
    db.pragma('cache_size = -131072');
    // Reads of a registry bigger than the page cache (a million twins is ~1.5 GB) come straight from the OS page
    // cache through a memory map instead of a read call per page.
    db.pragma('mmap_size = 8589934592');
    db.pragma('foreign_keys = ON');
    return new SqliteStore(db);
  }

  async migrate(): Promise<void> {
    this.db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)');
    const applied = new Set(this.db.prepare('SELECT version FROM schema_migrations').pluck().all() as number[]);
    for (const m of SQLITE_MIGRATIONS) {
      if (applied.has(m.version)) continue;
      this.db.transaction(() => {
        this.db.exec(m.sql);
        this.db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(m.version, new Date().toISOString());
      }).immediate();
    }
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}

function prepareIdentityStatements(db: Db) {
  return {
    get: db.prepare(`SELECT ${COLS} FROM identities WHERE device_id = ? AND module_id = ?`),
    insert: db.prepare(`INSERT INTO identities (${COLS}) VALUES (${PARAMS}) ON CONFLICT DO NOTHING`),
    replace: db.prepare(`UPDATE identities SET ${SET_REPLACED} WHERE device_id = ? AND module_id = ? AND rev = ?`),
    deleteDevice: db.prepare('DELETE FROM identities WHERE device_id = ?'),
    deleteModule: db.prepare(`DELETE FROM identities WHERE device_id = ? AND module_id = ?`),
    revOf: db.prepare('SELECT rev FROM identities WHERE device_id = ? AND module_id = ?').pluck(),
    counts: db.prepare(`SELECT COUNT(*) AS total,
        COALESCE(SUM(status = 'enabled'), 0) AS enabled,
        COALESCE(SUM(status = 'disabled'), 0) AS disabled,
        COALESCE(SUM(connection_state = 'Connected'), 0) AS connected
      FROM identities WHERE module_id = ''`),
  };
}

class SqliteIdentities implements IdentityStore {
  private prepared?: ReturnType<typeof prepareIdentityStatements>;
  /** Presence UPDATEs by the set of columns they write (at most seven shapes). */
  private readonly presenceUpdates = new Map<string, Database.Statement>();

  constructor(private readonly db: Db) {}

  /** Prepared on first use: the store is built before migrate() has created the tables. */
  private get stmts(): ReturnType<typeof prepareIdentityStatements> {
    this.prepared ??= prepareIdentityStatements(this.db);
    return this.prepared;
  }

  async get(key: IdentityKey): Promise<IdentityRecord | undefined> {
    const row = this.stmts.get.get(key.deviceId, key.moduleId) as Row | undefined;
    return row ? identityFromRow(row) : undefined;
  }

  async getMany(keys: readonly IdentityKey[]): Promise<IdentityRecord[]> {
    const out: IdentityRecord[] = [];
    for (const k of keys) {
      const row = this.stmts.get.get(k.deviceId, k.moduleId) as Row | undefined;
      if (row) out.push(identityFromRow(row));
    }
    return out;
  }

  async insert(record: IdentityRecord): Promise<boolean> {
    return this.insertSync(record);
  }

  async replace(record: IdentityRecord, expectedRev: number): Promise<boolean> {
    return this.replaceSync(record, expectedRev);
  }

  async delete(key: IdentityKey, expectedRev?: number): Promise<boolean> {
    return this.db.transaction(() => this.deleteSync(key, expectedRev)).immediate();
  }

  async updatePresence(key: IdentityKey, p: PresenceUpdate): Promise<boolean> {
    const sets: string[] = [];
    const args: unknown[] = [];
    if (p.connectionState !== undefined) { sets.push('connection_state = ?'); args.push(p.connectionState); }
    if (p.connectionStateUpdatedTime !== undefined) { sets.push('connection_state_updated_time = ?'); args.push(p.connectionStateUpdatedTime); }
    if (p.lastActivityTime !== undefined) { sets.push('last_activity_time = ?'); args.push(p.lastActivityTime); }
    if (sets.length === 0) return this.stmts.revOf.get(key.deviceId, key.moduleId) !== undefined;
    const guard = p.onlyIfStateUpdatedAt === undefined ? '' : ' AND connection_state_updated_time = ?';
    const sql = `UPDATE identities SET ${sets.join(', ')} WHERE device_id = ? AND module_id = ?${guard}`;
    let stmt = this.presenceUpdates.get(sql);
    if (!stmt) this.presenceUpdates.set(sql, stmt = this.db.prepare(sql));
    const where = p.onlyIfStateUpdatedAt === undefined ? [key.deviceId, key.moduleId] : [key.deviceId, key.moduleId, p.onlyIfStateUpdatedAt];
    return stmt.run(...args, ...where).changes === 1;
  }

  async applyBatch(ops: readonly BatchOp[]): Promise<boolean[]> {
    return this.db.transaction(() => ops.map((op) => {
      switch (op.kind) {
        case 'insert': return this.insertSync(op.record);
        case 'replace': return this.replaceSync(op.record, op.expectedRev);
        case 'delete': return this.deleteSync(op.key, op.expectedRev);
      }
    })).immediate();
  }

  async scan(o: ScanOptions): Promise<IdentityRecord[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (o.scope === 'devices') where.push(`module_id = ''`);
    if (o.scope === 'modules') { where.push(`device_id = ? AND module_id <> ''`); args.push(o.deviceId ?? ''); }
    if (o.after) { where.push('(device_id, module_id) > (?, ?)'); args.push(o.after.deviceId, o.after.moduleId); }
    const sql = `SELECT ${COLS} FROM identities ${where.length ? 'WHERE ' + where.join(' AND ') : ''}
      ORDER BY device_id, module_id LIMIT ?`;
    return (this.db.prepare(sql).all(...args, o.limit) as Row[]).map(identityFromRow);
  }

  async counts(): Promise<IdentityCounts> {
    const r = this.stmts.counts.get() as Record<string, number>;
    return { total: r.total, enabled: r.enabled, disabled: r.disabled, connected: r.connected };
  }

  async beginImport(): Promise<ImportSession> {
    return new SqliteImport(this.db, randomUUID());
  }

  private insertSync(record: IdentityRecord): boolean {
    return this.stmts.insert.run(...identityValues(record, 1)).changes === 1;
  }

  private replaceSync(record: IdentityRecord, expectedRev: number): boolean {
    const values = replaceValues(record, expectedRev + 1);
    return this.stmts.replace.run(...values, record.deviceId, record.moduleId, expectedRev).changes === 1;
  }

  private deleteSync(key: IdentityKey, expectedRev?: number): boolean {
    if (expectedRev !== undefined && this.stmts.revOf.get(key.deviceId, key.moduleId) !== expectedRev) return false;
    const stmt = key.moduleId === '' ? this.stmts.deleteDevice : this.stmts.deleteModule;
    const args = key.moduleId === '' ? [key.deviceId] : [key.deviceId, key.moduleId];
    return stmt.run(...args).changes > 0;
  }
}

/**
 * An import stages into a TEMP table of its own: temp tables live outside the WAL and are never synced, so staging
 * a million rows costs one write each, and the registry sees nothing until commit copies them in one transaction.
 */
class SqliteImport implements ImportSession {
  private seq = 0;
  /** Set once committed or aborted: the staging table is gone, and a later commit applies nothing. */
  private done = false;
  private readonly table: string;
  private readonly stageUpsert;
  private readonly stageDelete;

  constructor(private readonly db: Db, importId: string) {
    this.table = `temp.staging_${importId.replace(/-/g, '')}`;
    db.exec(`CREATE TABLE ${this.table} (seq INTEGER PRIMARY KEY, op TEXT NOT NULL, ${IDENTITY_COLUMNS.join(', ')})`);
    this.stageUpsert = db.prepare(`INSERT INTO ${this.table} (seq, op, ${COLS}) VALUES (?, 'upsert', ${PARAMS})`);
    this.stageDelete = db.prepare(`INSERT INTO ${this.table} (seq, op, device_id, module_id) VALUES (?, 'delete', ?, ?)`);
  }

  async stage(upserts: readonly IdentityRecord[], deletes: readonly IdentityKey[]): Promise<void> {
    if (this.done) throw new Error('this import was already committed or aborted');
    this.db.transaction(() => {
      for (const r of upserts) this.stageUpsert.run(this.seq++, ...identityValues(r, 1));
      for (const k of deletes) this.stageDelete.run(this.seq++, k.deviceId, k.moduleId);
    }).immediate();
  }

  async commit(): Promise<{ upserted: number; deleted: number }> {
    if (this.done) return { upserted: 0, deleted: 0 };
    this.done = true;
    const t = this.table;
    const result = this.db.transaction(() => {
      const deletedModules = this.db.prepare(`DELETE FROM identities WHERE (device_id, module_id) IN
          (SELECT device_id, module_id FROM ${t} WHERE op = 'delete' AND module_id <> '')`).run().changes;
      const deletedDevices = this.db.prepare(`DELETE FROM identities WHERE device_id IN
          (SELECT device_id FROM ${t} WHERE op = 'delete' AND module_id = '')`).run().changes;
      const upserted = this.db.prepare(`INSERT INTO identities (${COLS})
          SELECT ${COLS} FROM ${t} WHERE op = 'upsert' ORDER BY seq
          ON CONFLICT (device_id, module_id) DO UPDATE SET ${importUpsertSet('MAX')}, rev = identities.rev + 1`).run().changes;
      return { upserted, deleted: deletedModules + deletedDevices };
    }).immediate();
    this.db.exec(`DROP TABLE ${t}`);
    return result;
  }

  async abort(): Promise<void> {
    this.done = true;
    this.db.exec(`DROP TABLE IF EXISTS ${this.table}`);
  }
}

class SqlitePolicies implements PolicyStore {
  constructor(private readonly db: Db) {}

  async list(): Promise<PolicyRecord[]> {
    const rows = this.db.prepare('SELECT name, rights, primary_key, secondary_key FROM policies ORDER BY name').all() as Row[];
    return rows.map((r) => ({
      name: r.name as string,
      rights: JSON.parse(r.rights as string) as string[],
      primaryKey: r.primary_key as string,
      secondaryKey: r.secondary_key as string,
    }));
  }

  async insertMissing(records: readonly PolicyRecord[]): Promise<void> {
    const stmt = this.db.prepare('INSERT INTO policies (name, rights, primary_key, secondary_key) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING');
    this.db.transaction(() => {
      for (const p of records) stmt.run(p.name, JSON.stringify(p.rights), p.primaryKey, p.secondaryKey);
    }).immediate();
  }
}
