/**
 * Checked conditions evaluated in memory, with exactly the semantics the Store's SQL gives them
 * (ports/store/sql/query-expr.ts, checked against SQLite row for row in evaluate.test.ts): comparisons only within
 * one scalar JSON type, strings ordered bytewise (UTF-8, i.e. by code point), three-valued logic, and a match only
 * where the condition is `true`.
 */

import type { IdentityRecord, JsonValue } from '../../ports/store/index.js';
import type {
  ArithmeticOp, CompareOp, FieldRef, IdentityQueryColumn, QueryExpr, QueryFunction, ScalarValue, TelemetryDocs,
} from '../../ports/store/query.js';
import { valueAt } from './project.js';
import { orderSatisfies } from '../../ports/store/query.js';

/** A value as a condition sees it: JSON, or undefined (missing, or of types that made an expression undefined). */
type Value = JsonValue | undefined;
/** Three-valued truth: undefined is neither true nor false. */
type Truth = boolean | undefined;
type ScalarType = 'null' | 'boolean' | 'number' | 'string';

const TYPE_TESTS: Partial<Record<QueryFunction, (v: Value) => boolean>> = {
  IS_DEFINED: (v) => v !== undefined,
  IS_NULL: (v) => v === null,
  IS_BOOL: (v) => typeof v === 'boolean',
  IS_NUMBER: (v) => typeof v === 'number',
  IS_STRING: (v) => typeof v === 'string',
  IS_OBJECT: (v) => typeof v === 'object' && v !== null && !Array.isArray(v),
  IS_ARRAY: (v) => Array.isArray(v),
  IS_PRIMITIVE: (v) => scalarTypeOf(v) !== undefined,
};

function scalarTypeOf(v: Value): ScalarType | undefined {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'boolean': return 'boolean';
    case 'number': return 'number';
    case 'string': return 'string';
    default: return undefined;
  }
}

/**
 * UTF-16 units ranked as their code points order: a surrogate (half of a code point above U+FFFF) ranks above
 * U+E000–U+FFFF, so comparing ranked units orders well-formed strings as UTF-8 bytes do (SQLite's BINARY collation,
 * PostgreSQL's "C").
 */
function unitRank(unit: number): number {
  if (unit >= 0xe000) return unit - 0x800;
  return unit >= 0xd800 ? unit + 0x2000 : unit;
}

/** Negative, zero or positive as `a` sorts before, with or after `b`, bytewise in UTF-8. */
export function compareText(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return unitRank(x) - unitRank(y);
  }
  return a.length - b.length;
}

/** `a op b`: defined only when both have one scalar type; null equals null and is neither below nor above it. */
function compare(a: Value, op: CompareOp, b: Value): Truth {
  const type = scalarTypeOf(a);
  if (type === undefined || type !== scalarTypeOf(b)) return undefined;
  // NaN (only arithmetic makes one) is NULL in SQL: no comparison with it holds, nor its negation.
  if (Number.isNaN(a) || Number.isNaN(b)) return undefined;
  let order: number;
  if (type === 'null') order = 0;
  else if (type === 'string') order = compareText(a as string, b as string);
  else order = a === b ? 0 : Number(a) < Number(b) ? -1 : 1;
  if (type === 'null' && (op === '<' || op === '>' || op === '!=')) return false;
  return orderSatisfies(op, order);
}

/** AND and OR over three values, as Kleene's logic (and Cosmos DB) define them. */
function and(a: Truth, b: () => Truth): Truth {
  if (a === false) return false;
  const r = b();
  if (r === false) return false;
  return a === true && r === true ? true : undefined;
}

function or(a: Truth, b: () => Truth): Truth {
  if (a === true) return true;
  const r = b();
  if (r === true) return true;
  return a === false && r === false ? false : undefined;
}

/** `x IN [..]` is an OR of `x = v`; `x NIN [..]` an AND of `x != v` (so NOT IN, and never true for a mixed list). */
function inList(x: Value, values: readonly ScalarValue[], negated: boolean): Truth {
  let result: Truth = negated;
  for (const v of values) {
    const t = compare(x, negated ? '!=' : '=', v);
    if (t === !negated) return t;
    if (t === undefined) result = undefined;
  }
  return result;
}

function arithmetic(op: ArithmeticOp, a: Value, b: Value): Value {
  if (typeof a !== 'number' || typeof b !== 'number') return undefined;
  switch (op) {
    case '+': return a + b;
    case '-': return a - b;
    case '*': return a * b;
    // A zero divisor makes the result undefined; `%` is the remainder JavaScript and SQLite's mod() give.
    case '/': return b === 0 ? undefined : a / b;
    case '%': return b === 0 ? undefined : a % b;
  }
}

/** Case mapping of A–Z only: the one both engines share without ICU. */
const asciiLower = (s: string): string => s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
const asciiUpper = (s: string): string => s.replace(/[a-z]+/g, (m) => m.toUpperCase());

/** Length in code points, as both engines count characters. */
function codePointCount(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i += (s.codePointAt(i) ?? 0) > 0xffff ? 2 : 1) n++;
  return n;
}

class Evaluator<F> {
  constructor(private readonly resolve: (field: F) => Value) {}

