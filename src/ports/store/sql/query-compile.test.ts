import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { dropSchemas, requirePostgres, skipReason } from '../../../../test/support/services.js';
import { identityRecord } from '../contract.js';
import { and, arith, call, cmp, col, doc, eq, idsOf, isIn, nin, not, rows, tag } from '../contract-query-data.js';
import { aggregate, ordered } from '../contract-query-pages.js';
import type { JsonObject, Store } from '../index.js';
import { PostgresStore } from '../postgres/index.js';
import { postgresQueryDialect } from '../postgres/query.js';
import type { QueryPageOptions, QueryPlan } from '../query.js';
import { SqliteStore } from '../sqlite/index.js';
import { SQLITE_QUERY_DIALECT } from '../sqlite/query.js';
import { QueryParams, appendDeviceCondition, compileDeviceCondition, compileQuery } from './query-compile.js';
import { IDENTITY_COLUMNS } from './rows.js';

/**
 * The compiler, case by case: the exact SQL each dialect gets (the identity column list written `<cols>`), then the
 * statement run on both stores over a small registry, with the rows it must return.
 */

const url = await requirePostgres();
const skipPostgres = skipReason('PostgreSQL');
const PG = postgresQueryDialect({ jsonbStringsBytewise: true });

const REGISTRY: readonly [string, JsonObject, ('disabled' | 'enabled')?][] = [
  ['a1', { site: 'paris', n: 3, arr: [1, 2] }], ['a2', { site: 'lyon', n: 2 }], ['a3', { site: 'paris', n: '3' }],
  ['a4', { n: 5, arr: ['1'] }], ['a5', { site: 'nice', n: 1 }, 'disabled'],
];

interface Case {
  readonly name: string;
  readonly plan: QueryPlan;
  readonly page?: QueryPageOptions;
  readonly sqlite: string;
  readonly postgres: string;
  /** Row ids, or aggregate rows as JSON. */
  readonly result: readonly string[];
}

const N = { sqlite: `json_extract(tags, '$."n"')`, sqliteType: `json_type(tags, '$."n"')`, pgType: `jsonb_typeof(tags -> 'n')` };
const SQLITE_PARTS = (p: string): string => `CASE json_type(tags, '$."${p}"') WHEN 'null' THEN 1 WHEN 'true' THEN 2 WHEN 'false' THEN 2 `
  + `WHEN 'integer' THEN 3 WHEN 'real' THEN 3 WHEN 'text' THEN 4 WHEN 'array' THEN 5 WHEN 'object' THEN 6 ELSE 0 END, `
  + `CASE json_type(tags, '$."${p}"') WHEN 'true' THEN 1 WHEN 'false' THEN 0 WHEN 'integer' THEN json_extract(tags, '$."${p}"') `
  + `WHEN 'real' THEN json_extract(tags, '$."${p}"') ELSE 0 END, `
  + `CASE WHEN json_type(tags, '$."${p}"') IN ('text', 'array', 'object') THEN json_extract(tags, '$."${p}"') ELSE '' END`;
const PG_PARTS = (p: string): string => `CASE jsonb_typeof(tags -> '${p}') WHEN 'null' THEN 1 WHEN 'boolean' THEN 2 WHEN 'number' THEN 3 `
  + `WHEN 'string' THEN 4 WHEN 'array' THEN 5 WHEN 'object' THEN 6 ELSE 0 END, `
  + `CASE jsonb_typeof(tags -> '${p}') WHEN 'boolean' THEN (tags -> '${p}')::boolean::int WHEN 'number' THEN (tags -> '${p}')::float8 ELSE 0 END, `
  + `(CASE jsonb_typeof(tags -> '${p}') WHEN 'string' THEN (tags -> '${p}') #>> '{}' WHEN 'array' THEN (tags -> '${p}')::text `
  + `WHEN 'object' THEN (tags -> '${p}')::text ELSE '' END) COLLATE "C"`;
