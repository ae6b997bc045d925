import type pg from 'pg';
import type { IdentityKey, JsonObject } from '../index.js';
import { identityKeyText } from '../index.js';
import type {
  AlertCounts, AlertListOptions, AlertRecord, DeviceHealth, DeviceStateRecord, DeviceStateUpdate, OverdueOptions, PipelineSettingKind,
  PipelineStore, SettingPrecondition, SettingRecord,
} from '../pipeline.js';
import {
  ALERT_COLUMNS, OPEN_ALERT_STATUSES, alertCountsFromRows, alertFromRow, alertValues, checkpointsFromRows, deviceStateFromRow,
  foldDeviceUpdates, mergeDeviceUpdate, overdueQuery, raisedAlert, settingFromRow, storedStateFromRow, uniqueKeys, type AlertChange,
  type NewAlert,
} from '../sql/pipeline-rows.js';
import type { QueryDialect } from '../sql/query-dialect.js';
import { inTransaction } from './tx.js';

type Row = Record<string, unknown>;

const SETTING_RETURNING = 'RETURNING kind, name, doc, created_ms, updated_ms, rev';
/** The identity keys of a batch as two parallel arrays, $1 and $2. */
const KEYS = 'unnest($1::text[], $2::text[]) AS k(device_id, module_id)';

const SQL = {
  insertSetting: `INSERT INTO pipeline_settings (kind, name, doc, created_ms, updated_ms, rev) VALUES ($1, $2, $3::jsonb, $4, $4, 1)
    ON CONFLICT DO NOTHING ${SETTING_RETURNING}`,
  upsertSetting: `INSERT INTO pipeline_settings (kind, name, doc, created_ms, updated_ms, rev) VALUES ($1, $2, $3::jsonb, $4, $4, 1)
    ON CONFLICT (kind, name) DO UPDATE SET doc = excluded.doc, updated_ms = excluded.updated_ms, rev = pipeline_settings.rev + 1
    ${SETTING_RETURNING}`,
  replaceSetting: `UPDATE pipeline_settings SET doc = $3::jsonb, updated_ms = $4, rev = rev + 1 WHERE kind = $1 AND name = $2 AND rev = $5
    ${SETTING_RETURNING}`,
  bumpVersion: 'UPDATE pipeline_settings_version SET version = version + 1 WHERE id = 1',
  writeCheckpoint: `INSERT INTO pipeline_checkpoints (consumer, partition, sequence, updated_ms) VALUES ($1, $2, $3, $4)
    ON CONFLICT (consumer, partition) DO UPDATE SET sequence = excluded.sequence, updated_ms = excluded.updated_ms`,
  advanceCheckpoint: `INSERT INTO pipeline_checkpoints (consumer, partition, sequence, updated_ms) VALUES ($1, $2, $3, $4)
    ON CONFLICT (consumer, partition) DO UPDATE SET sequence = excluded.sequence, updated_ms = excluded.updated_ms
    WHERE excluded.sequence >= pipeline_checkpoints.sequence`,
  // One statement: a concurrent taker waits on the row, then sees the new owner and its fresh until_ms, and fails.
  acquireLease: `INSERT INTO pipeline_leases (name, owner, until_ms) VALUES ($1, $2, $3)
    ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until_ms = excluded.until_ms
    WHERE pipeline_leases.owner = excluded.owner OR pipeline_leases.until_ms <= $4`,
  // Device rows are created first, then locked, each in key order: a transaction holds no lock on a stored row
  // while it creates rows, so merges and health writes of overlapping batches queue instead of deadlocking.
  createStates: `INSERT INTO device_state (device_id, module_id) SELECT k.device_id, k.module_id FROM ${KEYS}
    ORDER BY k.device_id, k.module_id ON CONFLICT DO NOTHING`,
  lockStates: `SELECT s.device_id, s.module_id, s.values_doc, s.meta_doc, s.last_seen_ms FROM device_state s
    JOIN ${KEYS} ON s.device_id = k.device_id AND s.module_id = k.module_id
    ORDER BY s.device_id, s.module_id FOR UPDATE OF s`,
  // Every row exists and is locked by now; an upsert finds each through the primary key, where an UPDATE … FROM
  // unnest may hash the whole table.
  writeStates: `INSERT INTO device_state (device_id, module_id, values_doc, meta_doc, last_seen_ms)
    SELECT u.device_id, u.module_id, u.values_doc::jsonb, u.meta_doc::jsonb, u.last_seen_ms
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[]) AS u(device_id, module_id, values_doc, meta_doc, last_seen_ms)
    ON CONFLICT (device_id, module_id) DO UPDATE SET values_doc = excluded.values_doc, meta_doc = excluded.meta_doc,
      last_seen_ms = excluded.last_seen_ms`,
  setHealth: `INSERT INTO device_state (device_id, module_id, health, health_changed_ms)
    SELECT k.device_id, k.module_id, $3::text, $4::bigint FROM ${KEYS} ORDER BY k.device_id, k.module_id
    ON CONFLICT (device_id, module_id) DO UPDATE SET health = excluded.health, health_changed_ms = excluded.health_changed_ms
    WHERE device_state.health IS DISTINCT FROM excluded.health
    RETURNING device_id, module_id`,
  insertAlert: `INSERT INTO alerts (${ALERT_COLUMNS.join(', ')})
    VALUES (${ALERT_COLUMNS.map((c, i) => (c === 'details' ? `$${i + 1}::jsonb` : `$${i + 1}`)).join(', ')}) ON CONFLICT DO NOTHING`,
  updateAlert: `UPDATE alerts SET status = $3, acknowledged_ms = COALESCE($4::bigint, acknowledged_ms),
      acknowledged_by = COALESCE($5::text, acknowledged_by), cleared_ms = COALESCE($6::bigint, cleared_ms),
      details = COALESCE($7::jsonb, details), updated_ms = $8, rev = rev + 1
    WHERE id = $1 AND rev = $2 RETURNING *`,
};

