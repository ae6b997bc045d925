/**
 * The Store port: durable state shaped by what core needs. Adapters (sqlite/, postgres/) map records to rows and
 * back and hold no business rules: every rule (versions, etags, limits, defaults) is core's. Concurrency is
 * optimistic: each record carries `rev`, which every successful write bumps by one; writers pass the rev they read.
 */

import type { CaCertificateStore } from './ca-certificates.js';
import type { C2dStore } from './c2d.js';
import type { QueryStore } from './query.js';
import type { JobStore } from './jobs.js';
import type { PipelineStore } from './pipeline.js';

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** The persisted twin of a device or module (the JSON documents, their metadata and counters). */
export interface TwinState {
  readonly tags: JsonObject;
  readonly desired: JsonObject;
  readonly reported: JsonObject;
  /** `$metadata` trees mirroring desired/reported: each node has `$lastUpdated` (and `$lastUpdatedVersion`). */
  readonly desiredMeta: JsonObject;
  readonly reportedMeta: JsonObject;
  readonly desiredVersion: number;
  readonly reportedVersion: number;
  /** Twin version: +1 on every change of tags, desired or reported. */
  readonly version: number;
}

export type AuthType = 'sas' | 'selfSigned' | 'certificateAuthority' | 'none';
export type DeviceStatus = 'enabled' | 'disabled';
export type ConnectionState = 'Connected' | 'Disconnected';

/** A device (moduleId '') or a module, with its twin. Key secrets are sealed by the KeyRing before they get here. */
export interface IdentityRecord {
  readonly deviceId: string;
  /** '' for a device. */
  readonly moduleId: string;
  readonly generationId: string;
  readonly etag: string;
  readonly status: DeviceStatus;
  readonly statusReason: string | null;
  readonly statusUpdatedTime: string;
  readonly authType: AuthType;
  readonly primaryKey: string | null;
  readonly secondaryKey: string | null;
  readonly primaryThumbprint: string | null;
  readonly secondaryThumbprint: string | null;
  readonly iotEdge: boolean;
  readonly deviceScope: string | null;
  readonly parentScopes: readonly string[];
  readonly managedBy: string | null;
  readonly modelId: string;
  readonly connectionState: ConnectionState;
  readonly connectionStateUpdatedTime: string;
  readonly lastActivityTime: string;
  readonly c2dCount: number;
  readonly twin: TwinState;
  /** Optimistic-concurrency revision; the adapter sets it (1 on insert, +1 on each write). */
  readonly rev: number;
}

export interface IdentityKey {
  readonly deviceId: string;
  readonly moduleId: string;
}

/** One string per identity key, for Map keys (NUL occurs in no id: IoT Hub's rules, and PostgreSQL text). */
export function identityKeyText(k: IdentityKey): string {
  return `${k.deviceId}\u0000${k.moduleId}`;
}

/** One write of a batch; each either applies whole or reports false. */
export type BatchOp =
  | { readonly kind: 'insert'; readonly record: IdentityRecord }
  | { readonly kind: 'replace'; readonly record: IdentityRecord; readonly expectedRev: number }
  | { readonly kind: 'delete'; readonly key: IdentityKey; readonly expectedRev?: number };

export interface ScanOptions {
  /** 'devices': devices only; 'modules': the modules of `deviceId`; 'all': devices and modules. */
  readonly scope: 'devices' | 'modules' | 'all';
  readonly deviceId?: string;
  /** Keyset paging: records strictly after this key, in (deviceId, moduleId) order. */
  readonly after?: IdentityKey;
  readonly limit: number;
}

export interface IdentityCounts {
  readonly total: number;
  readonly enabled: number;
  readonly disabled: number;
  readonly connected: number;
}

/** A registry import in progress: staged records become visible all at once on commit, or never. */
export interface ImportSession {
  /** Stages upserts (whole records) and deletes (a device's delete takes its modules with it). */
  stage(upserts: readonly IdentityRecord[], deletes: readonly IdentityKey[]): Promise<void>;
  /** Applies everything staged in one transaction; returns how many records were written and deleted. */
  commit(): Promise<{ upserted: number; deleted: number }>;
  /** Drops everything staged; the registry is untouched. */
  abort(): Promise<void>;
}

/** A presence write: only the fields given change. */
export interface PresenceUpdate {
  readonly connectionState?: ConnectionState;
  readonly connectionStateUpdatedTime?: string;
  readonly lastActivityTime?: string;
  /** Write only if the stored connectionStateUpdatedTime is still this (nobody changed the state since). */
  readonly onlyIfStateUpdatedAt?: string;
}

