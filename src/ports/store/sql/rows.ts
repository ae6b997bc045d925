import type { IdentityRecord, JsonObject } from '../index.js';

/**
 * The identities table, shared by both SQL adapters: column order, record → row values and row → record.
 * JSON documents travel as text; PostgreSQL stores them as jsonb, SQLite as text.
 */
export const IDENTITY_COLUMNS = [
  'device_id', 'module_id', 'generation_id', 'etag', 'status', 'status_reason', 'status_updated_time',
  'auth_type', 'primary_key', 'secondary_key', 'primary_thumbprint', 'secondary_thumbprint',
  'iot_edge', 'device_scope', 'parent_scopes', 'managed_by', 'model_id',
  'connection_state', 'connection_state_updated_time', 'last_activity_time', 'c2d_count',
  'tags', 'desired', 'reported', 'desired_meta', 'reported_meta',
  'desired_version', 'reported_version', 'twin_version', 'rev',
] as const;

/** Columns only presence writes and the C2D inbox change; an identity replace leaves them as stored. */
export const LIVE_COLUMNS: readonly string[] = ['connection_state', 'connection_state_updated_time', 'last_activity_time', 'c2d_count'];

/** Columns a replace writes, in IDENTITY_COLUMNS order: all but the key and the live columns. */
export const REPLACE_COLUMNS = IDENTITY_COLUMNS.filter((c) => c !== 'device_id' && c !== 'module_id' && !LIVE_COLUMNS.includes(c));
const REPLACE_INDEXES = REPLACE_COLUMNS.map((c) => IDENTITY_COLUMNS.indexOf(c));

/** Columns an import overwrites; presence and the C2D count stay what the live hub says. */
export const IMPORT_UPDATE_COLUMNS = IDENTITY_COLUMNS.filter((c) => ![
  'device_id', 'module_id', 'generation_id', 'connection_state', 'connection_state_updated_time', 'last_activity_time',
  'c2d_count', 'rev', 'desired_version', 'reported_version', 'twin_version',
].includes(c));

const VERSION_COLUMNS = ['desired_version', 'reported_version', 'twin_version'] as const;

/**
 * The SET list of an import's upsert, but for `rev`, which each adapter moves itself. Versions only move forward: a record staged from an older read never puts
 * a version back (devices ignore desired notifications at or below the version they hold). `greatest` is the
 * dialect's two-argument maximum (SQLite MAX, PostgreSQL GREATEST).
 */
export function importUpsertSet(greatest: 'MAX' | 'GREATEST'): string {
  return [
    ...IMPORT_UPDATE_COLUMNS.map((c) => `${c} = excluded.${c}`),
    ...VERSION_COLUMNS.map((c) => `${c} = ${greatest}(excluded.${c}, identities.${c} + 1)`),
  ].join(', ');
}

export type IdentityRowValues = (string | number | null)[];

/** Values in IDENTITY_COLUMNS order. `rev` is given by the caller (the adapter owns it). */
export function identityValues(r: IdentityRecord, rev: number): IdentityRowValues {
  return [
    r.deviceId, r.moduleId, r.generationId, r.etag, r.status, r.statusReason, r.statusUpdatedTime,
    r.authType, r.primaryKey, r.secondaryKey, r.primaryThumbprint, r.secondaryThumbprint,
    r.iotEdge ? 1 : 0, r.deviceScope, JSON.stringify(r.parentScopes), r.managedBy, r.modelId,
    r.connectionState, r.connectionStateUpdatedTime, r.lastActivityTime, r.c2dCount,
    JSON.stringify(r.twin.tags), JSON.stringify(r.twin.desired), JSON.stringify(r.twin.reported),
    JSON.stringify(r.twin.desiredMeta), JSON.stringify(r.twin.reportedMeta),
    r.twin.desiredVersion, r.twin.reportedVersion, r.twin.version, rev,
  ];
}

/** Values in REPLACE_COLUMNS order. */
export function replaceValues(r: IdentityRecord, rev: number): IdentityRowValues {
  const all = identityValues(r, rev);
  return REPLACE_INDEXES.map((i) => all[i]);
}

/** A JSON column as either driver returns it: jsonb already parsed (pg), text (SQLite); NULL stays null. */
export function json<T>(v: unknown): T {
  return (typeof v === 'string' ? JSON.parse(v) : v) as T;
}

/** A row as either driver returns it (jsonb already parsed by pg, text by SQLite). */
export function identityFromRow(row: Record<string, unknown>): IdentityRecord {
  return {
    deviceId: row.device_id as string,
    moduleId: row.module_id as string,
    generationId: row.generation_id as string,
    etag: row.etag as string,
    status: row.status as IdentityRecord['status'],
    statusReason: (row.status_reason as string | null) ?? null,
    statusUpdatedTime: row.status_updated_time as string,
    authType: row.auth_type as IdentityRecord['authType'],
    primaryKey: (row.primary_key as string | null) ?? null,
    secondaryKey: (row.secondary_key as string | null) ?? null,
    primaryThumbprint: (row.primary_thumbprint as string | null) ?? null,
    secondaryThumbprint: (row.secondary_thumbprint as string | null) ?? null,
    iotEdge: Number(row.iot_edge) === 1,
    deviceScope: (row.device_scope as string | null) ?? null,
    parentScopes: json<string[]>(row.parent_scopes),
    managedBy: (row.managed_by as string | null) ?? null,
    modelId: row.model_id as string,
    connectionState: row.connection_state as IdentityRecord['connectionState'],
    connectionStateUpdatedTime: row.connection_state_updated_time as string,
    lastActivityTime: row.last_activity_time as string,
    c2dCount: Number(row.c2d_count),
    twin: {
      tags: json<JsonObject>(row.tags),
      desired: json<JsonObject>(row.desired),
      reported: json<JsonObject>(row.reported),
      desiredMeta: json<JsonObject>(row.desired_meta),
      reportedMeta: json<JsonObject>(row.reported_meta),
      desiredVersion: Number(row.desired_version),
      reportedVersion: Number(row.reported_version),
      version: Number(row.twin_version),
    },
    rev: Number(row.rev),
  };
}
