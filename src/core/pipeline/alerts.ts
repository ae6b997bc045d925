/**
 * Alerts: what rules and wellness raise about a device. One open alert (raised or acknowledged) per rule and
 * identity, whatever the number of nodes (the Store's partial unique index); the life cycle is raised →
 * acknowledged → cleared, or raised → cleared. Every change is appended to the EventLog as an 'alerts' system event,
 * so routes with source 'alerts' notify the same endpoints routing uses.
 */

import { randomUUID } from 'node:crypto';
import { ArgumentInvalid, PipelineItemConflict, PipelineItemNotFound } from '../errors/index.js';
import type { SystemEvents } from '../events/index.js';
import { isoTime, type Clock } from '../../ports/clock/index.js';
import { identityKeyText, type IdentityKey, type JsonObject } from '../../ports/store/index.js';
import type { AlertCounts, AlertRecord, AlertSeverity, AlertStatus, PipelineStore } from '../../ports/store/pipeline.js';

export const ALERT_SEVERITIES: readonly AlertSeverity[] = ['critical', 'error', 'warning', 'info'];
export const ALERT_STATUSES: readonly AlertStatus[] = ['raised', 'acknowledged', 'cleared'];

export const DEFAULT_ALERT_PAGE = 100;
export const MAX_ALERT_PAGE = 1000;

/** Compare-and-set attempts before giving up on an alert other writers keep changing. */
const MAX_ATTEMPTS = 5;

export interface AlertsDeps {
  readonly store: PipelineStore;
  readonly clock: Clock;
  /** Where alertRaised / alertAcknowledged / alertCleared events go (SystemEvents reports its own failures). */
  readonly events: Pick<SystemEvents, 'alert'>;
}

export interface RaiseRequest {
  readonly ruleName: string;
  readonly key: IdentityKey;
  readonly severity: AlertSeverity;
  /** What raised it: the rule's text and the value seen. */
  readonly details: JsonObject;
}

export interface AlertListRequest {
  readonly status?: AlertStatus;
  /** Raised or acknowledged; overrides status. */
  readonly open?: boolean;
  readonly ruleName?: string;
  readonly deviceId?: string;
  /** 1 to MAX_ALERT_PAGE (default DEFAULT_ALERT_PAGE). */
  readonly limit?: number;
  /** The `continuation` of the previous page. */
  readonly continuation?: string;
}

export interface AlertPage {
  /** Newest first. */
  readonly items: readonly AlertRecord[];
  /** Set while more alerts may follow. */
  readonly continuation?: string;
}

/** An alert as the REST API and the 'alerts' events show it. */
export function alertView(a: AlertRecord): JsonObject {
  return {
    id: a.id, ruleName: a.ruleName, deviceId: a.deviceId, ...(a.moduleId ? { moduleId: a.moduleId } : {}),
    severity: a.severity, status: a.status, details: a.details,
    raisedTime: isoTime(a.raisedMs),
    acknowledgedTime: a.acknowledgedMs === null ? null : isoTime(a.acknowledgedMs),
    acknowledgedBy: a.acknowledgedBy,
    clearedTime: a.clearedMs === null ? null : isoTime(a.clearedMs),
    updatedTime: isoTime(a.updatedMs),
    etag: `"${a.rev}"`,
  };
}

function isOpen(a: AlertRecord): boolean {
  return a.status !== 'cleared';
}

function encodeToken(a: AlertRecord): string {
  return Buffer.from(JSON.stringify([a.raisedMs, a.id])).toString('base64url');
}

function decodeToken(token: string): { raisedMs: number; id: string } {
  try {
    const [raisedMs, id] = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as [unknown, unknown];
    if (typeof raisedMs === 'number' && Number.isFinite(raisedMs) && typeof id === 'string') return { raisedMs, id };
  } catch { /* reported below */ }
  throw new ArgumentInvalid('continuation is not an alert listing token this hub issued');
}

export class Alerts {
  private readonly listeners = new Set<(alert: AlertRecord) => void>();

  constructor(private readonly deps: AlertsDeps) {}