/**
 * The pipeline's state on PostgreSQL, shared by every node: single statements (upserts with conditions) where one
 * suffices, row locks where a read decides the write (device state merges).
 */
export class PostgresPipeline implements PipelineStore {
  constructor(private readonly pool: pg.Pool, private readonly dialect: QueryDialect) {}

  async listSettings(kind: PipelineSettingKind): Promise<SettingRecord[]> {
    return (await this.pool.query<Row>('SELECT * FROM pipeline_settings WHERE kind = $1 ORDER BY name', [kind])).rows.map(settingFromRow);
  }

  async getSetting(kind: PipelineSettingKind, name: string): Promise<SettingRecord | undefined> {
    const r = (await this.pool.query<Row>('SELECT * FROM pipeline_settings WHERE kind = $1 AND name = $2', [kind, name])).rows[0];
    return r ? settingFromRow(r) : undefined;
  }

  async putSetting(
    kind: PipelineSettingKind, name: string, doc: JsonObject, nowMs: number, precondition?: SettingPrecondition,
  ): Promise<SettingRecord | undefined> {
    const text = JSON.stringify(doc);
    return inTransaction(this.pool, async (c) => {
      const { rows } = precondition === 'absent' ? await c.query<Row>(SQL.insertSetting, [kind, name, text, nowMs])
        : precondition === undefined ? await c.query<Row>(SQL.upsertSetting, [kind, name, text, nowMs])
          : await c.query<Row>(SQL.replaceSetting, [kind, name, text, nowMs, precondition]);
      if (rows[0]) await c.query(SQL.bumpVersion);
      return rows[0] ? settingFromRow(rows[0]) : undefined;
    });
  }

  async deleteSetting(kind: PipelineSettingKind, name: string, expectedRev?: number): Promise<boolean> {
    return inTransaction(this.pool, async (c) => {
      const { rowCount } = expectedRev === undefined
        ? await c.query('DELETE FROM pipeline_settings WHERE kind = $1 AND name = $2', [kind, name])
        : await c.query('DELETE FROM pipeline_settings WHERE kind = $1 AND name = $2 AND rev = $3', [kind, name, expectedRev]);
      if (rowCount === 1) await c.query(SQL.bumpVersion);
      return rowCount === 1;
    });
  }