export interface IdentityStore {
  get(key: IdentityKey): Promise<IdentityRecord | undefined>;
  getMany(keys: readonly IdentityKey[]): Promise<IdentityRecord[]>;
  /** False when the key exists already. The stored rev is 1. */
  insert(record: IdentityRecord): Promise<boolean>;
  /**
   * Compare-and-set: writes only if the stored rev is `expectedRev`; the stored rev becomes expectedRev + 1. Writes
   * every field but the live ones (connectionState, connectionStateUpdatedTime, lastActivityTime, c2dCount), which
   * only `updatePresence` and the C2D inbox write, so a replace from an older read never puts them back.
   */
  replace(record: IdentityRecord, expectedRev: number): Promise<boolean>;
  /** Writes the given presence fields; etag and rev stay (presence is not an identity change). False if absent. */
  updatePresence(key: IdentityKey, presence: PresenceUpdate): Promise<boolean>;
  /** Deletes (a device with its modules); with expectedRev, only if the stored rev matches. False if nothing matched. */
  delete(key: IdentityKey, expectedRev?: number): Promise<boolean>;
  /** Applies the ops in one transaction, in order; result[i] tells whether op i applied. */
  applyBatch(ops: readonly BatchOp[]): Promise<boolean[]>;
  scan(options: ScanOptions): Promise<IdentityRecord[]>;
  /** Counts over devices (not modules). */
  counts(): Promise<IdentityCounts>;
  beginImport(): Promise<ImportSession>;
}

/** A shared access policy; keys sealed. */
export interface PolicyRecord {
  readonly name: string;
  readonly rights: readonly string[];
  readonly primaryKey: string;
  readonly secondaryKey: string;
}

export interface PolicyStore {
  list(): Promise<PolicyRecord[]>;
  /** Inserts the policies whose names are not stored yet; existing ones are left as they are. */
  insertMissing(records: readonly PolicyRecord[]): Promise<void>;
}

export interface StoreCapabilities {
  /** Row leases with FOR UPDATE SKIP LOCKED, so several nodes can share work. */
  readonly skipLocked: boolean;
}

export interface Store {
  readonly capabilities: StoreCapabilities;
  readonly identities: IdentityStore;
  readonly policies: PolicyStore;
  readonly c2d: C2dStore;
  readonly caCertificates: CaCertificateStore;
  readonly mqttSessions: MqttSessionStore;
  readonly jobs: JobStore;
  /** Fleet queries: a checked QueryPlan compiled to the engine's SQL and run there, one keyset page at a time. */
  readonly query: QueryStore;
  /** The telemetry pipeline's settings, checkpoints, leases, device state and alerts. */
  readonly pipeline: PipelineStore;
  /** Applies pending migrations; idempotent, safe when several nodes start at once. */
  migrate(): Promise<void>;
  close(): Promise<void>;
}
export { mutateIdentity, ContendedRecord } from './mutate.js';
export type { MqttSessionStore } from './mqtt-sessions.js';
import type { MqttSessionStore } from './mqtt-sessions.js';
export type {
  C2dCounts, C2dEnqueueResult, C2dFeedback, C2dMessage, C2dNewMessage, C2dOutcome, C2dSettlement, C2dState, C2dStore,
  C2dSweep, C2dSweepResult,
} from './c2d.js';
export type { CaCertificateRecord, CaCertificateStore } from './ca-certificates.js';
export type {
  ClaimOptions, DeviceJobResult, ExpandOptions, JobListOptions, JobRecord, JobStatistics, JobStatus, JobStore, JobType,
} from './jobs.js';
export type {
  AlertCounts, AlertListOptions, AlertRecord, AlertSeverity, AlertStatus, DeviceHealth, DeviceStateRecord, DeviceStateUpdate,
  OverdueOptions, PipelineSettingKind, PipelineStore, SettingPrecondition, SettingRecord,
} from './pipeline.js';
export type {
  Aggregate, ArithmeticOp, CompareOp, DeviceJobRecord, FieldRef, IdentityQueryColumn, JobQueryColumn, OrderKey, QueryCollection,
  QueryCursor, QueryDocument, QueryExpr, QueryFunction, QueryIndexRecord, QueryPage, QueryPageOptions, QueryPlan, QuerySelect,
  QueryStore, ScalarValue, SelectItem,
} from './query.js';
export { IDENTITY_QUERY_COLUMNS, JOB_QUERY_COLUMNS, QueryCursorInvalid } from './query.js';