  /** Called with each alert this node raised, acknowledged or cleared (the rules engine keeps its open set by it). */
  onChange(listener: (alert: AlertRecord) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Opens an alert, or returns the one already open for the rule and identity unchanged (de-duplication: nothing is
   * stored, no event appended).
   */
  async raise(req: RaiseRequest): Promise<AlertRecord> {
    for (let attempt = 1; ; attempt++) {
      const now = this.deps.clock.now();
      const opened = await this.deps.store.openAlert({
        id: randomUUID(), ruleName: req.ruleName, deviceId: req.key.deviceId, moduleId: req.key.moduleId,
        severity: req.severity, details: req.details, raisedMs: now,
      });
      if (opened) {
        await this.changed('alertRaised', opened);
        return opened;
      }
      const open = await this.deps.store.findOpenAlert(req.ruleName, req.key);
      if (open) return open;
      // Cleared between the two calls: open a new one.
      if (attempt >= MAX_ATTEMPTS) throw new PipelineItemConflict(`alert of rule '${req.ruleName}' for '${identityKeyText(req.key)}' keeps changing; retry`);
    }
  }

  /** raised → acknowledged; an acknowledged alert is returned as it is. 404 when unknown, 409999 when cleared. */
  async acknowledge(id: string, by: string): Promise<AlertRecord> {
    return this.operatorChange(id, (a) => {
      if (a.status === 'acknowledged') return undefined;
      if (a.status === 'cleared') throw new PipelineItemConflict(`alert '${id}' is cleared; only an open alert can be acknowledged`);
      return { status: 'acknowledged', acknowledgedMs: this.deps.clock.now(), acknowledgedBy: by };
    }, 'alertAcknowledged');
  }

  /**
   * Clears the open alert of the rule for the identity, adding `details` (what cleared it) under `cleared`; returns
   * it, or undefined when none is open.
   */
  async clear(ruleName: string, key: IdentityKey, details: JsonObject): Promise<AlertRecord | undefined> {
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const open = await this.deps.store.findOpenAlert(ruleName, key);
      if (!open) return undefined;
      const now = this.deps.clock.now();
      const updated = await this.deps.store.updateAlert(open.id, { status: 'cleared', clearedMs: now, details: { ...open.details, cleared: details } }, now, open.rev);
      if (updated) {
        await this.changed('alertCleared', updated);
        return updated;
      }
    }
    throw new PipelineItemConflict(`alert of rule '${ruleName}' for '${identityKeyText(key)}' keeps changing; retry`);
  }

  /** Clears an alert by hand (a cleared one is returned as it is); 404 when unknown. */
  async clearById(id: string, by: string): Promise<AlertRecord> {
    return this.operatorChange(id, (a) => {
      if (a.status === 'cleared') return undefined;
      return { status: 'cleared', clearedMs: this.deps.clock.now(), details: { ...a.details, cleared: { by, manual: true } } };
    }, 'alertCleared');
  }

  /** Clears every open alert of a rule (a rule removed or disabled); returns how many. */
  async clearRule(ruleName: string, details: JsonObject): Promise<number> {
    let cleared = 0;
    for (;;) {
      const open = await this.deps.store.listAlerts({ open: true, ruleName, limit: MAX_ALERT_PAGE });
      for (const a of open) if (await this.clear(ruleName, a, details)) cleared++;
      if (open.length < MAX_ALERT_PAGE) return cleared;
    }
  }

  /** 404 when unknown. */
  async get(id: string): Promise<AlertRecord> {
    const a = await this.deps.store.getAlert(id);
    if (!a) throw new PipelineItemNotFound('alert', id);
    return a;
  }

  /** A page, newest first; throws ArgumentInvalid for a limit out of range or a foreign continuation. */
  async list(req: AlertListRequest = {}): Promise<AlertPage> {
    const limit = req.limit ?? DEFAULT_ALERT_PAGE;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_ALERT_PAGE) {
      throw new ArgumentInvalid(`limit must be an integer from 1 to ${MAX_ALERT_PAGE}, got ${limit}`);
    }
    const rows = await this.deps.store.listAlerts({
      ...(req.open ? { open: true } : req.status ? { status: req.status } : {}),
      ...(req.ruleName !== undefined ? { ruleName: req.ruleName } : {}),
      ...(req.deviceId !== undefined ? { deviceId: req.deviceId } : {}),
      ...(req.continuation !== undefined ? { after: decodeToken(req.continuation) } : {}),
      limit: limit + 1,
    });
    if (rows.length <= limit) return { items: rows };
    const items = rows.slice(0, limit);
    return { items, continuation: encodeToken(items[items.length - 1]) };
  }

  async counts(): Promise<AlertCounts> {
    return this.deps.store.alertCounts();
  }

  /** Reads, decides (undefined: leave it as it is), compare-and-sets on rev; retried while other writers win. */
  private async transition(
    id: string,
    decide: (a: AlertRecord) => Parameters<PipelineStore['updateAlert']>[1] | undefined,
    op: 'alertAcknowledged' | 'alertCleared',
  ): Promise<AlertRecord> {
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const current = await this.get(id);
      const change = decide(current);
      if (!change) return current;
      const updated = await this.deps.store.updateAlert(id, change, this.deps.clock.now(), current.rev);
      if (updated) {
        await this.changed(op, updated);
        return updated;
      }
    }
    throw new PipelineItemConflict(`alert '${id}' keeps changing; retry`);
  }

  /**
   * The notification is appended without waiting for its commit, so judging the next record never waits on the
   * EventLog: appends keep the order they were made in, and `flush()` waits for all of them (the rules engine does
   * at the end of each batch, before its checkpoint moves).
   */
  private async changed(op: 'alertRaised' | 'alertAcknowledged' | 'alertCleared', a: AlertRecord): Promise<void> {
    for (const l of this.listeners) l(a);
    const appended: Promise<void> = this.deps.events.alert(op, { deviceId: a.deviceId, moduleId: a.moduleId }, alertView(a))
      .finally(() => this.pending.delete(appended));
    this.pending.add(appended);
  }

  private readonly pending = new Set<Promise<void>>();

  /** An operator's change: its notification is in the log when the call returns. */
  private async operatorChange(id: string, change: Parameters<Alerts['transition']>[1], op: Parameters<Alerts['transition']>[2]): Promise<AlertRecord> {
    const r = await this.transition(id, change, op);
    await this.flush();
    return r;
  }

  /** Waits until every notification made so far is in the EventLog (or its failure was reported). */
  async flush(): Promise<void> {
    await Promise.all([...this.pending]);
  }
}