  async settingsVersion(): Promise<number> {
    const { rows } = await this.pool.query<{ version: string }>('SELECT version FROM pipeline_settings_version WHERE id = 1');
    return Number(rows[0]?.version ?? 0);
  }

  async readCheckpoints(consumer: string): Promise<Record<string, number>> {
    const { rows } = await this.pool.query<Row>('SELECT partition, sequence FROM pipeline_checkpoints WHERE consumer = $1', [consumer]);
    return checkpointsFromRows(rows);
  }

  async writeCheckpoint(consumer: string, partition: string, sequence: number, nowMs: number, onlyForward: boolean): Promise<void> {
    await this.pool.query(onlyForward ? SQL.advanceCheckpoint : SQL.writeCheckpoint, [consumer, partition, sequence, nowMs]);
  }

  async deleteCheckpoints(consumer: string): Promise<void> {
    await this.pool.query('DELETE FROM pipeline_checkpoints WHERE consumer = $1', [consumer]);
  }

  async acquireLease(name: string, owner: string, ttlMs: number, nowMs: number): Promise<boolean> {
    return (await this.pool.query(SQL.acquireLease, [name, owner, nowMs + ttlMs, nowMs])).rowCount === 1;
  }

  async leaseHolder(name: string, nowMs: number): Promise<string | undefined> {
    const { rows } = await this.pool.query<{ owner: string }>('SELECT owner FROM pipeline_leases WHERE name = $1 AND until_ms > $2', [name, nowMs]);
    return rows[0]?.owner;
  }

  async releaseLease(name: string, owner: string): Promise<void> {
    await this.pool.query('DELETE FROM pipeline_leases WHERE name = $1 AND owner = $2', [name, owner]);
  }

  /**
   * Creates the batch's missing rows (empty, lastSeenMs 0), reads all of them FOR UPDATE in one query, merges in JS
   * and writes them back in one upsert: a merge never overwrites one it did not see, on any node.
   */
  async mergeDeviceState(updates: readonly DeviceStateUpdate[]): Promise<void> {
    const folded = foldDeviceUpdates(updates);
    if (folded.length === 0) return;
    await inTransaction(this.pool, async (c) => {
      await c.query(SQL.createStates, keyArrays(folded));
      const { rows } = await c.query<Row>(SQL.lockStates, keyArrays(folded));
      const stored = new Map(rows.map((r) => [identityKeyText(keyOf(r)), storedStateFromRow(r)]));
      const next = folded.map((u) => mergeDeviceUpdate(stored.get(identityKeyText(u)), u));
      await c.query(SQL.writeStates, [
        ...keyArrays(folded), next.map((s) => JSON.stringify(s.values)), next.map((s) => JSON.stringify(s.meta)),
        next.map((s) => s.lastSeenMs),
      ]);
    });
  }

  async getDeviceState(key: IdentityKey): Promise<DeviceStateRecord | undefined> {
    const { rows } = await this.pool.query<Row>('SELECT * FROM device_state WHERE device_id = $1 AND module_id = $2', [key.deviceId, key.moduleId]);
    return rows[0] ? deviceStateFromRow(rows[0]) : undefined;
  }

  async setHealth(keys: readonly IdentityKey[], health: DeviceHealth, nowMs: number): Promise<IdentityKey[]> {
    const unique = uniqueKeys(keys);
    if (unique.length === 0) return [];
    const { rows } = await inTransaction(this.pool, async (c) => {
      await c.query(SQL.createStates, keyArrays(unique));
      return c.query<Row>(SQL.setHealth, [...keyArrays(unique), health, nowMs]);
    });
    const changed = new Set(rows.map((r) => identityKeyText(keyOf(r))));
    return unique.filter((k) => changed.has(identityKeyText(k)));
  }

