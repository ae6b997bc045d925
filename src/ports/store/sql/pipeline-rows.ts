import type { IdentityKey, JsonObject, JsonValue } from '../index.js';
import { identityKeyText } from '../index.js';
import type {
  AlertCounts, AlertRecord, AlertSeverity, AlertStatus, DeviceHealth, DeviceStateRecord, DeviceStateUpdate, OverdueOptions,
  PipelineSettingKind, PipelineStore, SettingRecord,
} from '../pipeline.js';
import { compileDeviceCondition } from './query-compile.js';
import { QueryParams, checkSegment, type QueryDialect } from './query-dialect.js';
import { json } from './rows.js';

type Row = Record<string, unknown>;

/** The alerts table's columns, shared by both SQL adapters, in alertValues order. */
export const ALERT_COLUMNS = [
  'id', 'rule_name', 'device_id', 'module_id', 'severity', 'status', 'details', 'raised_ms', 'acknowledged_ms',
  'acknowledged_by', 'cleared_ms', 'updated_ms', 'rev',
] as const;

/** The statuses of an open alert: the partial unique index `alerts_open` holds one per rule and identity. */
export const OPEN_ALERT_STATUSES = `'raised', 'acknowledged'`;

/** pg hands bigint columns back as strings. */
const num = (v: unknown): number => Number(v);
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

export function settingFromRow(r: Row): SettingRecord {
  return {
    kind: r.kind as PipelineSettingKind,
    name: r.name as string,
    doc: json<JsonObject>(r.doc),
    createdMs: num(r.created_ms),
    updatedMs: num(r.updated_ms),
    rev: num(r.rev),
  };
}

/** `{partition: sequence}` from `partition, sequence` rows. */
export function checkpointsFromRows(rows: readonly Row[]): Record<string, number> {
  return Object.fromEntries(rows.map((r) => [r.partition as string, num(r.sequence)]));
}

export function deviceStateFromRow(r: Row): DeviceStateRecord {
  return {
    deviceId: r.device_id as string,
    moduleId: r.module_id as string,
    values: json<JsonObject>(r.values_doc),
    meta: json<JsonObject>(r.meta_doc),
    lastSeenMs: num(r.last_seen_ms),
    health: (r.health as DeviceHealth | null) ?? null,
    healthChangedMs: numOrNull(r.health_changed_ms),
  };
}

/** Values in ALERT_COLUMNS order; details as JSON text (PostgreSQL casts it to jsonb). */
export function alertValues(a: AlertRecord): (string | number | null)[] {
  return [
    a.id, a.ruleName, a.deviceId, a.moduleId, a.severity, a.status, JSON.stringify(a.details), a.raisedMs,
    a.acknowledgedMs, a.acknowledgedBy, a.clearedMs, a.updatedMs, a.rev,
  ];
}

/** What openAlert is given, and what updateAlert changes. */
export type NewAlert = Parameters<PipelineStore['openAlert']>[0];
export type AlertChange = Parameters<PipelineStore['updateAlert']>[1];

/** The record openAlert stores: raised, at rev 1, updated when raised. */
export function raisedAlert(alert: NewAlert): AlertRecord {
  return { ...alert, status: 'raised', acknowledgedMs: null, acknowledgedBy: null, clearedMs: null, updatedMs: alert.raisedMs, rev: 1 };
}

export function alertFromRow(r: Row): AlertRecord {
  return {
    id: r.id as string,
    ruleName: r.rule_name as string,
    deviceId: r.device_id as string,
    moduleId: r.module_id as string,
    severity: r.severity as AlertSeverity,
    status: r.status as AlertStatus,
    details: json<JsonObject>(r.details),
    raisedMs: num(r.raised_ms),
    acknowledgedMs: numOrNull(r.acknowledged_ms),
    acknowledgedBy: (r.acknowledged_by as string | null) ?? null,
    clearedMs: numOrNull(r.cleared_ms),
    updatedMs: num(r.updated_ms),
    rev: num(r.rev),
  };
}

/** Counts from `severity, status, n` rows of open alerts; every severity present. */
export function alertCountsFromRows(rows: readonly Row[]): AlertCounts {
  const open: Record<AlertSeverity, number> = { critical: 0, error: 0, warning: 0, info: 0 };
  let acknowledged = 0;
  for (const r of rows) {
    const severity = r.severity as AlertSeverity;
    if (Object.hasOwn(open, severity)) open[severity] += num(r.n);
    if (r.status === 'acknowledged') acknowledged += num(r.n);
  }
  return { open, acknowledged };
}

/** What a device_state row holds of the merge: values, their `$lastUpdated` metadata and lastSeenMs. */
export interface StoredDeviceState {
  readonly values: JsonObject;
  readonly meta: JsonObject;
  readonly lastSeenMs: number;
}

