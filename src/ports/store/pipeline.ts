/**
 * The telemetry pipeline's durable state in the Store: its settings (routes, endpoints, enrichments, rules, consumer
 * groups, health profiles) as named JSON documents whose shape core checks, checkpoints of the EventLog's consumers,
 * leases that share the pipeline's work between nodes, each device's last-known telemetry values and health, and
 * alerts. Adapters hold no rules: merging, life cycles and de-duplication are core's, the Store only makes them atomic.
 */

import type { JsonObject, JsonValue } from './index.js';
import type { IdentityKey } from './index.js';
import type { QueryExpr } from './query.js';

/** The kinds of pipeline settings; core owns each kind's document shape. */
export type PipelineSettingKind = 'endpoint' | 'route' | 'enrichment' | 'rule' | 'consumerGroup' | 'healthProfile';

export interface SettingRecord {
  readonly kind: PipelineSettingKind;
  /** 1–128 characters, checked by core. */
  readonly name: string;
  readonly doc: JsonObject;
  readonly createdMs: number;
  readonly updatedMs: number;
  /** 1 on insert, +1 on each put. */
  readonly rev: number;
}

/** A put's condition: `'absent'` creates only; a number replaces only that rev; undefined creates or replaces. */
export type SettingPrecondition = 'absent' | number | undefined;

export interface DeviceStateUpdate {
  readonly deviceId: string;
  readonly moduleId: string;
  /** Last-known values by top-level field of the telemetry body, each with the enqueued time it was seen at. */
  readonly values: Readonly<Record<string, { readonly value: JsonValue; readonly timeMs: number }>>;
  /** When the device was last heard from (the newest record's enqueued time). */
  readonly lastSeenMs: number;
}

export type DeviceHealth = 'healthy' | 'unhealthy';

export interface DeviceStateRecord {
  readonly deviceId: string;
  readonly moduleId: string;
  /** `{field: value}`: the newest value of each field seen. */
  readonly values: JsonObject;
  /** `{field: {$lastUpdated: ISO 8601}}`, mirroring a twin's `$metadata`. */
  readonly meta: JsonObject;
  readonly lastSeenMs: number;
  /** null until a heartbeat expectation first judged the device. */
  readonly health: DeviceHealth | null;
  readonly healthChangedMs: number | null;
}

export interface OverdueOptions {
  /** Devices (moduleId '') whose twin matches, or every device when absent. */
  readonly where?: QueryExpr;
  /**
   * The heartbeat: a fixed interval, or `{tagPath}` reading a number of seconds from each device's tags (a device
   * whose tag is absent or not a positive number has no expectation and is never overdue).
   */
  readonly heartbeat: { readonly seconds: number } | { readonly tagPath: readonly string[] };
  /** Devices not heard from since `nowMs - heartbeat`; a device never heard from counts from `sinceMs`. */
  readonly nowMs: number;
  readonly sinceMs: number;
  /** Only devices whose health is not already 'unhealthy' (for wellness) — or all overdue ones. */
  readonly onlyHealthy: boolean;
  /** Keyset paging: only devices with a greater id. */
  readonly afterDeviceId?: string;
  readonly limit: number;
}

export type AlertStatus = 'raised' | 'acknowledged' | 'cleared';
export type AlertSeverity = 'critical' | 'error' | 'warning' | 'info';

export interface AlertRecord {
  /** Assigned by core (a UUID). */
  readonly id: string;
  readonly ruleName: string;
  readonly deviceId: string;
  readonly moduleId: string;
  readonly severity: AlertSeverity;
  readonly status: AlertStatus;
  /** What raised it (the rule's text and the value seen), and what cleared it. */
  readonly details: JsonObject;
  readonly raisedMs: number;
  readonly acknowledgedMs: number | null;
  readonly acknowledgedBy: string | null;
  readonly clearedMs: number | null;
  readonly updatedMs: number;
  readonly rev: number;
}

export interface AlertListOptions {
  readonly status?: AlertStatus;
  /** 'open' = raised or acknowledged; overrides status. */
  readonly open?: boolean;
  readonly ruleName?: string;
  readonly deviceId?: string;
  /** Keyset paging, newest first: alerts raised before this one (raisedMs desc, id desc). */
  readonly after?: { readonly raisedMs: number; readonly id: string };
  readonly limit: number;
}

