import type Database from 'better-sqlite3';
import type { IdentityKey, JsonObject } from '../index.js';
import type {
  AlertCounts, AlertListOptions, AlertRecord, DeviceHealth, DeviceStateRecord, DeviceStateUpdate, OverdueOptions, PipelineSettingKind,
  PipelineStore, SettingPrecondition, SettingRecord,
} from '../pipeline.js';
import {
  ALERT_COLUMNS, OPEN_ALERT_STATUSES, alertCountsFromRows, alertFromRow, alertValues, checkpointsFromRows, deviceStateFromRow,
  foldDeviceUpdates, mergeDeviceUpdate, overdueQuery, raisedAlert, settingFromRow, storedStateFromRow, uniqueKeys, type AlertChange, type NewAlert,
} from '../sql/pipeline-rows.js';
import type { QueryDialect } from '../sql/query-dialect.js';

type Db = Database.Database;
type Row = Record<string, unknown>;

const SETTING_RETURNING = 'RETURNING kind, name, doc, created_ms, updated_ms, rev';

function prepare(db: Db) {
  return {
    listSettings: db.prepare('SELECT * FROM pipeline_settings WHERE kind = ? ORDER BY name'),
    getSetting: db.prepare('SELECT * FROM pipeline_settings WHERE kind = ? AND name = ?'),
    insertSetting: db.prepare(`INSERT INTO pipeline_settings (kind, name, doc, created_ms, updated_ms, rev) VALUES (?, ?, ?, ?, ?, 1)
      ON CONFLICT DO NOTHING ${SETTING_RETURNING}`),
    replaceSetting: db.prepare(`UPDATE pipeline_settings SET doc = ?, updated_ms = ?, rev = rev + 1 WHERE kind = ? AND name = ? AND rev = ?
      ${SETTING_RETURNING}`),
    upsertSetting: db.prepare(`INSERT INTO pipeline_settings (kind, name, doc, created_ms, updated_ms, rev) VALUES (?, ?, ?, ?, ?, 1)
      ON CONFLICT (kind, name) DO UPDATE SET doc = excluded.doc, updated_ms = excluded.updated_ms, rev = pipeline_settings.rev + 1
      ${SETTING_RETURNING}`),
    deleteSetting: db.prepare('DELETE FROM pipeline_settings WHERE kind = ? AND name = ?'),
    deleteSettingAt: db.prepare('DELETE FROM pipeline_settings WHERE kind = ? AND name = ? AND rev = ?'),
    bumpVersion: db.prepare('UPDATE pipeline_settings_version SET version = version + 1 WHERE id = 1'),
    version: db.prepare('SELECT version FROM pipeline_settings_version WHERE id = 1').pluck(),
    readCheckpoints: db.prepare('SELECT partition, sequence FROM pipeline_checkpoints WHERE consumer = ?'),
    writeCheckpoint: db.prepare(`INSERT INTO pipeline_checkpoints (consumer, partition, sequence, updated_ms) VALUES (?, ?, ?, ?)
      ON CONFLICT (consumer, partition) DO UPDATE SET sequence = excluded.sequence, updated_ms = excluded.updated_ms`),
    advanceCheckpoint: db.prepare(`INSERT INTO pipeline_checkpoints (consumer, partition, sequence, updated_ms) VALUES (?, ?, ?, ?)
      ON CONFLICT (consumer, partition) DO UPDATE SET sequence = excluded.sequence, updated_ms = excluded.updated_ms
      WHERE excluded.sequence >= pipeline_checkpoints.sequence`),
    deleteCheckpoints: db.prepare('DELETE FROM pipeline_checkpoints WHERE consumer = ?'),
    // One statement: the row is taken when free, expired or already the owner's; no row changes otherwise.
    acquireLease: db.prepare(`INSERT INTO pipeline_leases (name, owner, until_ms) VALUES (@name, @owner, @until)
      ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until_ms = excluded.until_ms
      WHERE pipeline_leases.owner = excluded.owner OR pipeline_leases.until_ms <= @nowMs`),
    leaseHolder: db.prepare('SELECT owner FROM pipeline_leases WHERE name = ? AND until_ms > ?').pluck(),
    releaseLease: db.prepare('DELETE FROM pipeline_leases WHERE name = ? AND owner = ?'),
    getState: db.prepare('SELECT * FROM device_state WHERE device_id = ? AND module_id = ?'),
    writeState: db.prepare(`INSERT INTO device_state (device_id, module_id, values_doc, meta_doc, last_seen_ms) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (device_id, module_id) DO UPDATE SET values_doc = excluded.values_doc, meta_doc = excluded.meta_doc,
        last_seen_ms = excluded.last_seen_ms`),
    setHealth: db.prepare(`INSERT INTO device_state (device_id, module_id, health, health_changed_ms) VALUES (?, ?, ?, ?)
      ON CONFLICT (device_id, module_id) DO UPDATE SET health = excluded.health, health_changed_ms = excluded.health_changed_ms
      WHERE device_state.health IS NOT excluded.health`),
    healthCounts: db.prepare(`SELECT health, COUNT(*) AS n FROM device_state WHERE health IS NOT NULL AND module_id = '' GROUP BY health`),
    deleteState: db.prepare('DELETE FROM device_state WHERE device_id = ?'),
    insertAlert: db.prepare(`INSERT INTO alerts (${ALERT_COLUMNS.join(', ')}) VALUES (${ALERT_COLUMNS.map(() => '?').join(', ')})
      ON CONFLICT DO NOTHING`),
    getAlert: db.prepare('SELECT * FROM alerts WHERE id = ?'),
    findOpenAlert: db.prepare(`SELECT * FROM alerts WHERE rule_name = ? AND device_id = ? AND module_id = ?
      AND status IN (${OPEN_ALERT_STATUSES})`),
    updateAlert: db.prepare(`UPDATE alerts SET status = @status, acknowledged_ms = COALESCE(@acknowledgedMs, acknowledged_ms),
        acknowledged_by = COALESCE(@acknowledgedBy, acknowledged_by), cleared_ms = COALESCE(@clearedMs, cleared_ms),
        details = COALESCE(@details, details), updated_ms = @nowMs, rev = rev + 1
      WHERE id = @id AND rev = @expectedRev RETURNING *`),
    alertCounts: db.prepare(`SELECT severity, status, COUNT(*) AS n FROM alerts WHERE status IN (${OPEN_ALERT_STATUSES})
      GROUP BY severity, status`),
  };
}