export function storedStateFromRow(r: Row): StoredDeviceState {
  return { values: json<JsonObject>(r.values_doc), meta: json<JsonObject>(r.meta_doc), lastSeenMs: num(r.last_seen_ms) };
}

/**
 * One update per identity, the updates of a call for it merged in order (per field the newer time, a tie to the
 * later; lastSeenMs the greater). Maps and Object.fromEntries keep a field named `__proto__` a plain field.
 */
export function foldDeviceUpdates(updates: readonly DeviceStateUpdate[]): DeviceStateUpdate[] {
  const byKey = new Map<string, DeviceStateUpdate>();
  for (const u of updates) {
    const key = identityKeyText(u);
    const prior = byKey.get(key);
    if (prior === undefined) {
      byKey.set(key, u);
      continue;
    }
    const values = new Map(Object.entries(prior.values));
    for (const [field, seen] of Object.entries(u.values)) {
      const held = values.get(field);
      if (held === undefined || seen.timeMs >= held.timeMs) values.set(field, seen);
    }
    byKey.set(key, { ...u, values: Object.fromEntries(values), lastSeenMs: Math.max(prior.lastSeenMs, u.lastSeenMs) });
  }
  return [...byKey.values()];
}

/** Each key once, in the order first given. */
export function uniqueKeys(keys: readonly IdentityKey[]): IdentityKey[] {
  return [...new Map(keys.map((k) => [identityKeyText(k), { deviceId: k.deviceId, moduleId: k.moduleId }])).values()];
}

/** The stored state after `u`: each field keeps the value with the newer time, a tie going to the update. */
export function mergeDeviceUpdate(stored: StoredDeviceState | undefined, u: DeviceStateUpdate): StoredDeviceState {
  const values = new Map(Object.entries(stored?.values ?? {}));
  const meta = new Map(Object.entries(stored?.meta ?? {}));
  for (const [field, seen] of Object.entries(u.values)) {
    if (values.has(field) && lastUpdatedMs(meta.get(field)) > seen.timeMs) continue;
    values.set(field, seen.value);
    meta.set(field, { $lastUpdated: new Date(seen.timeMs).toISOString() });
  }
  return {
    values: Object.fromEntries(values), meta: Object.fromEntries(meta), lastSeenMs: Math.max(stored?.lastSeenMs ?? 0, u.lastSeenMs),
  };
}

/** A field's stored time; a value without readable metadata is older than any update. */
function lastUpdatedMs(meta: JsonValue | undefined): number {
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta) || typeof meta.$lastUpdated !== 'string') return -Infinity;
  const ms = Date.parse(meta.$lastUpdated);
  return Number.isNaN(ms) ? -Infinity : ms;
}

/**
 * The devices that missed their heartbeat (see OverdueOptions) as one statement over `identities` and
 * `device_state`, in the dialect's placeholders. The devices condition runs in a derived table of its own, since
 * its columns are unqualified; both engines flatten it. A device never heard from (no row, or last_seen_ms 0) counts
 * from sinceMs.
 */
export function overdueQuery(dialect: QueryDialect, o: OverdueOptions): { readonly text: string; readonly values: unknown[] } {
  const params = new QueryParams(dialect.placeholders);
  const bindNumber = (v: number): string => dialect.bindScalar(params, v);
  const heartbeatMs = 'seconds' in o.heartbeat ? bindNumber(o.heartbeat.seconds * 1000) : tagHeartbeatMs(dialect, o.heartbeat.tagPath);
  const devices = compileDeviceCondition(dialect, o.where, params);
  const healthy = o.onlyHealthy ? ` AND (s.health IS NULL OR s.health <> 'unhealthy')` : '';
  return params.finish(`SELECT i.device_id FROM (SELECT device_id, ${heartbeatMs} AS heartbeat_ms FROM identities WHERE ${devices}) AS i
    LEFT JOIN device_state s ON s.device_id = i.device_id AND s.module_id = ''
    WHERE i.heartbeat_ms IS NOT NULL AND COALESCE(NULLIF(s.last_seen_ms, 0), ${bindNumber(o.sinceMs)}) < ${bindNumber(o.nowMs)} - i.heartbeat_ms${healthy}
    ${o.afterDeviceId === undefined ? '' : `AND i.device_id > ${params.add(o.afterDeviceId)} `}ORDER BY i.device_id LIMIT ${params.add(o.limit)}`);
}

/** A heartbeat in ms read from the tags at `path`: NULL (no expectation) unless a positive number is there. */
function tagHeartbeatMs(dialect: QueryDialect, path: readonly string[]): string {
  const doc = { column: 'tags', path: path.map(checkSegment) };
  const seconds = dialect.docValue(doc, 'number');
  return `CASE WHEN ${dialect.docTypeIn(doc, ['number'])} AND ${seconds} > 0 THEN ${seconds} * 1000 END`;
}
