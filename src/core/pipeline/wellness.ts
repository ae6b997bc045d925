/**
 * Wellness: each device's heartbeat expectation, from its tag `tags.corral.heartbeatSeconds` (a positive number; it
 * wins over profiles) or from the health profiles whose condition its twin matches (a device matching several is
 * held to each, so in effect to the shortest). A device that misses it turns 'unhealthy' and gets an alert of rule
 * `$wellness`; a record from it turns it 'healthy' again and clears the alert.
 *
 * A device counts as healthy once heard from, and as unhealthy once it missed an expectation; devices never heard
 * from nor judged are not counted. A device heard from while a sweep judges it may be marked unhealthy for one
 * heartbeat: its next record sets it right.
 */

import { ArgumentInvalid } from '../errors/index.js';
import { parseCondition } from '../query/index.js';
import { isoTime, type Clock } from '../../ports/clock/index.js';
import type { IdentityKey, JsonObject, QueryExpr } from '../../ports/store/index.js';
import type { AlertSeverity, DeviceHealth, OverdueOptions, PipelineStore, SettingRecord } from '../../ports/store/pipeline.js';
import { ALERT_SEVERITIES, type Alerts } from './alerts.js';
import { objectBody, onlyFields, type PipelineSettings } from './settings.js';

/** The rule name of wellness alerts (`$`: no rule setting can have it). */
export const WELLNESS_RULE = '$wellness';
/** The tag holding a device's own heartbeat, in seconds: `tags.corral.heartbeatSeconds`. */
export const HEARTBEAT_TAG_PATH: readonly string[] = ['corral', 'heartbeatSeconds'];
const HEARTBEAT_TAG = `tags.${HEARTBEAT_TAG_PATH.join('.')}`;

const MAX_HEARTBEAT_SECONDS = 30 * 86_400;
/** Overdue devices read per Store call; a sweep reads pages until none is left. */
const SWEEP_BATCH = 1000;

export interface HealthProfile {
  readonly name: string;
  readonly condition: QueryExpr;
  readonly heartbeatSeconds: number;
  readonly severity: AlertSeverity;
  readonly updatedMs: number;
}

function fail(name: string, field: string, must: string, value: unknown): never {
  throw new ArgumentInvalid(`health profile '${name}': ${field} must be ${must}, got ${value === undefined ? 'nothing' : JSON.stringify(value)}`);
}

/**
 * Checks `{"condition": "tags.type = 'sensor'", "heartbeatSeconds": 60, "severity"?: "warning", "description"?: …}`;
 * returns it with its defaults. Throws ArgumentInvalid naming the field.
 */
export function healthProfileValidator(name: string, body: unknown): JsonObject {
  return parseProfile(name, body).doc;
}

function parseProfile(name: string, body: unknown): { doc: JsonObject; condition: QueryExpr } {
  const doc = objectBody(body, `health profile '${name}'`);
  onlyFields(doc, ['condition', 'heartbeatSeconds', 'severity', 'description'], `health profile '${name}'`);
  const { condition, heartbeatSeconds, severity = 'warning', description } = doc;
  if (typeof condition !== 'string' || condition.trim() === '') fail(name, 'condition', "a condition over the twin, such as \"tags.type = 'sensor'\"", condition);
  let expr: QueryExpr;
  try {
    expr = parseCondition(condition);
  } catch (err) {
    if (err instanceof ArgumentInvalid) throw new ArgumentInvalid(`health profile '${name}': condition: ${err.message}`);
    throw err;
  }
  if (typeof heartbeatSeconds !== 'number' || !Number.isInteger(heartbeatSeconds) || heartbeatSeconds < 1 || heartbeatSeconds > MAX_HEARTBEAT_SECONDS) {
    fail(name, 'heartbeatSeconds', `an integer from 1 to ${MAX_HEARTBEAT_SECONDS}`, heartbeatSeconds);
  }
  if (typeof severity !== 'string' || !(ALERT_SEVERITIES as readonly string[]).includes(severity)) fail(name, 'severity', `one of ${ALERT_SEVERITIES.join(', ')}`, severity);
  if (description !== undefined && (typeof description !== 'string' || description.length > 1024)) fail(name, 'description', 'a string of at most 1024 characters', description);
  return {
    doc: { condition, heartbeatSeconds, severity, ...(description !== undefined ? { description } : {}) },
    condition: expr,
  };
}

