/**
 * The rules engine: a consumer of the log (checkpoint `rules`) that judges each identity's records against the
 * enabled rules (rule-settings.ts) and raises or clears alerts. It reads behind ingestion like every consumer, so
 * rules never slow it; per record it costs a few in-memory evaluations, and a Store call only when an alert changes
 * (OpenAlertIndex knows which are open).
 *
 * - threshold: judged on each telemetry record; true raises, false clears (or, with clearCondition, only a true
 *   clearCondition clears).
 * - window: windows.ts; each judged window raises when `aggregate operator threshold` holds and clears when not.
 * - absence: `sweep` raises for the devices (not modules) not heard from for `seconds`; a record of the device
 *   clears it.
 * - twin: judged when the identity's twin changes or it is created (twinChange and lifecycle events), and over the
 *   fleet once per rule revision (a new rule sees the devices that already match).
 *
 * Delivery is at least once: raise and clear are idempotent, so records handed over again after a restart change
 * nothing. Window state is in memory and lost on restart (windows start over). A rule that fails on a record is
 * reported to `onError` and skipped for that record; a Store failure throws, so the cursor retries the batch. A
 * device that leaves a rule's scope (a twin change) has that rule's alert cleared; alerts of a rule removed or
 * disabled are cleared by the next sweep, and a deleted identity's alerts when its lifecycle event is read.
 */

import { evaluateDeviceCondition, type MessageFacts } from '../query/index.js';
import { isoTime, type Clock } from '../../ports/clock/index.js';
import {
  identityKeyText, type IdentityKey, type IdentityRecord, type JsonObject, type QueryCursor, type QueryExpr, type Store,
} from '../../ports/store/index.js';
import { OpenAlertIndex, type Alerts } from './alerts.js';
import type { PipelineConsumer } from './cursor.js';
import type { PipelineMessage } from './message.js';
import { messageFacts } from './routing.js';
import {
  compileRule, inScope, judgeThreshold, recordDetails, windowSample, type AbsenceRule, type CompiledRule, type ThresholdRule, type TwinRule,
  type WindowRule,
} from './rule-settings.js';
import type { PipelineSettings } from './settings.js';
import { compareNumber, MAX_SLIDING_SAMPLES, WindowTracker, type WindowResult } from './windows.js';

export { ruleValidator, parseRule, RULE_TYPES, type CompiledRule, type RuleType } from './rule-settings.js';
export { MAX_SLIDING_SAMPLES } from './windows.js';

export const RULES_CONSUMER = 'rules';

export interface RulesTuning {
  /** How long a twin read for `scope` or `$twin` is reused (twin changes drop it at once). */
  readonly twinCacheMs: number;
  readonly maxCachedTwins: number;
  /** How often the open-alert index is read again (changes made on other nodes are seen within this). */
  readonly openRefreshMs: number;
  readonly maxOpenTracked: number;
  /** How long after a window's end records may still arrive for it (the log is in enqueued order within this). */
  readonly windowGraceMs: number;
  readonly maxSamplesPerDevice: number;
  /** Overdue devices alerted per absence rule and sweep. */
  readonly maxOverduePerSweep: number;
}

export const DEFAULT_RULES_TUNING: RulesTuning = {
  twinCacheMs: 10_000, maxCachedTwins: 10_000, openRefreshMs: 30_000, maxOpenTracked: 100_000, windowGraceMs: 5_000,
  maxSamplesPerDevice: MAX_SLIDING_SAMPLES, maxOverduePerSweep: 10_000,
};

export interface RuleErrorContext {
  readonly rule: string;
  readonly deviceId?: string;
}

export interface RulesEngineDeps {
  readonly settings: PipelineSettings;
  readonly alerts: Alerts;
  /** Alerts and device state (pipeline), twins (identities), the fleet scan of a new twin rule (query). */
  readonly store: Pick<Store, 'pipeline' | 'identities' | 'query'>;
  readonly clock: Clock;
  /** A rule that failed on one record, or a stored rule that no longer compiles. */
  readonly onError: (err: unknown, context: RuleErrorContext) => void;
  readonly tuning?: Partial<RulesTuning>;
}

