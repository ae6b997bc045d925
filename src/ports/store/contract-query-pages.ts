import { col, doc, eq, jobCol, rows, tag, call, lit } from './contract-query-data.js';
import type { JsonObject } from './index.js';
import type { FieldRef, OrderKey, QueryCollection, QueryExpr, QueryPlan, SelectItem } from './query.js';

/** Aggregate and ordering cases over the seeded registry: the plan and its whole answer, in order. */

const field = (e: QueryExpr): FieldRef => {
  if (e.kind !== 'field') throw new Error('a field expression was expected');
  return e.field;
};
const group = (e: QueryExpr, alias: string): SelectItem => ({ kind: 'group', field: field(e), alias });
const count = (alias = 'n'): SelectItem => ({ kind: 'aggregate', aggregate: 'count', alias });
const agg = (aggregate: 'sum' | 'avg' | 'min' | 'max', e: QueryExpr, alias: string): SelectItem =>
  ({ kind: 'aggregate', aggregate, field: field(e), alias });

const zoo = eq(tag('g'), 'zoo');

export function aggregate(items: SelectItem[], groupBy: QueryExpr[] = [], where?: QueryExpr, collection: QueryCollection = 'devices'): QueryPlan {
  return {
    collection, select: { kind: 'aggregate', items }, ...(where && { where }),
    ...(groupBy.length > 0 && { groupBy: groupBy.map(field) }),
  };
}

export function ordered(keys: [QueryExpr, 'asc' | 'desc'][], where?: QueryExpr, collection: QueryCollection = 'devices'): QueryPlan {
  const orderBy: OrderKey[] = keys.map(([e, dir]) => ({ field: field(e), descending: dir === 'desc' }));
  return { ...rows(where, collection), orderBy };
}

export type AggregateCase = readonly [name: string, plan: QueryPlan, rows: readonly JsonObject[]];

const temp = doc('reported', 'temp');
const fw = doc('reported', 'fw');

export const AGGREGATE_CASES: readonly AggregateCase[] = [
  ['COUNT() over the devices', aggregate([count()]), [{ n: 34 }]],
  ['COUNT() with a condition', aggregate([count()], [], zoo), [{ n: 16 }]],
  ['COUNT() where nothing matches still gives one row', aggregate([count()], [], eq(tag('v'), 'nope')), [{ n: 0 }]],
  ['COUNT() over the modules', aggregate([count()], [], undefined, 'modules'), [{ n: 6 }]],
  ['SUM, AVG, MIN, MAX read numbers only (a string "25" and true are left out)',
    aggregate([agg('sum', temp, 'sum'), agg('avg', temp, 'avg'), agg('min', temp, 'min'), agg('max', temp, 'max')]),
    [{ sum: 96, avg: 24, min: 20, max: 30 }]],
  ['an aggregate over no numbers is null', aggregate([agg('sum', tag('s'), 'sum'), agg('max', col('status'), 'max')]), [{ sum: null, max: null }]],
  ['aggregates over number columns', aggregate([agg('sum', col('cloudToDeviceMessageCount'), 'c2d'), agg('max', col('version'), 'v'), agg('min', col('version'), 'low')]),
    [{ c2d: 4, v: 7, low: 1 }]],
  ['GROUP BY a reported path, the missing group first and without the key',
    aggregate([group(fw, 'fw'), count()], [fw]),
    [{ n: 26 }, { fw: null, n: 1 }, { fw: true, n: 1 }, { fw: 2, n: 1 }, { fw: '1.0', n: 3 }, { fw: '2.0', n: 2 }]],
  ['GROUP BY with SUM per group',
    aggregate([group(fw, 'fw'), agg('sum', temp, 'total')], [fw]),
    [{ total: null }, { fw: null, total: null }, { fw: true, total: null }, { fw: 2, total: null }, { fw: '1.0', total: 66 }, { fw: '2.0', total: 30 }]],
  ['GROUP BY a column', aggregate([group(col('status'), 'status'), count()], [col('status')]),
    [{ status: 'disabled', n: 2 }, { status: 'enabled', n: 32 }]],
  ['GROUP BY two fields', aggregate([group(col('status'), 'status'), group(col('iotEdge'), 'edge'), count()], [col('status'), col('iotEdge')]),
    [{ status: 'disabled', edge: false, n: 2 }, { status: 'enabled', edge: false, n: 30 }, { status: 'enabled', edge: true, n: 2 }]],
  ['GROUP BY a nullable column', aggregate([group(col('statusReason'), 'reason'), count()], [col('statusReason')]),
    [{ reason: null, n: 33 }, { reason: 'maintenance', n: 1 }]],
  ['GROUP BY over every JSON type, in type order then value order',
    aggregate([group(tag('v'), 'v'), count()], [tag('v')], zoo),
    [{ n: 1 }, { v: null, n: 1 }, { v: false, n: 1 }, { v: true, n: 1 }, { v: -3, n: 1 }, { v: 0, n: 1 }, { v: 5.5, n: 1 },
      { v: 10, n: 2 }, { v: '', n: 1 }, { v: '10', n: 1 }, { v: 'ABC', n: 1 }, { v: 'abc', n: 2 }, { v: [10], n: 1 }, { v: { x: 10 }, n: 1 }]],
  ['GROUP BY without the group in the select', aggregate([count()], [col('status')]), [{ n: 2 }, { n: 32 }]],
  ['GROUP BY over devices.jobs', aggregate([group(jobCol('status'), 'status'), count()], [jobCol('status')], undefined, 'jobs'),
    [{ status: 'completed', n: 2 }, { status: 'failed', n: 1 }, { status: 'pending', n: 3 }, { status: 'running', n: 1 }]],
  ['GROUP BY names with SQL in them', aggregate([group(tag('name'), 'name'), count()], [tag('name')], call('IS_DEFINED', tag('name'))),
    [{ name: '"', n: 1 }, { name: '$1', n: 1 }, { name: `'; DROP TABLE identities; --`, n: 1 }, { name: '?', n: 1 }]],
];