/** The pipeline's state on SQLite: one writer, so each synchronous transaction is atomic for every node there is. */
export class SqlitePipeline implements PipelineStore {
  private stmts?: ReturnType<typeof prepare>;

  constructor(private readonly db: Db, private readonly dialect: QueryDialect) {}

  /** Prepared on first use: the store is built before migrate() has created the tables. */
  private get s(): ReturnType<typeof prepare> {
    this.stmts ??= prepare(this.db);
    return this.stmts;
  }

  async listSettings(kind: PipelineSettingKind): Promise<SettingRecord[]> {
    return (this.s.listSettings.all(kind) as Row[]).map(settingFromRow);
  }

  async getSetting(kind: PipelineSettingKind, name: string): Promise<SettingRecord | undefined> {
    const r = this.s.getSetting.get(kind, name) as Row | undefined;
    return r ? settingFromRow(r) : undefined;
  }

  async putSetting(
    kind: PipelineSettingKind, name: string, doc: JsonObject, nowMs: number, precondition?: SettingPrecondition,
  ): Promise<SettingRecord | undefined> {
    const text = JSON.stringify(doc);
    return this.db.transaction(() => {
      const r = (precondition === 'absent' ? this.s.insertSetting.get(kind, name, text, nowMs, nowMs)
        : precondition === undefined ? this.s.upsertSetting.get(kind, name, text, nowMs, nowMs)
          : this.s.replaceSetting.get(text, nowMs, kind, name, precondition)) as Row | undefined;
      if (r) this.s.bumpVersion.run();
      return r ? settingFromRow(r) : undefined;
    }).immediate();
  }

  async deleteSetting(kind: PipelineSettingKind, name: string, expectedRev?: number): Promise<boolean> {
    return this.db.transaction(() => {
      const deleted = (expectedRev === undefined ? this.s.deleteSetting.run(kind, name)
        : this.s.deleteSettingAt.run(kind, name, expectedRev)).changes === 1;
      if (deleted) this.s.bumpVersion.run();
      return deleted;
    }).immediate();
  }

  async settingsVersion(): Promise<number> {
    return this.s.version.get() as number;
  }

  async readCheckpoints(consumer: string): Promise<Record<string, number>> {
    return checkpointsFromRows(this.s.readCheckpoints.all(consumer) as Row[]);
  }

  async writeCheckpoint(consumer: string, partition: string, sequence: number, nowMs: number, onlyForward: boolean): Promise<void> {
    (onlyForward ? this.s.advanceCheckpoint : this.s.writeCheckpoint).run(consumer, partition, sequence, nowMs);
  }

  async deleteCheckpoints(consumer: string): Promise<void> {
    this.s.deleteCheckpoints.run(consumer);
  }