/** The enabled rules of one settings snapshot, compiled once. */
interface RuleSet {
  readonly version: number;
  readonly names: ReadonlySet<string>;
  readonly all: readonly CompiledRule[];
  readonly threshold: readonly ThresholdRule[];
  readonly window: readonly WindowRule[];
  readonly absence: readonly AbsenceRule[];
  readonly twin: readonly TwinRule[];
  /** Whether telemetry needs the sender's twin (a scope, or a `$twin` condition). */
  readonly telemetryNeedsTwin: boolean;
}

/** Where a partition's reading stands: the newest enqueued time read, and when a record was last read (wall clock). */
interface PartitionMark {
  watermarkMs: number;
  lastRecordAtMs: number;
}

export class RulesEngine implements PipelineConsumer {
  readonly name = RULES_CONSUMER;
  /** Alerts within a twentieth of a second; records judged in batches of that much. */
  readonly readIntervalMs = 50;

  /** Without an enabled rule there is nothing to judge: the cursor reads nothing (ingestion pays nothing for rules). */
  async isIdle(): Promise<boolean> {
    return (await this.rules()).all.length === 0;
  }
  private readonly tuning: RulesTuning;
  private readonly index: OpenAlertIndex;
  private ruleSet: RuleSet | undefined;
  private readonly windows = new Map<string, { rule: WindowRule; tracker: WindowTracker }>();
  private readonly twins = new Map<string, { record: IdentityRecord | null; atMs: number }>();
  private readonly partitions = new Map<string, PartitionMark>();
  /** Per partition, the work in progress (handle and sweepWindows take turns). */
  private readonly busy = new Map<string, Promise<void>>();
  /** The revision of each twin rule whose fleet scan is done on this node. */
  private readonly scanned = new Map<string, number>();

  constructor(private readonly deps: RulesEngineDeps) {
    this.tuning = { ...DEFAULT_RULES_TUNING, ...deps.tuning };
    this.index = new OpenAlertIndex(deps.store.pipeline, { refreshMs: this.tuning.openRefreshMs, maxTracked: this.tuning.maxOpenTracked });
    deps.alerts.onChange((a) => this.index.track(a));
  }

  async handle(partition: string, messages: readonly PipelineMessage[]): Promise<void> {
    await this.exclusive(partition, () => this.handleBatch(partition, messages));
    // The batch's alert notifications are in the log before the checkpoint moves past the batch.
    await this.deps.alerts.flush();
  }

  private async handleBatch(partition: string, messages: readonly PipelineMessage[]): Promise<void> {
    const now = this.deps.clock.now();
    this.mark(partition, messages, now);
    const rules = await this.rules();
    if (rules.all.length === 0) return;
    await this.index.refreshIfDue(now);
    const changed = new Map<string, IdentityKey>();
    for (const m of messages) {
      if (m.source === 'twinChange' || m.source === 'lifecycle') changed.set(identityKeyText(m.key), m.key);
    }
    for (const text of changed.keys()) this.twins.delete(text);
    const twins = rules.telemetryNeedsTwin ? await this.twinsOf(messages, now) : new Map<string, IdentityRecord | null>();
    for (const m of messages) if (m.source === 'telemetry') await this.onTelemetry(rules, partition, m, twins.get(identityKeyText(m.key)) ?? undefined);
    if (changed.size > 0) await this.onTwinChanges(rules, [...changed.values()], now);
  }

  /** Judges ended windows, then absence, removed rules and new twin rules (see sweepWindows, sweepFleet). */
  async sweep(nowMs: number): Promise<void> {
    await this.sweepWindows(nowMs);
    await this.sweepFleet(nowMs);
  }

  /** Judges the tumbling windows that ended and the sliding windows that emptied, on this node. */
  async sweepWindows(nowMs: number): Promise<void> {
    await this.rules();
    // Partition by partition, each while its records are not being handled, so a window is never judged after a
    // later one of the same identity.
    for (const partition of [...this.partitions.keys()]) {
      await this.exclusive(partition, async () => {
        for (const { rule, tracker } of this.windows.values()) {
          for (const { key, result } of tracker.sweep((p, endMs) => p === partition && this.ended(p, endMs, nowMs))) {
            await this.settleWindow(rule, key, result);
          }
        }
      });
    }
  }

