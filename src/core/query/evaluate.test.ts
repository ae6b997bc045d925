import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { identityRecord } from '../../ports/store/contract.js';
import { allIds, call, cmp, col, doc, lit, not, rows, seed, seedTelemetry, tag } from '../../ports/store/contract-query-data.js';
import { identityKeyText, type IdentityRecord, type JsonValue, type Store } from '../../ports/store/index.js';
import type { QueryCollection, QueryExpr, ScalarValue, TelemetryDocs } from '../../ports/store/query.js';
import { RANDOM_FIELDS, random, randomPlans } from '../../ports/store/sql/query-random.js';
import { SqliteStore } from '../../ports/store/sqlite/index.js';
import { ID_CASES, ROW_CASES } from './conformance-cases.js';
import { compareText } from './evaluate.js';
import { evaluateCondition, evaluateDeviceCondition, parseCondition, parseQuery } from './index.js';

/**
 * In-memory evaluation against the Store's SQL: every condition of the conformance table, and random conditions,
 * pick exactly the rows SQLite picks from the same records and telemetry (read back from the store, so both judge
 * the same data).
 */

const RANDOM_CONDITIONS = 2000;

/** Strings whose UTF-8 order differs from their UTF-16 order, and characters outside ASCII for LOWER and LENGTH. */
const EXTRA: readonly [string, JsonValue][] = [
  ['u1', '\uff61'], ['u2', '😀'], ['u3', 'É'], ['u4', 'e\u0301'], ['u5', '\ud7ff'], ['u6', 'a😀b'],
];
const EXTRA_LITERALS: readonly (ScalarValue | undefined)[] = [
  10, '10', true, false, null, 0, 'abc', '', 5.5, -3, 'Hello', 'h', 'd1', 2, undefined,
  '\uff61', '😀', 'é', 'É', 'a', '\ue000', 1e308, -0.5,
];

let store: Store | undefined;
let records: IdentityRecord[] = [];
/** Each record's last-known telemetry, by identityKeyText, as the store holds it. */
const telemetry = new Map<string, TelemetryDocs>();

before(async () => {
  const s = SqliteStore.open(':memory:');
  await s.migrate();
  await seed(s, async () => undefined);
  await seedTelemetry(s);
  for (const [id, value] of EXTRA) assert.ok(await s.identities.insert(identityRecord(id, '', { twin: { tags: { u: value } } })));
  const all = [...(await s.query.run(rows(), { limit: 1000 })).rows, ...(await s.query.run(rows(undefined, 'modules'), { limit: 1000 })).rows];
  records = all.filter((r): r is IdentityRecord => 'twin' in r);
  for (const r of records) {
    const state = await s.pipeline.getDeviceState(r);
    if (state) telemetry.set(identityKeyText(r), state);
  }
  store = s;
});

after(async () => {
  await store?.close();
});

function inMemoryIds(where: QueryExpr | undefined, collection: QueryCollection): string[] {
  const inCollection = records.filter((r) => (collection === 'devices') === (r.moduleId === ''));
  return inCollection
    .filter((r) => where === undefined || evaluateDeviceCondition(where, r, telemetry.get(identityKeyText(r))))
    .map((r) => (r.moduleId ? `${r.deviceId}/${r.moduleId}` : r.deviceId))
    .sort();
}

async function sqliteIds(where: QueryExpr | undefined, collection: QueryCollection): Promise<string[]> {
  assert.ok(store);
  return (await allIds(store, rows(where, collection))).sort();
}

test('every condition of the conformance table selects the rows SQLite selects, and the rows the table states', async (t) => {
  for (const [text, ids] of ID_CASES) {
    await t.test(text, async () => {
      const plan = parseQuery(text);
      assert.deepEqual(inMemoryIds(plan.where, plan.collection), [...ids].sort());
      assert.deepEqual(inMemoryIds(plan.where, plan.collection), await sqliteIds(plan.where, plan.collection));
    });
  }
  for (const [text] of ROW_CASES) {
    const plan = parseQuery(text);
    if (plan.collection === 'jobs') continue;
    await t.test(text, async () => {
      assert.deepEqual(inMemoryIds(plan.where, plan.collection), await sqliteIds(plan.where, plan.collection));
    });
  }
});

test(`${RANDOM_CONDITIONS} random conditions and their NOT select exactly the rows SQLite selects`, async () => {
  const next = random(20260417);
  const fields = [
    ...RANDOM_FIELDS, tag('u'), col('moduleId'), col('primaryThumbprint'), tag(), doc('reportedMeta', 'fw', '$lastUpdated'),
    doc('telemetry', 'temp'), doc('telemetry', 'fw'), doc('telemetry', 'arr'), doc('telemetry'), doc('telemetryMeta', 'temp', '$lastUpdated'),
  ];
  const conditions = randomPlans(next, fields, EXTRA_LITERALS);
  let telling = 0;
  for (let i = 0; i < RANDOM_CONDITIONS; i++) {
    const condition = conditions.condition();
    const collection: QueryCollection = next() < 0.8 ? 'devices' : 'modules';
    for (const where of [condition, not(condition)]) {
      const ids = inMemoryIds(where, collection);
      assert.deepEqual(ids, await sqliteIds(where, collection), `condition ${i}: ${JSON.stringify(where)}`);
      if (ids.length > 0 && ids.length < inMemoryIds(undefined, collection).length) telling++;
    }
  }
  // Conditions true for every row or for none tell little; enough of them split the rows.
  assert.ok(telling > RANDOM_CONDITIONS / 4, `only ${telling} conditions split the rows`);
});

