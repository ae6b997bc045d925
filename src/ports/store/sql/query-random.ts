import { and, arith, call, cmp, col, doc, isIn, lit, nin, not, or, rows, tag } from '../contract-query-data.js';
import { aggregate, ordered } from '../contract-query-pages.js';
import type { ArithmeticOp, CompareOp, QueryExpr, QueryFunction, QueryPlan, ScalarValue } from '../query.js';

/**
 * Random plans over the query contract's registry (contract-query-data.ts), for differential tests: the engines
 * against each other (query-engines.test.ts) and core's in-memory evaluation against an engine
 * (core/query/evaluate.test.ts). Seeded, so a failure names a plan that fails again.
 */

export const RANDOM_FIELDS: readonly QueryExpr[] = [
  tag('v'), tag('s'), tag('arr'), tag('loc', 'city'), tag('g'), tag('name'), doc('reported', 'fw'), doc('reported', 'temp'),
  col('status'), col('statusReason'), col('cloudToDeviceMessageCount'), col('iotEdge'), col('deviceId'), col('version'),
];
const LITERALS: readonly (ScalarValue | undefined)[] = [10, '10', true, false, null, 0, 'abc', '', 5.5, -3, 'Hello', 'h', 'd1', 2, undefined];
const OPS: readonly CompareOp[] = ['=', '!=', '<', '<=', '>', '>='];
const ARITHMETIC: readonly ArithmeticOp[] = ['+', '-', '*', '/', '%'];
const TESTS: readonly QueryFunction[] = ['IS_DEFINED', 'IS_NULL', 'IS_BOOL', 'IS_NUMBER', 'IS_STRING', 'IS_OBJECT', 'IS_ARRAY', 'IS_PRIMITIVE'];
const STRING_TESTS: readonly QueryFunction[] = ['STARTSWITH', 'ENDSWITH', 'CONTAINS'];

/** mulberry32: a small seeded generator. */
export function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface RandomPlans {
  /** A condition over `fields` (and literals), up to three levels deep. */
  condition(): QueryExpr;
  /** A row select, an ordered select or a grouped aggregate, over devices or (one in ten) modules. */
  plan(): QueryPlan;
}

export function randomPlans(next: () => number, fields: readonly QueryExpr[] = RANDOM_FIELDS, literals = LITERALS): RandomPlans {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)];
  const scalar = (): ScalarValue => pick(literals.filter((v): v is ScalarValue => v !== undefined));
  const value = (depth: number): QueryExpr => {
    const r = next();
    if (r < 0.45) return pick(fields);
    if (r < 0.7 || depth > 1) return lit(pick(literals));
    if (r < 0.85) return arith(pick(fields), pick(ARITHMETIC), value(depth + 1));
    return call(pick(['LOWER', 'UPPER', 'LENGTH'] as const), pick(fields));
  };
  const condition = (depth: number): QueryExpr => {
    const r = next();
    if (depth < 2 && r < 0.3) return pick([and, or])(condition(depth + 1), condition(depth + 1));
    if (depth < 3 && r < 0.4) return not(condition(depth + 1));
    if (r < 0.65) return cmp(value(depth), pick(OPS), value(depth));
    if (r < 0.75) return (next() < 0.5 ? isIn : nin)(pick(fields), [scalar(), ...(next() < 0.5 ? [scalar()] : [])]);
    if (r < 0.85) return call(pick(TESTS), value(depth));
    if (r < 0.93) return call(pick(STRING_TESTS), pick(fields), lit(pick(literals)));
    if (r < 0.97) return call('ARRAY_CONTAINS', pick([tag('arr'), tag('v')]), scalar());
    return pick(fields);
  };
  const plan = (): QueryPlan => {
    const where = condition(0);
    const r = next();
    if (r < 0.5) return rows(where, next() < 0.9 ? 'devices' : 'modules');
    if (r < 0.85) return ordered([[pick(fields), next() < 0.5 ? 'asc' : 'desc'], ...(next() < 0.5 ? [[pick(fields), 'desc'] as [QueryExpr, 'desc']] : [])], where);
    const key = pick(fields);
    if (key.kind !== 'field') throw new Error('fields are fields');
    return aggregate([{ kind: 'group', field: key.field, alias: 'k' }, { kind: 'aggregate', aggregate: 'count', alias: 'n' },
      { kind: 'aggregate', aggregate: pick(['sum', 'min', 'max'] as const), field: { kind: 'document', document: 'reported', path: ['temp'] }, alias: 'x' }], [key], where);
  };
  return { condition: () => condition(0), plan };
}