/**
 * Which alerts are open, as this node last knew it: the rules engine asks it before each raise or clear, so a
 * message that changes nothing (almost all of them) costs no Store call. It is refreshed from the Store every
 * `refreshMs`, so changes made on other nodes are seen within that; knowing wrong only delays a raise or a clear
 * until then, since raise and clear are idempotent. At most `maxTracked` open alerts are known; past that,
 * `isOpen` answers undefined for the others and the caller asks the Store.
 */
export class OpenAlertIndex {
  private byRule = new Map<string, Set<string>>();
  private size = 0;
  private complete = false;
  private refreshedMs = -Infinity;

  constructor(private readonly store: PipelineStore, private readonly opts: { readonly refreshMs: number; readonly maxTracked: number }) {}

  /** True or false when known; undefined when the index overflowed and the Store must be asked. */
  isOpen(ruleName: string, key: IdentityKey): boolean | undefined {
    if (this.byRule.get(ruleName)?.has(identityKeyText(key))) return true;
    return this.complete ? false : undefined;
  }

  note(ruleName: string, key: IdentityKey, open: boolean): void {
    const text = identityKeyText(key);
    let set = this.byRule.get(ruleName);
    if (open) {
      if (set?.has(text)) return;
      if (this.size >= this.opts.maxTracked) { this.complete = false; return; }
      if (!set) { set = new Set(); this.byRule.set(ruleName, set); }
      set.add(text);
      this.size++;
    } else if (set?.delete(text)) {
      this.size--;
      if (set.size === 0) this.byRule.delete(ruleName);
    }
  }

  /** Rule names with at least one open alert, and the identities of one rule's open alerts. */
  ruleNames(): string[] {
    return [...this.byRule.keys()];
  }

  openKeys(ruleName: string): IdentityKey[] {
    return [...(this.byRule.get(ruleName) ?? [])].map((text) => {
      const [deviceId, moduleId] = text.split('\u0000');
      return { deviceId, moduleId };
    });
  }

  async refreshIfDue(nowMs: number): Promise<void> {
    if (nowMs - this.refreshedMs >= this.opts.refreshMs) await this.refresh(nowMs);
  }

  /** Reads every open alert again (keyset pages, newest first). */
  async refresh(nowMs: number): Promise<void> {
    const byRule = new Map<string, Set<string>>();
    let size = 0;
    let complete = true;
    let after: { raisedMs: number; id: string } | undefined;
    for (;;) {
      const page = await this.store.listAlerts({ open: true, limit: MAX_ALERT_PAGE, ...(after ? { after } : {}) });
      for (const a of page) {
        if (size >= this.opts.maxTracked) { complete = false; break; }
        let set = byRule.get(a.ruleName);
        if (!set) { set = new Set(); byRule.set(a.ruleName, set); }
        set.add(identityKeyText(a));
        size++;
      }
      if (!complete || page.length < MAX_ALERT_PAGE) break;
      const last = page[page.length - 1];
      after = { raisedMs: last.raisedMs, id: last.id };
    }
    this.byRule = byRule;
    this.size = size;
    this.complete = complete;
    this.refreshedMs = nowMs;
  }

  /** Follows an alert this node changed. */
  track(a: AlertRecord): void {
    this.note(a.ruleName, a, isOpen(a));
  }
}