  async healthCounts(): Promise<Readonly<Record<DeviceHealth, number>>> {
    const counts: Record<DeviceHealth, number> = { healthy: 0, unhealthy: 0 };
    const { rows } = await this.pool.query<Row>(`SELECT health, count(*)::bigint AS n FROM device_state
      WHERE health IS NOT NULL AND module_id = '' GROUP BY health`);
    for (const r of rows) counts[r.health as DeviceHealth] = Number(r.n);
    return counts;
  }

  async overdueDevices(opts: OverdueOptions): Promise<IdentityKey[]> {
    const { text, values } = overdueQuery(this.dialect, opts);
    const { rows } = await this.pool.query<{ device_id: string }>(text, values);
    return rows.map((r) => ({ deviceId: r.device_id, moduleId: '' }));
  }

  async deleteDeviceState(deviceId: string): Promise<void> {
    await this.pool.query('DELETE FROM device_state WHERE device_id = $1', [deviceId]);
  }

  async openAlert(alert: NewAlert): Promise<AlertRecord | undefined> {
    const record = raisedAlert(alert);
    return (await this.pool.query(SQL.insertAlert, alertValues(record))).rowCount === 1 ? record : undefined;
  }

  async getAlert(id: string): Promise<AlertRecord | undefined> {
    const { rows } = await this.pool.query<Row>('SELECT * FROM alerts WHERE id = $1', [id]);
    return rows[0] ? alertFromRow(rows[0]) : undefined;
  }

  async findOpenAlert(ruleName: string, key: IdentityKey): Promise<AlertRecord | undefined> {
    const { rows } = await this.pool.query<Row>(`SELECT * FROM alerts WHERE rule_name = $1 AND device_id = $2 AND module_id = $3
      AND status IN (${OPEN_ALERT_STATUSES})`, [ruleName, key.deviceId, key.moduleId]);
    return rows[0] ? alertFromRow(rows[0]) : undefined;
  }

  async updateAlert(id: string, change: AlertChange, nowMs: number, expectedRev: number): Promise<AlertRecord | undefined> {
    const { rows } = await this.pool.query<Row>(SQL.updateAlert, [
      id, expectedRev, change.status, change.acknowledgedMs ?? null, change.acknowledgedBy ?? null, change.clearedMs ?? null,
      change.details === undefined ? null : JSON.stringify(change.details), nowMs,
    ]);
    return rows[0] ? alertFromRow(rows[0]) : undefined;
  }

  async listAlerts(o: AlertListOptions): Promise<AlertRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const p = (v: unknown): string => { params.push(v); return `$${params.length}`; };
    if (o.open) where.push(`status IN (${OPEN_ALERT_STATUSES})`);
    else if (o.status) where.push(`status = ${p(o.status)}`);
    if (o.ruleName !== undefined) where.push(`rule_name = ${p(o.ruleName)}`);
    if (o.deviceId !== undefined) where.push(`device_id = ${p(o.deviceId)}`);
    if (o.after) where.push(`(raised_ms, id) < (${p(o.after.raisedMs)}::bigint, ${p(o.after.id)}::text)`);
    const sql = `SELECT * FROM alerts ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY raised_ms DESC, id DESC LIMIT ${p(o.limit)}`;
    return (await this.pool.query<Row>(sql, params)).rows.map(alertFromRow);
  }

  async alertCounts(): Promise<AlertCounts> {
    const { rows } = await this.pool.query<Row>(`SELECT severity, status, count(*)::bigint AS n FROM alerts
      WHERE status IN (${OPEN_ALERT_STATUSES}) GROUP BY severity, status`);
    return alertCountsFromRows(rows);
  }
}

function keyArrays(keys: readonly IdentityKey[]): [string[], string[]] {
  return [keys.map((k) => k.deviceId), keys.map((k) => k.moduleId)];
}

const keyOf = (r: Row): IdentityKey => ({ deviceId: r.device_id as string, moduleId: r.module_id as string });