test('strings order bytewise in UTF-8: a character above U+FFFF sorts after U+FF61, unlike UTF-16 units', async () => {
  assert.ok(compareText('\uff61', '😀') < 0);
  assert.ok('\uff61' > '😀', 'JavaScript’s own order is the other way');
  assert.ok(compareText('a', 'ab') < 0);
  assert.equal(compareText('😀', '😀'), 0);
  assert.ok(compareText('\ud7ff', '\ue000') < 0);
  const where = cmp(tag('u'), '<', '😀');
  assert.deepEqual(inMemoryIds(where, 'devices'), await sqliteIds(where, 'devices'));
  assert.ok(inMemoryIds(where, 'devices').includes('u1'));
});

test('three-valued logic: undefined AND false is false, undefined OR true is true, NOT undefined is undefined', () => {
  const values: Record<string, JsonValue | undefined> = { t: true, f: false, u: undefined };
  const truth = (text: string): boolean => evaluateCondition(parseCondition(text), (field) => {
    if (field.kind !== 'document') throw new Error('tags only');
    return values[field.path[0]];
  });
  assert.equal(truth('tags.u = 1 AND tags.f = true'), false);
  assert.equal(truth('NOT (tags.u = 1 AND tags.f = true)'), true);
  assert.equal(truth('tags.u = 1 OR tags.t = true'), true);
  assert.equal(truth('tags.u = 1 OR tags.f = true'), false);
  assert.equal(truth('NOT (tags.u = 1 OR tags.f = true)'), false, 'undefined OR false is undefined, and so is its NOT');
  assert.equal(truth('NOT (tags.u = 1)'), false);
  assert.equal(truth('tags.t'), true, 'a boolean value stands as a condition');
  assert.equal(truth('NOT tags.f'), true);
  assert.equal(truth("NOT tags.u"), false);
  assert.equal(truth('(tags.t = true) = true'), true, 'a condition used as a value is a boolean');
  assert.equal(truth('(tags.u = 1) = false'), false, '… or undefined');
});

test('functions: ASCII-only case mapping, lengths in code points, undefined for a value of another type', () => {
  const value = (text: string, v: JsonValue): boolean => evaluateCondition(parseCondition(text), () => v);
  assert.equal(value("LOWER(tags.x) = 'Éa'", 'ÉA'), true);
  assert.equal(value('LENGTH(tags.x) = 3', 'a😀b'), true);
  assert.equal(value("UPPER(tags.x) = 'A'", 1), false);
  assert.equal(value('NOT (LENGTH(tags.x) = 1)', 1), false);
  assert.equal(value("STARTSWITH(tags.x, '')", 'abc'), true);
  assert.equal(value("NOT ENDSWITH(tags.x, 'c')", 5), false);
  assert.equal(value('ARRAY_CONTAINS(tags.x, 1)', [1.0, 2]), true);
  assert.equal(value('ARRAY_CONTAINS(tags.x, 1)', ['1', [1]]), false);
  assert.equal(value('NOT ARRAY_CONTAINS(tags.x, 1)', { 0: 1 }), false);
  assert.equal(value('tags.x / 0 = 1 OR NOT (tags.x / 0 = 1)', 1), false, 'a zero divisor makes the result undefined');
  assert.equal(value('tags.x % 3 = -1', -7), true);
  assert.equal(value("tags.x NIN [1, 'a']", 2), false, 'NIN over a mixed list is never true');
  assert.equal(value('tags.x NIN [1, 3]', 2), true);
  assert.equal(value('tags.x IN [null]', null), true);
  assert.equal(value('NOT (tags.x IN [null])', 1), false);
});

test('evaluateDeviceCondition reads identity columns by their twin names, and telemetry when given', () => {
  const record = identityRecord('d1', '', { statusReason: null, c2dCount: 4, twin: { version: 9, tags: { site: 'x' } } });
  const holds = (text: string, telemetry?: Parameters<typeof evaluateDeviceCondition>[2]): boolean =>
    evaluateDeviceCondition(parseCondition(text), record, telemetry);
  assert.equal(holds("deviceId = 'd1' AND cloudToDeviceMessageCount = 4 AND version = 9 AND statusReason = null"), true);
  assert.equal(holds("moduleId = ''"), false, 'a device has no moduleId');
  assert.equal(holds('capabilities.iotEdge = false AND IS_NULL(x509Thumbprint.primaryThumbprint)'), true);
  const telemetry = { values: { temp: 31, fw: 'a' }, meta: { temp: { $lastUpdated: '2026-01-01T00:00:00Z' } } };
  assert.equal(holds('telemetry.temp > 30'), false, 'no telemetry: undefined');
  assert.equal(holds('telemetry.temp > 30', telemetry), true);
  assert.equal(holds("telemetry.$metadata.temp.$lastUpdated >= '2026'", telemetry), true);
  assert.equal(holds('NOT IS_DEFINED(telemetry)'), true);
  assert.throws(() => evaluateDeviceCondition({ kind: 'field', field: { kind: 'jobColumn', column: 'jobId' } }, record), /job column/);
  assert.equal(evaluateDeviceCondition(call('IS_DEFINED', lit(undefined)), record), false);
});
