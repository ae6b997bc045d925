import assert from 'node:assert/strict';
import { test } from 'node:test';
import { identityRecord } from '../contract.js';
import { allIds, cmp, doc, eq, isIn, rows, tag } from '../contract-query-data.js';
import { aggregate } from '../contract-query-pages.js';
import { SqliteStore } from './index.js';

/** EXPLAIN QUERY PLAN of compiled queries: declared indexes serve them. */

const DEVICES = 2000;

async function fleet(): Promise<SqliteStore> {
  const store = SqliteStore.open(':memory:');
  await store.migrate();
  const records = Array.from({ length: DEVICES }, (_, i) => identityRecord(`dev${String(i).padStart(5, '0')}`, '', {
    twin: { tags: { site: `s${i % 50}`, n: i }, reported: { fw: `v${i % 5}` } },
  }));
  assert.ok((await store.identities.applyBatch(records.map((record) => ({ kind: 'insert' as const, record })))).every(Boolean));
  return store;
}

const plan = (store: SqliteStore, p: Parameters<SqliteStore['query']['explain']>[0]): string => store.query.explain(p, { limit: 100 }).join('; ');
const SEARCH = /SEARCH identities USING INDEX qx_[0-9a-f]{16} \(<expr>=\? AND <expr>=\? AND module_id=\?\)/;

test('an equality on a declared tag is an index search on the indexed expression, and only once declared', async () => {
  const store = await fleet();
  try {
    const bySite = rows(eq(tag('site'), 's7'));
    assert.doesNotMatch(plan(store, bySite), /qx_/);
    assert.equal(await store.query.addIndex('tags', ['site'], '2026-01-01T00:00:00Z'), true);
    assert.match(plan(store, bySite), SEARCH);
    assert.match(plan(store, rows(isIn(tag('site'), ['s1', 's2']))), SEARCH);
    assert.equal((await allIds(store, bySite)).length, DEVICES / 50);
    await store.query.addIndex('tags', ['n'], '2026-01-01T00:00:00Z');
    assert.match(plan(store, rows(eq(tag('n'), 42))), SEARCH);
    assert.deepEqual(await allIds(store, rows(eq(tag('n'), 42))), ['dev00042']);
    await store.query.removeIndex('tags', ['site']);
    assert.doesNotMatch(plan(store, bySite), /qx_/);
  } finally {
    await store.close();
  }
});

test('GROUP BY on a declared path reads the index in group order (no sort of the rows)', async () => {
  const store = await fleet();
  try {
    const fw = doc('reported', 'fw');
    const byFw = aggregate([{ kind: 'group', field: { kind: 'document', document: 'reported', path: ['fw'] }, alias: 'fw' },
      { kind: 'aggregate', aggregate: 'count', alias: 'n' }], [fw]);
    assert.match(plan(store, byFw), /TEMP B-TREE FOR GROUP BY/);
    await store.query.addIndex('reported', ['fw'], '2026-01-01T00:00:00Z');
    const indexed = plan(store, byFw);
    assert.match(indexed, /identities USING (COVERING )?INDEX qx_[0-9a-f]{16}/);
    assert.doesNotMatch(indexed, /TEMP B-TREE FOR GROUP BY/);
    const page = await store.query.run(byFw, { limit: 10 });
    assert.deepEqual(page.rows, ['v0', 'v1', 'v2', 'v3', 'v4'].map((v) => ({ fw: v, n: DEVICES / 5 })));
  } finally {
    await store.close();
  }
});

test('a plan reading telemetry looks device_state up by its primary key; a plan that does not never joins it', async () => {
  const store = await fleet();
  try {
    const hot = rows(cmp(doc('telemetry', 'temp'), '>', 30));
    assert.match(plan(store, hot), /SEARCH device_state USING INDEX sqlite_autoindex_device_state_1 \(device_id=\? AND module_id=\?\) LEFT-JOIN/);
    assert.doesNotMatch(plan(store, hot), /MATERIALIZE|AUTOMATIC/);
    assert.doesNotMatch(plan(store, rows(eq(tag('site'), 's7'))), /device_state/);
    await store.pipeline.mergeDeviceState([{ deviceId: 'dev00007', moduleId: '', lastSeenMs: 1, values: { temp: { value: 31, timeMs: 1 } } }]);
    assert.deepEqual(await allIds(store, hot), ['dev00007']);
  } finally {
    await store.close();
  }
});