  /**
   * The fleet-wide part, the same on every node (running it on one is enough; on several, it is only repeated):
   * raises absence alerts, clears the alerts of removed or disabled rules, and scans the fleet for each twin rule
   * this node has not scanned at its revision.
   */
  async sweepFleet(nowMs: number): Promise<void> {
    const rules = await this.rules();
    await this.index.refreshIfDue(nowMs);
    for (const ruleName of this.index.ruleNames()) {
      if (ruleName.startsWith('$') || rules.names.has(ruleName)) continue;
      await this.deps.alerts.clearRule(ruleName, { reason: 'the rule was removed or disabled', time: isoTime(nowMs) });
    }
    for (const rule of rules.absence) {
      // Page by page, so every overdue device is judged however many there are (most are alerted already: no write).
      for (let after: string | undefined; ;) {
        const overdue = await this.deps.store.pipeline.overdueDevices({
          heartbeat: { seconds: rule.seconds }, ...(rule.scope ? { where: rule.scope } : {}), nowMs, sinceMs: rule.updatedMs,
          onlyHealthy: false, limit: this.tuning.maxOverduePerSweep, ...(after === undefined ? {} : { afterDeviceId: after }),
        });
        for (const key of overdue) {
          await this.settle(rule, key, true, () => ({ type: 'absence', seconds: rule.seconds, detectedTime: isoTime(nowMs) }));
        }
        if (overdue.length < this.tuning.maxOverduePerSweep) break;
        after = overdue[overdue.length - 1].deviceId;
      }
    }
    for (const rule of rules.twin) {
      if (this.scanned.get(rule.name) === rule.rev) continue;
      await this.scanTwinRule(rule, nowMs);
      this.scanned.set(rule.name, rule.rev);
    }
  }

  /**
   * This node stopped reading `partition` (its lease went to another node): the windows fed from it are dropped
   * unjudged, since the records that would complete them go to the other node.
   */
  forgetPartition(partition: string): void {
    for (const { tracker } of this.windows.values()) tracker.forgetPartition(partition);
    this.partitions.delete(partition);
  }

  /** How many identities have a window in progress, and records that came too late for theirs. */
  windowStats(): { identities: number; lateSamples: number } {
    let identities = 0;
    let lateSamples = 0;
    for (const { tracker } of this.windows.values()) { identities += tracker.size; lateSamples += tracker.lateSamples; }
    return { identities, lateSamples };
  }

  private async onTelemetry(rules: RuleSet, partition: string, m: PipelineMessage, twin: IdentityRecord | undefined): Promise<void> {
    const key = m.key;
    let facts: MessageFacts | undefined;
    const factsOf = (): MessageFacts => (facts ??= messageFacts(m, twin));
    for (const rule of rules.threshold) {
      const firing = this.guard(rule, key, () => judgeThreshold(rule, twin, factsOf));
      if (firing === undefined) continue;
      await this.settle(rule, key, firing, () => ({ ...(firing ? { type: 'threshold', condition: rule.conditionText } : {}), ...recordDetails(m) }));
    }
    for (const rule of rules.window) {
      const sample = this.guard(rule, key, () => windowSample(rule, twin, m, factsOf));
      if (sample === undefined) continue;
      const tracker = this.windows.get(rule.name)?.tracker;
      for (const result of tracker?.add(key, partition, m.event.enqueuedTimeMs, sample) ?? []) await this.settleWindow(rule, key, result);
    }
    if (key.moduleId !== '') return;
    for (const rule of rules.absence) {
      // A record read long after it was sent (the engine catching up) says nothing about the device now.
      if (this.deps.clock.now() - m.event.enqueuedTimeMs >= rule.seconds * 1000) continue;
      await this.settle(rule, key, false, () => ({ heardTime: isoTime(m.event.enqueuedTimeMs) }));
    }
  }