export type OrderCase = readonly [name: string, plan: QueryPlan, ids: readonly string[]];

export const ORDER_CASES: readonly OrderCase[] = [
  ['ORDER BY a tag of every type, ascending: missing, null, booleans, numbers, strings, arrays, objects',
    ordered([[tag('v'), 'asc']], zoo),
    ['d06', 'd05', 'd04', 'd03', 'd12', 'd09', 'd11', 'd01', 'd15', 'd13', 'd02', 'd14', 'd10', 'd16', 'd08', 'd07']],
  ['ORDER BY a tag descending; equal keys still in id order',
    ordered([[tag('v'), 'desc']], zoo),
    ['d07', 'd08', 'd10', 'd16', 'd14', 'd02', 'd13', 'd01', 'd15', 'd11', 'd09', 'd12', 'd03', 'd04', 'd05', 'd06']],
  ['ORDER BY a column descending then a column ascending',
    ordered([[col('status'), 'desc'], [col('lastActivityTime'), 'asc']], zoo),
    ['d03', 'd04', 'd06', 'd07', 'd08', 'd10', 'd11', 'd12', 'd13', 'd14', 'd15', 'd16', 'd02', 'd01', 'd05', 'd09']],
  ['ORDER BY a nullable column and the device id, both descending',
    ordered([[col('statusReason'), 'desc'], [col('deviceId'), 'desc']], zoo),
    ['d09', 'd16', 'd15', 'd14', 'd13', 'd12', 'd11', 'd10', 'd08', 'd07', 'd06', 'd05', 'd04', 'd03', 'd02', 'd01']],
  ['ORDER BY a boolean column and a number column, descending',
    ordered([[col('iotEdge'), 'desc'], [col('cloudToDeviceMessageCount'), 'desc']], zoo),
    ['d04', 'd10', 'd01', 'd02', 'd03', 'd05', 'd06', 'd07', 'd08', 'd09', 'd11', 'd12', 'd13', 'd14', 'd15', 'd16']],
  ['ORDER BY over modules, case-sensitive strings', ordered([[tag('role'), 'asc']], undefined, 'modules'),
    ['d10/m1', 'd10/m2', 'd20/m1', 'd01/m2', 'd01/m1', 'd02/mA']],
  ['ORDER BY over devices.jobs', ordered([[jobCol('status'), 'asc']], undefined, 'jobs'),
    ['j1:d01', 'j2:d01', 'j1:d02', 'j1:d04', 'j2:d05', 'j2:d10/m1', 'j1:d03']],
  ['ORDER BY names with SQL in them, bytewise', ordered([[tag('name'), 'asc']], call('IS_DEFINED', tag('name'))),
    ['d32', 'd33', 'd31', 'd34']],
  ['no ORDER BY: key order', rows(lit(true), 'modules'), ['d01/m1', 'd01/m2', 'd02/mA', 'd10/m1', 'd10/m2', 'd20/m1']],
];