/** A stored profile, compiled (throws ArgumentInvalid when it no longer checks). */
export function compileProfile(r: SettingRecord): HealthProfile {
  const { doc, condition } = parseProfile(r.name, r.doc);
  return { name: r.name, condition, heartbeatSeconds: doc.heartbeatSeconds as number, severity: doc.severity as AlertSeverity, updatedMs: r.updatedMs };
}

export interface WellnessDeps {
  readonly store: PipelineStore;
  readonly alerts: Alerts;
  readonly settings: PipelineSettings;
  readonly clock: Clock;
  /** A stored profile that no longer compiles (it is skipped). */
  readonly onError: (err: unknown, profile: string) => void;
}

export class Wellness {
  /**
   * A tagged device never heard from counts from this node's first sweep (the tag has no time of its own); under a
   * profile, from the profile's last change.
   */
  private firstSweepMs: number | undefined;
  private readonly untagged: QueryExpr;

  constructor(private readonly deps: WellnessDeps) {
    // A profile holds only devices without a valid tag of their own: the tag wins.
    this.untagged = { kind: 'not', operand: parseCondition(`IS_NUMBER(${HEARTBEAT_TAG}) AND ${HEARTBEAT_TAG} > 0`) };
  }

  /** Marks unhealthy and alerts the devices that missed their heartbeat; returns how many turned unhealthy. */
  async sweep(nowMs: number): Promise<number> {
    const sinceMs = (this.firstSweepMs ??= nowMs);
    let turned = await this.judge({ heartbeat: { tagPath: HEARTBEAT_TAG_PATH } }, sinceMs, nowMs, 'warning', { source: 'tag', tag: HEARTBEAT_TAG });
    const snapshot = await this.deps.settings.snapshot();
    for (const r of snapshot.byKind.get('healthProfile') ?? []) {
      let p: HealthProfile;
      try {
        p = compileProfile(r);
      } catch (err) {
        this.deps.onError(err, r.name);
        continue;
      }
      turned += await this.judge(
        { where: { kind: 'and', left: p.condition, right: this.untagged }, heartbeat: { seconds: p.heartbeatSeconds } },
        p.updatedMs, nowMs, p.severity, { source: 'profile', profile: p.name, heartbeatSeconds: p.heartbeatSeconds },
      );
    }
    return turned;
  }

  /**
   * Devices heard from (the device-state stage's onSeen): those that were unhealthy turn healthy and their alert
   * clears. One Store write for the batch; alerts are touched only for devices whose health changed.
   */
  async seen(keys: readonly IdentityKey[], nowMs: number): Promise<void> {
    const devices = keys.filter((k) => k.moduleId === '');
    if (devices.length === 0) return;
    const changed = await this.deps.store.setHealth(devices, 'healthy', nowMs);
    for (const key of changed) await this.deps.alerts.clear(WELLNESS_RULE, key, { heardTime: isoTime(nowMs) });
  }

  /** Devices per health (devices never judged nor heard from are not counted). */
  async counts(): Promise<Readonly<Record<DeviceHealth, number>>> {
    return this.deps.store.healthCounts();
  }

  private async judge(
    opts: Pick<OverdueOptions, 'where' | 'heartbeat'>, sinceMs: number, nowMs: number, severity: AlertSeverity, details: JsonObject,
  ): Promise<number> {
    let turned = 0;
    for (;;) {
      const overdue = await this.deps.store.overdueDevices({ ...opts, nowMs, sinceMs, onlyHealthy: true, limit: SWEEP_BATCH });
      if (overdue.length === 0) return turned;
      const changed = await this.deps.store.setHealth(overdue, 'unhealthy', nowMs);
      for (const key of changed) {
        await this.deps.alerts.raise({ ruleName: WELLNESS_RULE, key, severity, details: { ...details, detectedTime: isoTime(nowMs) } });
      }
      turned += changed.length;
      // Those marked are not read again; a page that changed nothing would come back the same.
      if (overdue.length < SWEEP_BATCH || changed.length === 0) return turned;
    }
  }
}
