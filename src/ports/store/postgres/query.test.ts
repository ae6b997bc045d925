import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import pg from 'pg';
import { requirePostgres, skipReason } from '../../../../test/support/services.js';
import { identityRecord } from '../contract.js';
import { allIds, cmp, eq, isIn, rows, tag } from '../contract-query-data.js';
import type { QueryPlan } from '../query.js';
import { PostgresStore } from './index.js';

/** EXPLAIN of compiled queries on PostgreSQL: declared indexes serve equality, IN and ranges on their path. */

const url = await requirePostgres();
const skip = skipReason('PostgreSQL');
const DEVICES = 5000;

/** A fleet big enough, and analysed, for the planner to prefer an index to a scan where one fits. */
async function withFleet(body: (store: PostgresStore, analyze: () => Promise<void>) => Promise<void>): Promise<void> {
  assert.ok(url !== undefined);
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const store = await PostgresStore.connect({ url, schema, poolSize: 2 });
  const client = new pg.Client({ connectionString: url, options: `-c search_path=${schema}` });
  await client.connect();
  try {
    await store.migrate();
    const session = await store.identities.beginImport();
    await session.stage(Array.from({ length: DEVICES }, (_, i) => identityRecord(`dev${String(i).padStart(5, '0')}`, '', {
      twin: { tags: { site: `s${i % 500}`, n: i } },
    })), []);
    await session.commit();
    await body(store, async () => { await client.query('ANALYZE identities'); });
  } finally {
    await store.close();
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await client.end();
  }
}

const explain = async (store: PostgresStore, plan: QueryPlan): Promise<string> => (await store.query.explain(plan, { limit: 100 })).join('\n');
const INDEXED = /Index (Only )?Scan using qx_[0-9a-f]{16}|Bitmap Index Scan on qx_[0-9a-f]{16}/;

test('an equality on a declared tag is answered from its index, and only once declared', { skip }, async () => {
  await withFleet(async (store, analyze) => {
    const bySite = rows(eq(tag('site'), 's7'));
    await analyze();
    assert.doesNotMatch(await explain(store, bySite), /qx_/);
    assert.equal(await store.query.addIndex('tags', ['site'], '2026-01-01T00:00:00Z'), true);
    await analyze();
    const indexed = await explain(store, bySite);
    assert.match(indexed, INDEXED);
    assert.match(indexed, /\(tags -> 'site'::text\) = '"s7"'::jsonb|\(tags -> 'site'::text\) = \$1/);
    assert.match(await explain(store, rows(isIn(tag('site'), ['s1', 's2']))), INDEXED);
    assert.equal((await allIds(store, bySite)).length, DEVICES / 500);
    await store.query.removeIndex('tags', ['site']);
    assert.doesNotMatch(await explain(store, bySite), /qx_/);
  });
});

test('a number equality and a narrow range on a declared tag are answered from its index', { skip }, async () => {
  await withFleet(async (store, analyze) => {
    await store.query.addIndex('tags', ['n'], '2026-01-01T00:00:00Z');
    await analyze();
    assert.match(await explain(store, rows(eq(tag('n'), 42))), INDEXED);
    assert.match(await explain(store, rows(cmp(tag('n'), '>=', DEVICES - 3))), INDEXED);
    assert.deepEqual(await allIds(store, rows(cmp(tag('n'), '>=', DEVICES - 3))), ['dev04997', 'dev04998', 'dev04999']);
  });
});