const aliased = (parts: string, prefix: string): string => parts.split(/, (?=CASE|\(CASE)/).map((p, i) => `${p} AS ${prefix}${i}`).join(', ');
const KEYED = 'ORDER BY device_id, module_id';
const TELEMETRY_JOIN = 'LEFT JOIN (SELECT device_id AS telemetry_device_id, module_id AS telemetry_module_id, values_doc AS telemetry_values, '
  + 'meta_doc AS telemetry_meta FROM device_state) AS t ON telemetry_device_id = identities.device_id AND telemetry_module_id = identities.module_id';
const TELEMETRY_OF_ROW = '(SELECT values_doc FROM device_state WHERE device_state.device_id = identities.device_id AND device_state.module_id = identities.module_id)';

const CASES: readonly Case[] = [
  {
    name: 'equality with a tag: the indexed expression against a bound value, the type test beside it',
    plan: rows(eq(tag('site'), 'paris')),
    sqlite: `SELECT <cols> FROM identities WHERE module_id = '' AND json_extract(tags, '$."site"') = ? AND json_type(tags, '$."site"') = 'text' ${KEYED} LIMIT ?`,
    postgres: `SELECT <cols> FROM identities WHERE module_id = '' AND (tags -> 'site') = $1::jsonb ${KEYED} LIMIT $2`,
    result: ['a1', 'a3'],
  },
  {
    name: 'NOT of a range is the opposite range under the same type test',
    plan: rows(not(cmp(tag('n'), '<', 3))),
    sqlite: `SELECT <cols> FROM identities WHERE module_id = '' AND ${N.sqlite} >= ? AND ${N.sqliteType} IN ('integer', 'real') ${KEYED} LIMIT ?`,
    postgres: `SELECT <cols> FROM identities WHERE module_id = '' AND (tags -> 'n') >= $1::jsonb AND ${N.pgType} = 'number' ${KEYED} LIMIT $2`,
    result: ['a1', 'a4'],
  },
  {
    name: 'IN on a tag and NIN on a column',
    plan: rows(and(isIn(tag('site'), ['paris', 'nice']), nin(col('status'), ['disabled']))),
    sqlite: `SELECT <cols> FROM identities WHERE module_id = '' AND json_extract(tags, '$."site"') IN (?, ?) AND json_type(tags, '$."site"') = 'text' AND status NOT IN (?) ${KEYED} LIMIT ?`,
    postgres: `SELECT <cols> FROM identities WHERE module_id = '' AND (tags -> 'site') IN ($1::jsonb, $2::jsonb) AND status NOT IN ($3::text) ${KEYED} LIMIT $4`,
    result: ['a1', 'a3'],
  },
  {
    name: 'type tests are never undefined, so their NOT is IS NOT TRUE',
    plan: rows(and(call('IS_DEFINED', tag('site')), not(call('IS_STRING', tag('n'))))),
    sqlite: `SELECT <cols> FROM identities WHERE module_id = '' AND json_type(tags, '$."site"') IS NOT NULL AND (${N.sqliteType} = 'text') IS NOT TRUE ${KEYED} LIMIT ?`,
    postgres: `SELECT <cols> FROM identities WHERE module_id = '' AND (tags -> 'site') IS NOT NULL AND (${N.pgType} = 'string') IS NOT TRUE ${KEYED} LIMIT $1`,
    result: ['a1', 'a2', 'a5'],
  },
  {
    name: 'string functions: case-sensitive, no LIKE',
    plan: rows(and(call('STARTSWITH', tag('site'), 'pa'), eq(call('LOWER', col('deviceId')), 'a1'))),
    sqlite: `SELECT <cols> FROM identities WHERE module_id = '' AND substr(json_extract(tags, '$."site"'), 1, length(?)) = ? AND json_type(tags, '$."site"') = 'text' AND lower(device_id) = ? ${KEYED} LIMIT ?`,
    postgres: `SELECT <cols> FROM identities WHERE module_id = '' AND starts_with(((tags -> 'site') #>> '{}'), $1::text) AND jsonb_typeof(tags -> 'site') = 'string' AND lower((device_id) COLLATE "C") = $2::text ${KEYED} LIMIT $3`,
    result: ['a1'],
  },
  {
    name: 'ARRAY_CONTAINS: json_each on SQLite, containment on PostgreSQL',
    plan: rows(call('ARRAY_CONTAINS', tag('arr'), 1)),
    sqlite: `SELECT <cols> FROM identities WHERE module_id = '' AND EXISTS (SELECT 1 FROM json_each(tags, '$."arr"') WHERE type IN ('integer', 'real') AND value = ?) AND json_type(tags, '$."arr"') = 'array' ${KEYED} LIMIT ?`,
    postgres: `SELECT <cols> FROM identities WHERE module_id = '' AND (tags -> 'arr') @> $1::jsonb AND jsonb_typeof(tags -> 'arr') = 'array' ${KEYED} LIMIT $2`,
    result: ['a1'],
  },
  {
    name: 'arithmetic: JavaScript remainder, a literal divisor checked when compiled',
    plan: rows(eq(arith(tag('n'), '%', 2), 1)),
    sqlite: `SELECT <cols> FROM identities WHERE module_id = '' AND mod(${N.sqlite}, ?) = ? AND ${N.sqliteType} IN ('integer', 'real') ${KEYED} LIMIT ?`,
    postgres: `SELECT <cols> FROM identities WHERE module_id = '' AND (CASE WHEN ${N.pgType} = 'number' THEN (tags -> 'n')::float8 END - $1::float8 * `
      + `trunc(CASE WHEN ${N.pgType} = 'number' THEN (tags -> 'n')::float8 END / NULLIF($1::float8, 0))) = $2::float8 AND ${N.pgType} = 'number' ${KEYED} LIMIT $3`,
    result: ['a1', 'a4', 'a5'],
  },
  {
    name: 'order keys: sort parts in a derived table, keyset after a cursor with mixed directions',
    plan: ordered([[tag('n'), 'desc'], [col('status'), 'asc']]),
    page: { limit: 2, after: [3, 3, '', 'enabled', 'a1', ''] },
    sqlite: `SELECT * FROM (SELECT <cols>, ${aliased(SQLITE_PARTS('n'), 'k')}, status AS k3 FROM identities WHERE module_id = '') AS q WHERE `
      + '(k0 < ? OR k0 = ? AND k1 < ? OR k0 = ? AND k1 = ? AND k2 < ? OR k0 = ? AND k1 = ? AND k2 = ? AND k3 > ? '
      + 'OR k0 = ? AND k1 = ? AND k2 = ? AND k3 = ? AND device_id > ? OR k0 = ? AND k1 = ? AND k2 = ? AND k3 = ? AND device_id = ? AND module_id > ?) '
      + 'ORDER BY k0 DESC, k1 DESC, k2 DESC, k3, device_id, module_id LIMIT ?',
    postgres: `SELECT * FROM (SELECT <cols>, ${aliased(PG_PARTS('n'), 'k')}, (status) COLLATE "C" AS k3 FROM identities WHERE module_id = '') AS q WHERE `
      + '(k0 < $1::float8 OR k0 = $1::float8 AND k1 < $2::float8 OR k0 = $1::float8 AND k1 = $2::float8 AND k2 < $3::text '
      + 'OR k0 = $1::float8 AND k1 = $2::float8 AND k2 = $3::text AND k3 > $4::text '
      + 'OR k0 = $1::float8 AND k1 = $2::float8 AND k2 = $3::text AND k3 = $4::text AND device_id > $5::text '
      + 'OR k0 = $1::float8 AND k1 = $2::float8 AND k2 = $3::text AND k3 = $4::text AND device_id = $5::text AND module_id > $6::text) '
      + 'ORDER BY k0 DESC, k1 DESC, k2 DESC, k3, device_id, module_id LIMIT $7',
    result: ['a2', 'a5'],
  },
  {
    name: 'GROUP BY a tag: grouped on what an index holds, ordered and paged by sort parts',
    plan: aggregate([{ kind: 'group', field: { kind: 'document', document: 'tags', path: ['site'] }, alias: 'site' }, { kind: 'aggregate', aggregate: 'count', alias: 'n' }], [tag('site')]),
    page: { limit: 2, after: [4, 0, 'lyon'] },
    sqlite: `SELECT ${aliased(SQLITE_PARTS('site'), 'g')}, COUNT(*) AS a1 FROM identities WHERE module_id = '' AND (${SQLITE_PARTS('site')}) > (?, ?, ?) `
      + `GROUP BY json_extract(tags, '$."site"'), json_type(tags, '$."site"') ORDER BY g0, g1, g2 LIMIT ?`,
    postgres: `SELECT ${aliased(PG_PARTS('site'), 'g')}, COUNT(*) AS a1 FROM identities WHERE module_id = '' AND (${PG_PARTS('site')}) > ($1::float8, $2::float8, $3::text) `
      + `GROUP BY (tags -> 'site') ORDER BY g0, g1, g2 LIMIT $4`,
    result: ['{"site":"nice","n":1}', '{"site":"paris","n":2}'],
  },
  {
    name: 'telemetry: device_state joined through a derived table that renames its columns, so identity columns stay unqualified',
    plan: rows(cmp(doc('telemetry', 't'), '>', 1)),
    sqlite: `SELECT <cols> FROM identities ${TELEMETRY_JOIN} WHERE module_id = '' AND json_extract(telemetry_values, '$."t"') > ? `
      + `AND json_type(telemetry_values, '$."t"') IN ('integer', 'real') ${KEYED} LIMIT ?`,
    postgres: `SELECT <cols> FROM identities ${TELEMETRY_JOIN} WHERE module_id = '' AND (telemetry_values -> 't') > $1::jsonb `
      + `AND jsonb_typeof(telemetry_values -> 't') = 'number' ${KEYED} LIMIT $2`,
    result: ['a1'],
  },
  {
    name: 'telemetry projected: the joined documents are read beside the identity columns',
    plan: { collection: 'devices', select: { kind: 'paths', items: [{ kind: 'path', path: ['telemetry', 't'], alias: 't' }] }, where: eq(tag('site'), 'paris') },
    sqlite: `SELECT <cols>, telemetry_values, telemetry_meta FROM identities ${TELEMETRY_JOIN} WHERE module_id = '' `
      + `AND json_extract(tags, '$."site"') = ? AND json_type(tags, '$."site"') = 'text' ${KEYED} LIMIT ?`,
    postgres: `SELECT <cols>, telemetry_values, telemetry_meta FROM identities ${TELEMETRY_JOIN} WHERE module_id = '' `
      + `AND (tags -> 'site') = $1::jsonb ${KEYED} LIMIT $2`,
    result: ['a1', 'a3'],
  },
];

function sqlOf(c: Case, dialect: typeof PG): string {
  return compileQuery(dialect, c.plan, c.page ?? { limit: 10 }).text.replace(IDENTITY_COLUMNS.join(', '), '<cols>');
}

const stores: { sqlite?: Store; postgres?: Store } = {};
const schema = `t_${randomBytes(6).toString('hex')}`;

async function seeded(store: Store): Promise<Store> {
  await store.migrate();
  for (const [id, tags, status] of REGISTRY) assert.ok(await store.identities.insert(identityRecord(id, '', { ...(status && { status }), twin: { tags } })));
  assert.ok(await store.identities.insert(identityRecord('a1', 'm', { twin: { tags: { site: 'paris', n: 1 } } })));
  const seen = (deviceId: string, moduleId: string, t: string | number) => ({ deviceId, moduleId, lastSeenMs: 1, values: { t: { value: t, timeMs: 1 } } });
  await store.pipeline.mergeDeviceState([seen('a1', '', 3), seen('a2', '', 'x'), seen('a1', 'm', 9)]);
  return store;
}

before(async () => {
  stores.sqlite = await seeded(SqliteStore.open(':memory:'));
  if (url !== undefined) stores.postgres = await seeded(await PostgresStore.connect({ url, schema, poolSize: 2 }));
});

after(async () => {
  await stores.sqlite?.close();
  await stores.postgres?.close();
  if (url !== undefined) await dropSchemas(url, [schema]);
});

for (const c of CASES) {
  test(`${c.name}: the SQL of each dialect`, () => {
    assert.equal(sqlOf(c, SQLITE_QUERY_DIALECT), c.sqlite);
    assert.equal(sqlOf(c, PG), c.postgres);
  });
  for (const engine of ['sqlite', 'postgres'] as const) {
    test(`${c.name}: ${engine} returns the rows`, { skip: engine === 'postgres' ? skipPostgres : undefined }, async () => {
      const store = stores[engine];
      assert.ok(store);
      assert.deepEqual(idsOf(await store.query.run(c.plan, c.page ?? { limit: 10 })), c.result);
    });
  }
}

test('compileDeviceCondition gives a fragment whose values share the caller statement', () => {
  const cases = [
    [SQLITE_QUERY_DIALECT, `SELECT ?, device_id FROM identities WHERE module_id = '' AND json_extract(tags, '$."site"') = ? AND json_type(tags, '$."site"') = 'text' LIMIT ?`, 'paris'],
    [PG, `SELECT $1, device_id FROM identities WHERE module_id = '' AND (tags -> 'site') = $2::jsonb LIMIT $3`, '"paris"'],
  ] as const;
  for (const [dialect, expected, site] of cases) {
    const params = new QueryParams(dialect.placeholders);
    const jobId = params.add('job-1');
    const where = compileDeviceCondition(dialect, eq(tag('site'), 'paris'), params);
    const { text, values } = params.finish(`SELECT ${jobId}, device_id FROM identities WHERE ${where} LIMIT ${params.add(5)}`);
    assert.equal(text, expected);
    assert.deepEqual(values, ['job-1', site, 5]);
  }
});

test('a devices condition fragment reads telemetry through a subquery on the identities row', () => {
  const cases = [
    [SQLITE_QUERY_DIALECT, `module_id = '' AND json_extract(${TELEMETRY_OF_ROW}, '$."t"') = ? AND json_type(${TELEMETRY_OF_ROW}, '$."t"') IN ('integer', 'real')`],
    [PG, `module_id = '' AND (${TELEMETRY_OF_ROW} -> 't') = $1::jsonb`],
  ] as const;
  for (const [dialect, expected] of cases) {
    assert.equal(appendDeviceCondition(dialect, eq(doc('telemetry', 't'), 3), []), expected);
  }
});

test('appendDeviceCondition numbers its placeholders after the values the caller holds', () => {
  const values: unknown[] = ['job-1', 'd00'];
  const where = appendDeviceCondition(PG, and(eq(tag('site'), 'paris'), eq(col('status'), 'enabled')), values);
  assert.equal(where, `module_id = '' AND (tags -> 'site') = $3::jsonb AND status = $4::text`);
  assert.deepEqual(values, ['job-1', 'd00', '"paris"', 'enabled']);
});

test('a path segment is escaped where it is written: quotes doubled, JSON path quotes and backslashes escaped', () => {
  const plan = rows(eq(tag(`it's "x" \\`), 1));
  assert.match(compileQuery(SQLITE_QUERY_DIALECT, plan, { limit: 1 }).text, /json_extract\(tags, '\$\."it''s \\"x\\" \\\\"'\) = \?/);
  assert.match(compileQuery(PG, plan, { limit: 1 }).text, /\(tags -> 'it''s "x" \\'\) = \$1::jsonb/);
  assert.throws(() => compileQuery(PG, rows(eq(tag('a\u0000b'), 1)), { limit: 1 }), /control character/);
});

test('a string range on a tag compares jsonb only where the database orders strings bytewise', () => {
  const plan = rows(cmp(tag('site'), '<', 'p'));
  assert.match(compileQuery(PG, plan, { limit: 1 }).text, /\(tags -> 'site'\) < \$1::jsonb AND jsonb_typeof\(tags -> 'site'\) = 'string'/);
  const collated = postgresQueryDialect({ jsonbStringsBytewise: false });
  assert.match(compileQuery(collated, plan, { limit: 1 }).text, /\(\(\(tags -> 'site'\) #>> '\{\}'\)\) COLLATE "C" < \$1::text AND jsonb_typeof\(tags -> 'site'\) = 'string'/);
});