export interface AlertCounts {
  /** Open (raised or acknowledged) alerts by severity; every severity present, 0 when none. */
  readonly open: Readonly<Record<AlertSeverity, number>>;
  readonly acknowledged: number;
}

export interface PipelineStore {
  listSettings(kind: PipelineSettingKind): Promise<SettingRecord[]>;
  getSetting(kind: PipelineSettingKind, name: string): Promise<SettingRecord | undefined>;
  /** Writes the document; undefined when the precondition failed (exists already / rev moved / absent). */
  putSetting(kind: PipelineSettingKind, name: string, doc: JsonObject, nowMs: number, precondition?: SettingPrecondition): Promise<SettingRecord | undefined>;
  /** False when absent (or, with expectedRev, when the rev moved). */
  deleteSetting(kind: PipelineSettingKind, name: string, expectedRev?: number): Promise<boolean>;
  /** A counter bumped by every put and delete of any setting, so nodes notice changes with one cheap read. */
  settingsVersion(): Promise<number>;

  /** `{partition: sequence}` of a consumer (a route, a stage, a consumer group); {} when it has none. */
  readCheckpoints(consumer: string): Promise<Record<string, number>>;
  /** Sets a consumer's sequence in a partition; with onlyForward, a lower sequence than the stored one is ignored. */
  writeCheckpoint(consumer: string, partition: string, sequence: number, nowMs: number, onlyForward: boolean): Promise<void>;
  /** Every checkpoint of consumers named exactly `consumer` (a removed group or route). */
  deleteCheckpoints(consumer: string): Promise<void>;

  /**
   * Takes or renews a named lease for `ttlMs`: true when `owner` holds it afterwards (it was free, expired, or
   * already this owner's). Atomic across nodes.
   */
  acquireLease(name: string, owner: string, ttlMs: number, nowMs: number): Promise<boolean>;
  /** Who holds the lease now, if anyone (an expired lease has no holder). */
  leaseHolder(name: string, nowMs: number): Promise<string | undefined>;
  /** Gives it up, if `owner` holds it. */
  releaseLease(name: string, owner: string): Promise<void>;

  /**
   * Merges last-known values in one transaction: each field keeps the value with the newer time (a tie goes to the
   * update), lastSeenMs the greater; a device's first update creates its row (health null). Several updates for one
   * device in a call merge in order.
   */
  mergeDeviceState(updates: readonly DeviceStateUpdate[]): Promise<void>;
  getDeviceState(key: IdentityKey): Promise<DeviceStateRecord | undefined>;
  /** Sets health (creating the row when absent, lastSeenMs 0); returns the keys whose health actually changed. */
  setHealth(keys: readonly IdentityKey[], health: DeviceHealth, nowMs: number): Promise<IdentityKey[]>;
  /** Devices (not modules) per health; devices whose health was never set are not counted. */
  healthCounts(): Promise<Readonly<Record<DeviceHealth, number>>>;
  /** Devices that missed their heartbeat (see OverdueOptions), in deviceId order. */
  overdueDevices(opts: OverdueOptions): Promise<IdentityKey[]>;
  /** Removes a deleted device's state (its modules' too). */
  deleteDeviceState(deviceId: string): Promise<void>;

  /**
   * Inserts a raised alert unless one is open (raised or acknowledged) for the same rule and identity: then it
   * returns undefined and stores nothing. Atomic across nodes (a partial unique index).
   */
  openAlert(alert: Omit<AlertRecord, 'rev' | 'updatedMs' | 'status' | 'acknowledgedMs' | 'acknowledgedBy' | 'clearedMs'>): Promise<AlertRecord | undefined>;
  getAlert(id: string): Promise<AlertRecord | undefined>;
  findOpenAlert(ruleName: string, key: IdentityKey): Promise<AlertRecord | undefined>;
  /** Compare-and-set on rev; undefined when the rev moved or the alert is gone. */
  updateAlert(id: string, change: { readonly status: AlertStatus; readonly acknowledgedMs?: number; readonly acknowledgedBy?: string; readonly clearedMs?: number; readonly details?: JsonObject }, nowMs: number, expectedRev: number): Promise<AlertRecord | undefined>;
  listAlerts(opts: AlertListOptions): Promise<AlertRecord[]>;
  alertCounts(): Promise<AlertCounts>;
}