  private async onTwinChanges(rules: RuleSet, keys: readonly IdentityKey[], now: number): Promise<void> {
    const found = new Map((await this.deps.store.identities.getMany(keys)).map((r) => [identityKeyText(r), r]));
    for (const key of keys) {
      const record = found.get(identityKeyText(key));
      this.cacheTwin(identityKeyText(key), record ?? null, now);
      if (!record) {
        await this.identityDeleted(key, now);
        continue;
      }
      for (const rule of rules.twin) {
        const firing = this.guard(rule, key, () => inScope(rule, record) && evaluateDeviceCondition(rule.condition, record));
        if (firing === undefined) continue;
        await this.settle(rule, key, firing, () => ({ ...(firing ? { type: 'twin', condition: rule.conditionText } : {}), twinVersion: record.twin.version }));
      }
      for (const rule of rules.all) {
        if (rule.type === 'twin' || !rule.scope || (rule.type === 'absence' && key.moduleId !== '')) continue;
        const left = this.guard(rule, key, () => !inScope(rule, record));
        if (left) await this.settle(rule, key, false, () => ({ reason: 'the device left the rule\'s scope', twinVersion: record.twin.version }));
      }
    }
  }

  /** Clears every open alert of the identity (a device's: its modules' too) and forgets its windows. */
  private async identityDeleted(key: IdentityKey, now: number): Promise<void> {
    for (const { tracker } of this.windows.values()) tracker.forget(key);
    for (const ruleName of this.index.ruleNames()) {
      for (const open of this.index.openKeys(ruleName)) {
        if (open.deviceId !== key.deviceId || (key.moduleId !== '' && open.moduleId !== key.moduleId)) continue;
        await this.deps.alerts.clear(ruleName, open, { reason: 'the identity was deleted', time: isoTime(now) });
        this.index.note(ruleName, open, false);
      }
    }
  }

  private async scanTwinRule(rule: TwinRule, nowMs: number): Promise<void> {
    const where: QueryExpr = rule.scope ? { kind: 'and', left: rule.scope, right: rule.condition } : rule.condition;
    const matched = new Set<string>();
    let after: QueryCursor | undefined;
    do {
      const page = await this.deps.store.query.run({ collection: 'devices', select: { kind: 'all' }, where }, { limit: 1000, ...(after ? { after } : {}) });
      if (page.kind !== 'identities') break;
      for (const r of page.rows) {
        matched.add(identityKeyText(r));
        await this.settle(rule, r, true, () => ({ type: 'twin', condition: rule.conditionText, twinVersion: r.twin.version }));
      }
      after = page.after;
    } while (after);
    for (const key of this.index.openKeys(rule.name)) {
      if (key.moduleId !== '' || matched.has(identityKeyText(key))) continue;
      await this.settle(rule, key, false, () => ({ reason: 'the condition no longer holds', time: isoTime(nowMs) }));
    }
  }

  private async settleWindow(rule: WindowRule, key: IdentityKey, r: WindowResult): Promise<void> {
    const firing = compareNumber(r.value, rule.operator, rule.threshold);
    await this.settle(rule, key, firing, () => ({
      type: 'window', aggregate: rule.aggregate, ...(rule.fieldText ? { field: rule.fieldText } : {}), window: { ...rule.window },
      operator: rule.operator, threshold: rule.threshold, value: r.value, samples: r.samples,
      windowStart: isoTime(r.startMs), windowEnd: isoTime(r.endMs),
    }));
  }

  /** Runs `fn` after whatever else runs for the partition (a cursor's batch, a window sweep) has ended. */
  private async exclusive(partition: string, fn: () => Promise<void>): Promise<void> {
    const before = this.busy.get(partition) ?? Promise.resolve();
    const run = before.then(fn);
    const settled = run.catch(() => undefined);
    this.busy.set(partition, settled);
    try {
      await run;
    } finally {
      if (this.busy.get(partition) === settled) this.busy.delete(partition);
    }
  }

  /** Raises or clears unless the alert is known to be so already. */
  private async settle(rule: CompiledRule, key: IdentityKey, firing: boolean, details: () => JsonObject): Promise<void> {
    if (this.index.isOpen(rule.name, key) === firing) return;
    if (firing) {
      this.index.track(await this.deps.alerts.raise({ ruleName: rule.name, key, severity: rule.severity, details: details() }));
    } else {
      await this.deps.alerts.clear(rule.name, key, details());
      this.index.note(rule.name, key, false);
    }
  }