  async acquireLease(name: string, owner: string, ttlMs: number, nowMs: number): Promise<boolean> {
    return this.s.acquireLease.run({ name, owner, until: nowMs + ttlMs, nowMs }).changes === 1;
  }

  async leaseHolder(name: string, nowMs: number): Promise<string | undefined> {
    return this.s.leaseHolder.get(name, nowMs) as string | undefined;
  }

  async releaseLease(name: string, owner: string): Promise<void> {
    this.s.releaseLease.run(name, owner);
  }

  async mergeDeviceState(updates: readonly DeviceStateUpdate[]): Promise<void> {
    const folded = foldDeviceUpdates(updates);
    if (folded.length === 0) return;
    this.db.transaction(() => {
      for (const u of folded) {
        const row = this.s.getState.get(u.deviceId, u.moduleId) as Row | undefined;
        const next = mergeDeviceUpdate(row && storedStateFromRow(row), u);
        this.s.writeState.run(u.deviceId, u.moduleId, JSON.stringify(next.values), JSON.stringify(next.meta), next.lastSeenMs);
      }
    }).immediate();
  }

  async getDeviceState(key: IdentityKey): Promise<DeviceStateRecord | undefined> {
    const r = this.s.getState.get(key.deviceId, key.moduleId) as Row | undefined;
    return r ? deviceStateFromRow(r) : undefined;
  }

  async setHealth(keys: readonly IdentityKey[], health: DeviceHealth, nowMs: number): Promise<IdentityKey[]> {
    return this.db.transaction(() => uniqueKeys(keys).filter((k) =>
      this.s.setHealth.run(k.deviceId, k.moduleId, health, nowMs).changes === 1)).immediate();
  }

  async healthCounts(): Promise<Readonly<Record<DeviceHealth, number>>> {
    const counts: Record<DeviceHealth, number> = { healthy: 0, unhealthy: 0 };
    for (const r of this.s.healthCounts.all() as Row[]) counts[r.health as DeviceHealth] = Number(r.n);
    return counts;
  }

  async overdueDevices(opts: OverdueOptions): Promise<IdentityKey[]> {
    const { text, values } = overdueQuery(this.dialect, opts);
    const ids = this.db.prepare(text).pluck().all(...values) as string[];
    return ids.map((deviceId) => ({ deviceId, moduleId: '' }));
  }

  async deleteDeviceState(deviceId: string): Promise<void> {
    this.s.deleteState.run(deviceId);
  }

  async openAlert(alert: NewAlert): Promise<AlertRecord | undefined> {
    const record = raisedAlert(alert);
    return this.s.insertAlert.run(...alertValues(record)).changes === 1 ? record : undefined;
  }

  async getAlert(id: string): Promise<AlertRecord | undefined> {
    const r = this.s.getAlert.get(id) as Row | undefined;
    return r ? alertFromRow(r) : undefined;
  }

  async findOpenAlert(ruleName: string, key: IdentityKey): Promise<AlertRecord | undefined> {
    const r = this.s.findOpenAlert.get(ruleName, key.deviceId, key.moduleId) as Row | undefined;
    return r ? alertFromRow(r) : undefined;
  }

  async updateAlert(id: string, change: AlertChange, nowMs: number, expectedRev: number): Promise<AlertRecord | undefined> {
    const r = this.s.updateAlert.get({
      id, expectedRev, nowMs, status: change.status, acknowledgedMs: change.acknowledgedMs ?? null,
      acknowledgedBy: change.acknowledgedBy ?? null, clearedMs: change.clearedMs ?? null,
      details: change.details === undefined ? null : JSON.stringify(change.details),
    }) as Row | undefined;
    return r ? alertFromRow(r) : undefined;
  }

  async listAlerts(o: AlertListOptions): Promise<AlertRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (o.open) where.push(`status IN (${OPEN_ALERT_STATUSES})`);
    else if (o.status) { where.push('status = ?'); params.push(o.status); }
    if (o.ruleName !== undefined) { where.push('rule_name = ?'); params.push(o.ruleName); }
    if (o.deviceId !== undefined) { where.push('device_id = ?'); params.push(o.deviceId); }
    if (o.after) { where.push('(raised_ms, id) < (?, ?)'); params.push(o.after.raisedMs, o.after.id); }
    const sql = `SELECT * FROM alerts ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY raised_ms DESC, id DESC LIMIT ?`;
    return (this.db.prepare(sql).all(...params, o.limit) as Row[]).map(alertFromRow);
  }

  async alertCounts(): Promise<AlertCounts> {
    return alertCountsFromRows(this.s.alertCounts.all() as Row[]);
  }
}
