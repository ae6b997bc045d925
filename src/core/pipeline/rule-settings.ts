/**
 * Rule settings: the documents `PUT /corral/v1/rules/{name}` takes, checked strictly (an unknown field or a bad
 * value is refused naming the field), stored with their defaults, and compiled once per settings snapshot.
 *
 * ```json
 * {"type": "threshold", "condition": "$body.temperature > 30", "clearCondition": "$body.temperature < 28"}
 * {"type": "window", "field": "$body.temperature", "aggregate": "avg", "window": {"kind": "tumbling", "seconds": 60},
 *  "operator": ">", "threshold": 30, "filter": "$body.unit = 'C'"}
 * {"type": "absence", "seconds": 120}
 * {"type": "twin", "condition": "properties.reported.battery < 10"}
 * ```
 * A window's `field` is optional for `count` (then every record passing `filter` counts). Every type also takes
 * `severity` (critical, error, warning, info; default warning), `enabled` (default true), `description`, and
 * `scope`: a condition over the sender's twin (`tags.site = 'lyon'`; a module's own twin for a module's records)
 * limiting the identities the rule watches.
 *
 * It also holds how a compiled rule judges one record; the engine (rules.ts) keeps what lasts between records.
 */

import { ArgumentInvalid } from '../errors/index.js';
import {
  evaluateDeviceCondition, evaluateMessageCondition, parseBodyPath, parseCondition, parseMessageCondition, readBodyNumber,
  type MessageCondition, type MessageFacts,
} from '../query/index.js';
import { isoTime } from '../../ports/clock/index.js';
import type { IdentityRecord, JsonObject, QueryExpr } from '../../ports/store/index.js';
import type { AlertSeverity, SettingRecord } from '../../ports/store/pipeline.js';
import { ALERT_SEVERITIES } from './alerts.js';
import type { PipelineMessage } from './message.js';
import { objectBody, onlyFields } from './settings.js';
import { COMPARISONS, WINDOW_AGGREGATES, WINDOW_KINDS, type Comparison, type WindowAggregate, type WindowKind } from './windows.js';

export type RuleType = 'threshold' | 'window' | 'absence' | 'twin';
export const RULE_TYPES: readonly RuleType[] = ['threshold', 'window', 'absence', 'twin'];

const COMMON = ['type', 'description', 'severity', 'enabled', 'scope'];
const FIELDS: Readonly<Record<RuleType, readonly string[]>> = {
  threshold: [...COMMON, 'condition', 'clearCondition'],
  window: [...COMMON, 'field', 'aggregate', 'window', 'operator', 'threshold', 'filter'],
  absence: [...COMMON, 'seconds'],
  twin: [...COMMON, 'condition'],
};

/** A window spans 1 s to a day; an absence, 1 s to 30 days. */
const MAX_WINDOW_SECONDS = 86_400;
const MAX_ABSENCE_SECONDS = 30 * 86_400;
const MAX_DESCRIPTION = 1024;

interface RuleBase {
  readonly name: string;
  readonly rev: number;
  readonly updatedMs: number;
  readonly severity: AlertSeverity;
  readonly enabled: boolean;
  readonly scope?: QueryExpr;
}

export interface ThresholdRule extends RuleBase {
  readonly type: 'threshold';
  readonly conditionText: string;
  readonly condition: MessageCondition;
  readonly clearCondition?: MessageCondition;
}

export interface WindowRule extends RuleBase {
  readonly type: 'window';
  /** The number's path in the body (records without a number there are not counted); absent for a count of records. */
  readonly field?: readonly string[];
  readonly fieldText?: string;
  readonly aggregate: WindowAggregate;
  readonly window: { readonly kind: WindowKind; readonly seconds: number };
  readonly operator: Comparison;
  readonly threshold: number;
  readonly filter?: MessageCondition;
}

export interface AbsenceRule extends RuleBase {
  readonly type: 'absence';
  readonly seconds: number;
}

export interface TwinRule extends RuleBase {
  readonly type: 'twin';
  readonly conditionText: string;
  readonly condition: QueryExpr;
}

export type CompiledRule = ThresholdRule | WindowRule | AbsenceRule | TwinRule;

/** What each field must be, named in the message. */
class RuleFields {
  constructor(readonly name: string, readonly doc: Record<string, unknown>) {}

  fail(field: string, must: string, value: unknown = this.doc[field]): never {
    throw new ArgumentInvalid(`rule '${this.name}': ${field} must be ${must}, got ${value === undefined ? 'nothing' : JSON.stringify(value)}`);
  }