  /** Runs a rule's pure judgement; a failure is the rule's, reported, and gives no verdict. */
  private guard<T>(rule: CompiledRule, key: IdentityKey, judge: () => T): T | undefined {
    try {
      return judge();
    } catch (err) {
      this.deps.onError(err, { rule: rule.name, deviceId: key.deviceId });
      return undefined;
    }
  }

  private async rules(): Promise<RuleSet> {
    const snapshot = await this.deps.settings.snapshot();
    if (this.ruleSet?.version === snapshot.version) return this.ruleSet;
    const all: CompiledRule[] = [];
    for (const r of snapshot.byKind.get('rule') ?? []) {
      try {
        const rule = compileRule(r);
        if (rule.enabled) all.push(rule);
      } catch (err) {
        this.deps.onError(err, { rule: r.name });
      }
    }
    const of = <T extends CompiledRule['type']>(type: T) => all.filter((r): r is Extract<CompiledRule, { type: T }> => r.type === type);
    const threshold = of('threshold');
    const window = of('window');
    this.syncWindows(window);
    this.ruleSet = {
      version: snapshot.version, names: new Set(all.map((r) => r.name)), all, threshold, window, absence: of('absence'), twin: of('twin'),
      telemetryNeedsTwin: threshold.some((r) => r.scope || r.condition.usesTwin || r.clearCondition?.usesTwin)
        || window.some((r) => r.scope || r.filter?.usesTwin),
    };
    return this.ruleSet;
  }

  /** Keeps the window state of rules whose revision did not change; starts the others over. */
  private syncWindows(rules: readonly WindowRule[]): void {
    const wanted = new Map(rules.map((r) => [r.name, r]));
    for (const [name, w] of this.windows) if (wanted.get(name)?.rev !== w.rule.rev) this.windows.delete(name);
    for (const rule of rules) {
      if (!this.windows.has(rule.name)) this.windows.set(rule.name, { rule, tracker: new WindowTracker({ ...rule.window, aggregate: rule.aggregate }, this.tuning.maxSamplesPerDevice) });
    }
  }

  private mark(partition: string, messages: readonly PipelineMessage[], now: number): void {
    if (messages.length === 0) return;
    const p = this.partitions.get(partition) ?? { watermarkMs: 0, lastRecordAtMs: 0 };
    for (const m of messages) p.watermarkMs = Math.max(p.watermarkMs, m.event.enqueuedTimeMs);
    p.lastRecordAtMs = now;
    this.partitions.set(partition, p);
  }

  /**
   * Whether a window ending at `endMs` is complete: the partition's records have moved a grace past it, or the
   * partition has been quiet for a grace and the wall clock is a grace past it.
   */
  private ended(partition: string, endMs: number, nowMs: number): boolean {
    const grace = this.tuning.windowGraceMs;
    const p = this.partitions.get(partition);
    if (p && p.watermarkMs >= endMs + grace) return true;
    return nowMs >= endMs + grace && (!p || nowMs - p.lastRecordAtMs >= grace);
  }

  /** The twins of the telemetry's senders: cached ones younger than twinCacheMs, the others in one read. */
  private async twinsOf(messages: readonly PipelineMessage[], now: number): Promise<Map<string, IdentityRecord | null>> {
    const out = new Map<string, IdentityRecord | null>();
    const missing = new Map<string, IdentityKey>();
    for (const m of messages) {
      if (m.source !== 'telemetry') continue;
      const text = identityKeyText(m.key);
      if (out.has(text) || missing.has(text)) continue;
      const cached = this.twins.get(text);
      if (cached && now - cached.atMs < this.tuning.twinCacheMs) out.set(text, cached.record);
      else missing.set(text, m.key);
    }
    if (missing.size === 0) return out;
    const found = new Map((await this.deps.store.identities.getMany([...missing.values()])).map((r) => [identityKeyText(r), r]));
    for (const text of missing.keys()) {
      const record = found.get(text) ?? null;
      out.set(text, record);
      this.cacheTwin(text, record, now);
    }
    return out;
  }

  private cacheTwin(text: string, record: IdentityRecord | null, now: number): void {
    this.twins.delete(text);
    this.twins.set(text, { record, atMs: now });
    if (this.twins.size > this.tuning.maxCachedTwins) this.twins.delete(this.twins.keys().next().value as string);
  }
}