  truth(e: QueryExpr<F>): Truth {
    switch (e.kind) {
      case 'and': return and(this.truth(e.left), () => this.truth(e.right));
      case 'or': return or(this.truth(e.left), () => this.truth(e.right));
      case 'not': {
        const t = this.truth(e.operand);
        return t === undefined ? undefined : !t;
      }
      case 'compare': return compare(this.value(e.left), e.op, this.value(e.right));
      case 'in': return inList(this.value(e.operand), e.values, e.negated);
      case 'call':
        if (e.fn !== 'LOWER' && e.fn !== 'UPPER' && e.fn !== 'LENGTH') return this.callTruth(e.fn, e.args);
        break;
      default:
        break;
    }
    // A value standing as a condition is true or false only when it is a boolean.
    const v = this.value(e);
    return typeof v === 'boolean' ? v : undefined;
  }

  value(e: QueryExpr<F>): Value {
    switch (e.kind) {
      case 'literal': return e.value;
      case 'field': return this.resolve(e.field);
      case 'arithmetic': return arithmetic(e.op, this.value(e.left), this.value(e.right));
      case 'call': {
        if (e.fn !== 'LOWER' && e.fn !== 'UPPER' && e.fn !== 'LENGTH') return this.truth(e);
        const text = this.value(e.args[0]);
        if (typeof text !== 'string') return undefined;
        return e.fn === 'LENGTH' ? codePointCount(text) : e.fn === 'LOWER' ? asciiLower(text) : asciiUpper(text);
      }
      case 'compare':
      case 'and':
      case 'or':
      case 'not':
      case 'in':
        return this.truth(e);
    }
  }

  private callTruth(fn: QueryFunction, args: readonly QueryExpr<F>[]): Truth {
    const typeTest = TYPE_TESTS[fn];
    if (typeTest !== undefined) return typeTest(this.value(args[0]));
    const [a, b] = args.map((arg) => this.value(arg));
    switch (fn) {
      case 'STARTSWITH':
      case 'ENDSWITH':
      case 'CONTAINS': {
        if (typeof a !== 'string' || typeof b !== 'string') return undefined;
        return fn === 'STARTSWITH' ? a.startsWith(b) : fn === 'ENDSWITH' ? a.endsWith(b) : a.includes(b);
      }
      case 'ARRAY_CONTAINS':
        // An element equal in type and value: === on scalars is exactly that (1 and 1.0 are one number).
        if (!Array.isArray(a) || scalarTypeOf(b) === undefined) return undefined;
        return a.some((element) => element === b);
      default:
        throw new Error(`${fn} is not a condition`);
    }
  }
}

/**
 * Whether `expr` is true where `resolve` gives each field's value (undefined for a missing one): false for false
 * and for undefined, as a Store's WHERE. Throws only what `resolve` throws.
 */
export function evaluateCondition<F>(expr: QueryExpr<F>, resolve: (field: F) => JsonValue | undefined): boolean {
  return new Evaluator(resolve).truth(expr) === true;
}

/** The identity columns a condition reads, from a record (the twin's names for the record's fields). */
const COLUMN_VALUES: Readonly<Record<IdentityQueryColumn, (r: IdentityRecord) => JsonValue>> = {
  deviceId: (r) => r.deviceId,
  moduleId: (r) => r.moduleId,
  status: (r) => r.status,
  statusReason: (r) => r.statusReason,
  statusUpdateTime: (r) => r.statusUpdatedTime,
  connectionState: (r) => r.connectionState,
  connectionStateUpdatedTime: (r) => r.connectionStateUpdatedTime,
  lastActivityTime: (r) => r.lastActivityTime,
  authenticationType: (r) => r.authType,
  modelId: (r) => r.modelId,
  deviceEtag: (r) => r.etag,
  cloudToDeviceMessageCount: (r) => r.c2dCount,
  version: (r) => r.twin.version,
  desiredVersion: (r) => r.twin.desiredVersion,
  reportedVersion: (r) => r.twin.reportedVersion,
  iotEdge: (r) => r.iotEdge,
  primaryThumbprint: (r) => r.primaryThumbprint,
  secondaryThumbprint: (r) => r.secondaryThumbprint,
};

function documentOf(field: Extract<FieldRef, { kind: 'document' }>, r: IdentityRecord, telemetry: TelemetryDocs | undefined): unknown {
  switch (field.document) {
    case 'tags': return r.twin.tags;
    case 'desired': return r.twin.desired;
    case 'reported': return r.twin.reported;
    case 'desiredMeta': return r.twin.desiredMeta;
    case 'reportedMeta': return r.twin.reportedMeta;
    case 'telemetry': return telemetry?.values;
    case 'telemetryMeta': return telemetry?.meta;
  }
}

/**
 * Whether a `devices` (or `devices.modules`) condition holds for `record`, as the Store's query would decide it for
 * that row. `telemetry` is the device's last-known telemetry (a DeviceStateRecord fits); without it every
 * `telemetry.*` path is undefined, as for a device that never sent any. The record's moduleId is not checked: a
 * module's record is judged as `devices.modules` would. Throws Error for a job column (not a field of a device).
 */
export function evaluateDeviceCondition(expr: QueryExpr, record: IdentityRecord, telemetry?: TelemetryDocs): boolean {
  return evaluateCondition(expr, (field) => {
    switch (field.kind) {
      case 'column': return COLUMN_VALUES[field.column](record);
      case 'document': return valueAt(documentOf(field, record, telemetry), field.path) as Value;
      case 'jobColumn': throw new Error(`a device has no job column ${field.column}`);
    }
  });
}
