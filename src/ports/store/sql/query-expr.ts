import type { CompareOp, QueryExpr, QueryFunction, ScalarValue } from '../query.js';
import { orderSatisfies } from '../query.js';
import {
  FALSE, JSON_TYPES, SCALAR_TYPES, SQL_OPS, TRUE, sqlAnd, sqlNotTrue, sqlOr,
  type JsonType, type ScalarType,
} from './query-dialect.js';
import {
  arithmeticVal, derivedVal, fieldVal, literalVal, scalarType, stringFunctionVal,
  type QueryContext, type Val,
} from './query-values.js';

/**
 * The expression half of the visitor. Conditions compile in negation normal form: NOT is pushed down to the atoms
 * (NOT (a AND b) = NOT a OR NOT b; NOT x = 1 is x != 1 under the same type guard), so each atom is SQL-true exactly
 * when IoT Hub's three-valued logic says true, and SQL's own NULL logic never decides a match.
 */

/** The comparison true exactly when `op` is false, both sides being of one type. */
const NEGATED: Readonly<Record<CompareOp, CompareOp>> = { '=': '!=', '!=': '=', '<': '>=', '<=': '>', '>': '<=', '>=': '<' };
/** `a op b` is `b FLIPPED[op] a`. */
const FLIPPED: Readonly<Record<CompareOp, CompareOp>> = { '=': '=', '!=': '!=', '<': '>', '<=': '>=', '>': '<', '>=': '<=' };

/** The type tests, which are never undefined: IS_STRING of a number or of a missing property is false. */
const TYPE_TESTS: Partial<Record<QueryFunction, readonly JsonType[]>> = {
  IS_DEFINED: JSON_TYPES, IS_NULL: ['null'], IS_BOOL: ['boolean'], IS_NUMBER: ['number'], IS_STRING: ['string'],
  IS_OBJECT: ['object'], IS_ARRAY: ['array'], IS_PRIMITIVE: SCALAR_TYPES,
};

/** SQL true exactly when `e` (with `negated`, NOT e) is true for the row. */
export function condition(ctx: QueryContext, e: QueryExpr, negated = false): string {
  switch (e.kind) {
    case 'and':
    case 'or': {
      const terms = [condition(ctx, e.left, negated), condition(ctx, e.right, negated)];
      return (e.kind === 'and') !== negated ? sqlAnd(terms) : sqlOr(terms);
    }
    case 'not':
      return condition(ctx, e.operand, !negated);
    case 'compare':
      return compareVals(ctx, valueOf(ctx, e.left), negated ? NEGATED[e.op] : e.op, valueOf(ctx, e.right));
    case 'in':
      return inList(ctx, valueOf(ctx, e.operand), e.values, e.negated !== negated);
    case 'call':
      if (e.fn !== 'LOWER' && e.fn !== 'UPPER' && e.fn !== 'LENGTH') return callCondition(ctx, e.fn, e.args, negated);
      break;
    default:
      break;
  }
  // A value standing as a condition holds when it is the boolean true; its NOT, when it is false.
  return compareVals(ctx, valueOf(ctx, e), '=', literalVal(ctx, !negated));
}

/** What an expression evaluates to; a condition used as a value is a boolean, undefined where it is. */
export function valueOf(ctx: QueryContext, e: QueryExpr): Val {
  switch (e.kind) {
    case 'literal': return literalVal(ctx, e.value);
    case 'field': return fieldVal(ctx, e.field);
    case 'arithmetic': return arithmeticVal(ctx, e.op, valueOf(ctx, e.left), valueOf(ctx, e.right));
    case 'call':
      if (e.fn === 'LOWER' || e.fn === 'UPPER' || e.fn === 'LENGTH') return stringFunctionVal(ctx, e.fn, valueOf(ctx, e.args[0]));
      return booleanVal(ctx, e);
    case 'compare':
    case 'and':
    case 'or':
    case 'not':
    case 'in':
      return booleanVal(ctx, e);
  }
}

function booleanVal(ctx: QueryContext, e: QueryExpr): Val {
  const yes = condition(ctx, e, false);
  const no = condition(ctx, e, true);
  const { trueSql, falseSql } = ctx.dialect;
  return derivedVal('boolean', sqlOr([yes, no]), `CASE WHEN ${yes} THEN ${trueSql} WHEN ${no} THEN ${falseSql} END`);
}

/** `left op right`: true only when both have one scalar type and the comparison holds (`!=` included). */
export function compareVals(ctx: QueryContext, left: Val, op: CompareOp, right: Val): string {
  if (right.doc && left.literal) return compareVals(ctx, right, FLIPPED[op], left);
  if (left.literal && right.literal) return compareLiterals(left.literal.value, op, right.literal.value) ? TRUE : FALSE;
  if (left.doc && right.literal) {
    const own = ctx.dialect.compareDocLiteral(left.doc, op, right.literal.value, ctx.params);
    if (own !== undefined) return own;
  }
  const shared = SCALAR_TYPES.filter((t) => left.types.includes(t) && right.types.includes(t));
  return sqlOr(shared.map((t) => compareAs(ctx, t, left, op, right)));
}