  oneOf<T extends string>(field: string, allowed: readonly T[], fallback?: T, value: unknown = this.doc[field]): T {
    if (value === undefined && fallback !== undefined) return fallback;
    if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) this.fail(field, `one of ${allowed.join(', ')}`, value);
    return value as T;
  }

  integer(field: string, min: number, max: number, value: unknown = this.doc[field]): number {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) this.fail(field, `an integer from ${min} to ${max}`, value);
    return value;
  }

  text(field: string, required: boolean): string | undefined {
    const value = this.doc[field];
    if (value === undefined && !required) return undefined;
    if (typeof value !== 'string' || value.trim() === '') this.fail(field, 'a non-empty string');
    return value;
  }

  /** A condition in the routing query language ($body, $twin, application and system properties). */
  messageCondition(field: string, required: boolean): { text: string; condition: MessageCondition } | undefined {
    const text = this.text(field, required);
    if (text === undefined) return undefined;
    return { text, condition: this.parse(field, () => parseMessageCondition(text)) };
  }

  /** A condition over the device's twin, as a job's queryCondition. */
  deviceCondition(field: string, required: boolean): { text: string; condition: QueryExpr } | undefined {
    const text = this.text(field, required);
    if (text === undefined) return undefined;
    const condition = this.parse(field, () => parseCondition(text));
    if (readsTelemetry(condition)) {
      throw new ArgumentInvalid(`rule '${this.name}': ${field} reads telemetry.*; a twin condition reads the twin only (use a threshold or window rule for telemetry)`);
    }
    return { text, condition };
  }

  parse<T>(field: string, parse: () => T): T {
    try {
      return parse();
    } catch (err) {
      if (err instanceof ArgumentInvalid) throw new ArgumentInvalid(`rule '${this.name}': ${field}: ${err.message}`);
      throw err;
    }
  }
}

function readsTelemetry(e: QueryExpr): boolean {
  switch (e.kind) {
    case 'literal': return false;
    case 'field': return e.field.kind === 'document' && (e.field.document === 'telemetry' || e.field.document === 'telemetryMeta');
    case 'compare': case 'arithmetic': case 'and': case 'or': return readsTelemetry(e.left) || readsTelemetry(e.right);
    case 'not': return readsTelemetry(e.operand);
    case 'in': return readsTelemetry(e.operand);
    case 'call': return e.args.some(readsTelemetry);
  }
}

/** A rule as its document defines it, without what the stored record adds. */
type RuleDefinition = CompiledRule extends infer R ? R extends CompiledRule ? Omit<R, 'name' | 'rev' | 'updatedMs'> : never : never;
type Parsed = { readonly doc: JsonObject; readonly rule: RuleDefinition };

/** Checks a rule document; returns it as stored (defaults filled in) and compiled. Throws ArgumentInvalid naming the field. */
export function parseRule(name: string, body: unknown): Parsed {
  const f: RuleFields = new RuleFields(name, objectBody(body, `rule '${name}'`));
  const type = f.oneOf('type', RULE_TYPES);
  onlyFields(f.doc, FIELDS[type], `rule '${name}' (${type})`);
  const description = f.text('description', false);
  if (description !== undefined && description.length > MAX_DESCRIPTION) f.fail('description', `at most ${MAX_DESCRIPTION} characters long`, `${description.slice(0, 40)}…`);
  const severity = f.oneOf('severity', ALERT_SEVERITIES, 'warning');
  const enabled: unknown = f.doc.enabled ?? true;
  if (typeof enabled !== 'boolean') f.fail('enabled', 'true or false');
  const scope = f.deviceCondition('scope', false);
  const doc: JsonObject = { type, ...(description !== undefined ? { description } : {}), severity, enabled, ...(scope ? { scope: scope.text } : {}) };
  const base = { severity, enabled, ...(scope ? { scope: scope.condition } : {}) };
  switch (type) {
    case 'threshold': {
      const condition = f.messageCondition('condition', true)!; // required: defined or thrown
      const clear = f.messageCondition('clearCondition', false);
      return {
        doc: { ...doc, condition: condition.text, ...(clear ? { clearCondition: clear.text } : {}) },
        rule: { ...base, type, conditionText: condition.text, condition: condition.condition, ...(clear ? { clearCondition: clear.condition } : {}) },
      };
    }
    case 'window': return parseWindow(f, doc, base);
    case 'absence': {
      const seconds = f.integer('seconds', 1, MAX_ABSENCE_SECONDS);
      return { doc: { ...doc, seconds }, rule: { ...base, type, seconds } };
    }
    case 'twin': {
      const condition = f.deviceCondition('condition', true)!; // required: defined or thrown
      return { doc: { ...doc, condition: condition.text }, rule: { ...base, type, conditionText: condition.text, condition: condition.condition } };
    }
  }
}

