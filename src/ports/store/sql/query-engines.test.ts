import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { dropSchemas, requirePostgres, skipReason } from '../../../../test/support/services.js';
import {
  allIds, and, arith, call, cmp, col, doc, isIn, lit, nin, not, or, rows, seed, tag,
} from '../contract-query-data.js';
import { aggregate, ordered } from '../contract-query-pages.js';
import type { Store } from '../index.js';
import { PostgresStore } from '../postgres/index.js';
import type { ArithmeticOp, CompareOp, QueryExpr, QueryFunction, QueryPlan, ScalarValue } from '../query.js';
import { SqliteStore } from '../sqlite/index.js';

/**
 * Differential: random plans over the contract's registry give the same rows, in the same order and the same pages,
 * on SQLite and PostgreSQL. The generator is seeded, so a failure names a plan that fails again.
 */

const url = await requirePostgres();
const skip = skipReason('PostgreSQL');
const PLANS = 400;

const FIELDS: readonly QueryExpr[] = [
  tag('v'), tag('s'), tag('arr'), tag('loc', 'city'), tag('g'), tag('name'), doc('reported', 'fw'), doc('reported', 'temp'),
  col('status'), col('statusReason'), col('cloudToDeviceMessageCount'), col('iotEdge'), col('deviceId'), col('version'),
];
const LITERALS: readonly (ScalarValue | undefined)[] = [10, '10', true, false, null, 0, 'abc', '', 5.5, -3, 'Hello', 'h', 'd1', 2, undefined];
const OPS: readonly CompareOp[] = ['=', '!=', '<', '<=', '>', '>='];
const ARITHMETIC: readonly ArithmeticOp[] = ['+', '-', '*', '/', '%'];
const TESTS: readonly QueryFunction[] = ['IS_DEFINED', 'IS_NULL', 'IS_BOOL', 'IS_NUMBER', 'IS_STRING', 'IS_OBJECT', 'IS_ARRAY', 'IS_PRIMITIVE'];
const STRING_TESTS: readonly QueryFunction[] = ['STARTSWITH', 'ENDSWITH', 'CONTAINS'];

/** mulberry32: a small seeded generator. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function generator(next: () => number) {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)];
  const scalar = (): ScalarValue => pick(LITERALS.filter((v): v is ScalarValue => v !== undefined));
  const value = (depth: number): QueryExpr => {
    const r = next();
    if (r < 0.45) return pick(FIELDS);
    if (r < 0.7 || depth > 1) return lit(pick(LITERALS));
    if (r < 0.85) return arith(pick(FIELDS), pick(ARITHMETIC), value(depth + 1));
    return call(pick(['LOWER', 'UPPER', 'LENGTH'] as const), pick(FIELDS));
  };
  const condition = (depth: number): QueryExpr => {
    const r = next();
    if (depth < 2 && r < 0.3) return pick([and, or])(condition(depth + 1), condition(depth + 1));
    if (depth < 3 && r < 0.4) return not(condition(depth + 1));
    if (r < 0.65) return cmp(value(depth), pick(OPS), value(depth));
    if (r < 0.75) return (next() < 0.5 ? isIn : nin)(pick(FIELDS), [scalar(), ...(next() < 0.5 ? [scalar()] : [])]);
    if (r < 0.85) return call(pick(TESTS), value(depth));
    if (r < 0.93) return call(pick(STRING_TESTS), pick(FIELDS), lit(pick(LITERALS)));
    if (r < 0.97) return call('ARRAY_CONTAINS', pick([tag('arr'), tag('v')]), scalar());
    return pick(FIELDS);
  };
  const plan = (): QueryPlan => {
    const where = condition(0);
    const r = next();
    if (r < 0.5) return rows(where, next() < 0.9 ? 'devices' : 'modules');
    if (r < 0.85) return ordered([[pick(FIELDS), next() < 0.5 ? 'asc' : 'desc'], ...(next() < 0.5 ? [[pick(FIELDS), 'desc'] as [QueryExpr, 'desc']] : [])], where);
    const key = pick(FIELDS);
    if (key.kind !== 'field') throw new Error('fields are fields');
    return aggregate([{ kind: 'group', field: key.field, alias: 'k' }, { kind: 'aggregate', aggregate: 'count', alias: 'n' },
      { kind: 'aggregate', aggregate: pick(['sum', 'min', 'max'] as const), field: { kind: 'document', document: 'reported', path: ['temp'] }, alias: 'x' }], [key], where);
  };
  return plan;
}

const stores: { sqlite?: Store; postgres?: Store } = {};
const schema = `t_${randomBytes(6).toString('hex')}`;

before(async () => {
  if (url === undefined) return;
  const file = SqliteStore.open(':memory:');
  await file.migrate();
  // Random plans read devices and modules only, so the seed's devices.jobs rows are left out.
  await seed(file, async () => undefined);
  stores.sqlite = file;
  const postgres = await PostgresStore.connect({ url, schema, poolSize: 2 });
  await postgres.migrate();
  await seed(postgres, async () => undefined);
  stores.postgres = postgres;
});

after(async () => {
  await stores.sqlite?.close();
  await stores.postgres?.close();
  if (url !== undefined) await dropSchemas(url, [schema]);
});

test(`${PLANS} random plans give the same rows, order and pages on SQLite and PostgreSQL`, { skip }, async () => {
  const { sqlite, postgres } = stores;
  assert.ok(sqlite && postgres);
  const plan = generator(random(20260101));
  for (let i = 0; i < PLANS; i++) {
    const p = plan();
    const expected = await allIds(sqlite, p);
    const message = `plan ${i}: ${JSON.stringify(p)}`;
    assert.deepEqual(await allIds(postgres, p), expected, message);
    assert.deepEqual(await allIds(sqlite, p, 3), expected, `${message} (SQLite, pages of 3)`);
    assert.deepEqual(await allIds(postgres, p, 3), expected, `${message} (PostgreSQL, pages of 3)`);
  }
});