function compareAs(ctx: QueryContext, type: ScalarType, left: Val, op: CompareOp, right: Val): string {
  let test: string;
  if (type === 'null') test = op === '=' || op === '<=' || op === '>=' ? TRUE : FALSE;
  else if (type === 'string') test = ctx.dialect.compareText(left.sql(type), op, right.sql(type));
  else test = `${left.sql(type)} ${SQL_OPS[op]} ${right.sql(type)}`;
  // The value test first: it is the term an index on the expression serves; the type guards follow.
  return test === FALSE ? FALSE : sqlAnd([test, left.is([type]), right.is([type])]);
}

/** Both literals: decided here, strings bytewise (UTF-8) as the engines compare them. */
function compareLiterals(a: ScalarValue, op: CompareOp, b: ScalarValue): boolean {
  if (scalarType(a) !== scalarType(b)) return false;
  const order = literalOrder(a, b);
  return orderSatisfies(op, order);
}

/** Two literals of one type: strings bytewise, numbers and booleans (false < true) by value; null equals null. */
function literalOrder(a: ScalarValue, b: ScalarValue): number {
  if (typeof a === 'string' && typeof b === 'string') return Buffer.compare(Buffer.from(a), Buffer.from(b));
  if (a === b) return 0;
  return Number(a) < Number(b) ? -1 : 1;
}

/**
 * `x IN [..]` is an OR of `x = v`; `x NIN [..]` is NOT IN, an AND of `x != v`, so it holds only for a value of the
 * list's one type that is none of them: a missing value, a value of another type, or a list mixing types (some
 * `!=` then undefined) never matches.
 */
function inList(ctx: QueryContext, x: Val, values: readonly ScalarValue[], negated: boolean): string {
  if (x.doc) {
    const own = ctx.dialect.docInLiterals(x.doc, values, negated, ctx.params);
    if (own !== undefined) return own;
  }
  const listTypes = [...new Set(values.map(scalarType))];
  if (negated && (listTypes.length !== 1 || listTypes[0] === 'null')) return FALSE;
  const terms = listTypes.filter((t) => x.types.includes(t)).map((t) => {
    if (t === 'null') return x.is(['null']);
    const bound = values.filter((v) => scalarType(v) === t).map((v) => literalVal(ctx, v).sql(t));
    return sqlAnd([`${x.sql(t)} ${negated ? 'NOT IN' : 'IN'} (${bound.join(', ')})`, x.is([t])]);
  });
  return sqlOr(terms);
}

function callCondition(ctx: QueryContext, fn: QueryFunction, args: readonly QueryExpr[], negated: boolean): string {
  const tested = TYPE_TESTS[fn];
  if (tested !== undefined) {
    const x = valueOf(ctx, args[0]);
    const test = x.is(tested.filter((t) => x.types.includes(t)));
    return negated ? sqlNotTrue(test) : test;
  }
  if (fn === 'ARRAY_CONTAINS') return arrayContains(ctx, valueOf(ctx, args[0]), valueOf(ctx, args[1]), negated);
  if (fn === 'STARTSWITH' || fn === 'ENDSWITH' || fn === 'CONTAINS') return stringTest(ctx, fn, args, negated);
  throw new Error(`${fn} is not a condition`);
}

/** STARTSWITH, ENDSWITH, CONTAINS: case-sensitive, undefined unless both arguments are strings. */
function stringTest(ctx: QueryContext, fn: 'STARTSWITH' | 'ENDSWITH' | 'CONTAINS', args: readonly QueryExpr[], negated: boolean): string {
  const [text, part] = args.map((a) => valueOf(ctx, a));
  if (!text.types.includes('string') || !part.types.includes('string')) return FALSE;
  const d = ctx.dialect;
  const a = text.sql('string');
  const b = part.sql('string');
  const test = fn === 'STARTSWITH' ? d.startsWith(a, b) : fn === 'ENDSWITH' ? d.endsWith(a, b) : d.contains(a, b);
  return sqlAnd([negated ? `NOT (${test})` : test, text.is(['string']), part.is(['string'])]);
}

/** ARRAY_CONTAINS(field, literal): undefined unless the field is an array (a column never is). */
function arrayContains(ctx: QueryContext, array: Val, item: Val, negated: boolean): string {
  if (!array.doc || !item.literal) return FALSE;
  const test = ctx.dialect.arrayContains(array.doc, item.literal.value, ctx.params);
  return sqlAnd([negated ? `NOT (${test})` : test, array.is(['array'])]);
}