function parseWindow(f: RuleFields, doc: JsonObject, base: Pick<RuleBase, 'severity' | 'enabled' | 'scope'>): Parsed {
  const aggregate = f.oneOf('aggregate', WINDOW_AGGREGATES);
  const fieldText = f.text('field', aggregate !== 'count');
  const field = fieldText === undefined ? undefined : f.parse('field', () => parseBodyPath(fieldText));
  const w = f.doc.window;
  if (typeof w !== 'object' || w === null || Array.isArray(w)) f.fail('window', '{"kind": "tumbling" | "sliding", "seconds": N}');
  const wDoc = w as Record<string, unknown>;
  for (const k of Object.keys(wDoc)) if (k !== 'kind' && k !== 'seconds') f.fail('window', 'an object with kind and seconds only', `window.${k}`);
  const window = { kind: f.oneOf('window.kind', WINDOW_KINDS, undefined, wDoc.kind), seconds: f.integer('window.seconds', 1, MAX_WINDOW_SECONDS, wDoc.seconds) };
  const operator = f.oneOf('operator', COMPARISONS);
  const threshold = f.doc.threshold;
  if (typeof threshold !== 'number' || !Number.isFinite(threshold)) f.fail('threshold', 'a number');
  const filter = f.messageCondition('filter', false);
  return {
    doc: { ...doc, ...(fieldText !== undefined ? { field: fieldText } : {}), aggregate, window, operator, threshold, ...(filter ? { filter: filter.text } : {}) },
    rule: {
      ...base, type: 'window', ...(field ? { field, fieldText } : {}), aggregate, window, operator, threshold,
      ...(filter ? { filter: filter.condition } : {}),
    },
  };
}

/** The rule setting's validator, for `settings.register('rule', ruleValidator)`. */
export function ruleValidator(name: string, body: unknown): JsonObject {
  return parseRule(name, body).doc;
}

/** A stored rule, compiled (throws ArgumentInvalid when it no longer checks). */
export function compileRule(r: SettingRecord): CompiledRule {
  const { rule } = parseRule(r.name, r.doc);
  return { ...rule, name: r.name, rev: r.rev, updatedMs: r.updatedMs } as CompiledRule;
}

const BODY_IN_DETAILS_MAX = 1024;

/** Whether the identity is one the rule watches (no scope: every one; a scope needs the twin). */
export function inScope(rule: CompiledRule, twin: IdentityRecord | undefined): boolean {
  if (!rule.scope) return true;
  return twin !== undefined && evaluateDeviceCondition(rule.scope, twin);
}

/** true raises, false clears, undefined leaves the alert as it is (out of scope, or between condition and clearCondition). */
export function judgeThreshold(rule: ThresholdRule, twin: IdentityRecord | undefined, facts: () => MessageFacts): boolean | undefined {
  if (!inScope(rule, twin)) return undefined;
  if (evaluateMessageCondition(rule.condition, facts())) return true;
  if (!rule.clearCondition) return false;
  return evaluateMessageCondition(rule.clearCondition, facts()) ? false : undefined;
}

/** The record's number for a window rule (1 for a count of records), or undefined when it does not count. */
export function windowSample(rule: WindowRule, twin: IdentityRecord | undefined, m: PipelineMessage, facts: () => MessageFacts): number | undefined {
  if (!inScope(rule, twin)) return undefined;
  if (rule.filter && !evaluateMessageCondition(rule.filter, facts())) return undefined;
  return rule.field ? readBodyNumber(m.json, rule.field) : 1;
}

/** Where the record is in the log, and its body when small. */
export function recordDetails(m: PipelineMessage): JsonObject {
  const e = m.event;
  const out: JsonObject = { partition: m.partition, sequenceNumber: e.sequence, enqueuedTime: isoTime(e.enqueuedTimeMs) };
  const body = m.json;
  if (body !== undefined && JSON.stringify(body).length <= BODY_IN_DETAILS_MAX) out.body = body;
  return out;
}
