import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { identityRecord } from './contract.js';
import { COLUMN_CASES, COMPARISON_CASES, FUNCTION_CASES, INJECTION_CASES, LOGIC_CASES, type FilterCase } from './contract-query-cases.js';
import {
  INJECTION, T, TELEMETRY, allIds, allPages, cmp, col, doc, eq, idsOf, isIn, jobCol, rows, seed, seedTelemetry, seededDevices, tag,
} from './contract-query-data.js';
import { AGGREGATE_CASES, ORDER_CASES, aggregate, ordered } from './contract-query-pages.js';
import type { JsonObject, Store } from './index.js';
import { QueryCursorInvalid, type QueryPlan } from './query.js';

type TestFn = typeof import('node:test').test;

/** A fresh, migrated, empty store, and a way to write what no port writes yet (devices.jobs rows). */
export interface QueryFixture {
  readonly store: Store;
  /** Runs SQL both engines accept, values written as literals, on the store's database. */
  exec(sql: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * The QueryStore behaviour every adapter must pass: the same plans give the same rows, in the same order, on every
 * engine. Cases over the seeded registry (contract-query-data.ts) run as subtests of one test per family, so the
 * registry is built once per family; cases that write get a store of their own.
 */
export function queryContract({ test, make, skip }: { test: TestFn; make: () => Promise<QueryFixture>; skip?: string }): void {
  const withStore = (name: string, body: (t: TestContext, fixture: QueryFixture) => Promise<void>, seeded = true): void => {
    test(name, { skip }, async (t) => {
      const fixture = await make();
      try {
        if (seeded) await seed(fixture.store, fixture.exec);
        await body(t, fixture);
      } finally {
        await fixture.close();
      }
    });
  };
  const filters = (name: string, cases: readonly FilterCase[]): void => withStore(`query filters: ${name}`, async (t, { store }) => {
    for (const [caseName, plan, ids] of cases) await t.test(caseName, async () => assert.deepEqual(await allIds(store, plan), ids));
  });
  filters('comparisons across JSON types', COMPARISON_CASES);
  filters('three-valued logic, IN and NIN', LOGIC_CASES);
  filters('functions and arithmetic', FUNCTION_CASES);
  filters('columns, documents and collections', COLUMN_CASES);
  filters('literals and paths holding SQL are data', INJECTION_CASES);
  withStore('query aggregates, whole and in pages', aggregateCases);
  withStore('query order keys, whole and in pages of 3', orderCases);
  withStore('query TOP and page ends', topCases);
  withStore('query rows are whole records', recordCases);
  withStore('query telemetry: device_state joined where a plan reads it, projected beside the twin', telemetryCases);
  withStore('query cursors that do not fit the plan are refused', cursorCases);
  withStore('query plans the checker refuses are refused', refusedCases);
  withStore('query paging stays exact while rows are written between pages', (_, f) => writesBetweenPages(f.store), false);
  withStore('query indexes are declared, listed and removed idempotently', (_, f) => indexCases(f.store), false);
  withStore('query injection attempts leave every table intact', injectionIntact);
}

async function aggregateCases(t: TestContext, { store }: QueryFixture): Promise<void> {
  for (const [name, plan, expected] of AGGREGATE_CASES) {
    await t.test(name, async () => {
      const whole = await allPages(store, plan, 1000);
      assert.deepEqual(whole.flatMap((p) => (p.kind === 'values' ? p.rows : [])), expected);
      assert.ok(whole.every((p) => p.kind === 'values'));
      if (!plan.groupBy) return;
      const paged = (await allPages(store, plan, 3)).flatMap((p) => (p.kind === 'values' ? p.rows : []));
      assert.deepEqual(paged, expected, 'groups paged 3 at a time');
    });
  }
}

async function orderCases(t: TestContext, { store }: QueryFixture): Promise<void> {
  for (const [name, plan, expected] of ORDER_CASES) {
    await t.test(name, async () => {
      assert.deepEqual(await allIds(store, plan), expected);
      assert.deepEqual(await allIds(store, plan, 3), expected, 'paged 3 at a time');
    });
  }
}

async function topCases(t: TestContext, { store }: QueryFixture): Promise<void> {
  const byV = ordered([[tag('v'), 'asc']], eq(tag('g'), 'zoo'));
  const firstFive = ['d06', 'd05', 'd04', 'd03', 'd12'];
  await t.test('TOP caps the page; with room left the caller passes the rest of TOP to the next page', async () => {
    const first = await store.query.run({ ...byV, top: 5 }, { limit: 3 });
    assert.deepEqual(idsOf(first), firstFive.slice(0, 3));
    assert.ok(first.after);
    const second = await store.query.run({ ...byV, top: 2 }, { limit: 3, after: first.after });
    assert.deepEqual(idsOf(second), firstFive.slice(3));
    assert.equal(second.after, undefined);
  });
  await t.test('TOP equal to the page size gives no after; TOP 0 gives nothing', async () => {
    const page = await store.query.run({ ...byV, top: 3 }, { limit: 3 });
    assert.equal(page.rows.length, 3);
    assert.equal(page.after, undefined);
    const none = await store.query.run({ ...byV, top: 0 }, { limit: 3 });
    assert.deepEqual([none.rows.length, none.after], [0, undefined]);
    const noGroups = await store.query.run({ ...aggregate([{ kind: 'aggregate', aggregate: 'count', alias: 'n' }]), top: 0 }, { limit: 3 });
    assert.deepEqual(noGroups.rows, []);
  });
  await t.test('TOP over groups', async () => {
    const plan = { ...aggregate([{ kind: 'aggregate', aggregate: 'count', alias: 'n' }], [tag('v')], eq(tag('g'), 'zoo')), top: 2 };
    const page = await store.query.run(plan, { limit: 10 });
    assert.deepEqual(page.rows, [{ n: 1 }, { n: 1 }]);
    assert.equal(page.after, undefined);
  });
  await t.test('a page of exactly the remaining rows has after; the next is empty', async () => {
    const pages = await allPages(store, rows(eq(tag('v'), 10)), 2);
    assert.deepEqual(pages.map(idsOf), [['d01', 'd15'], []]);
  });
}

async function recordCases(t: TestContext, { store }: QueryFixture): Promise<void> {
  await t.test('device rows are whole identity records', async () => {
    const page = await store.query.run(rows(eq(col('deviceId'), 'd12')), { limit: 10 });
    assert.equal(page.kind, 'identities');
    assert.deepEqual(page.rows, [{ ...seededDevices()[11], rev: 1 }]);
    const paths = await store.query.run({ collection: 'devices', select: { kind: 'paths', items: [{ kind: 'path', path: ['deviceId'], alias: 'deviceId' }] }, where: eq(col('deviceId'), 'd01') }, { limit: 10 });
    assert.deepEqual(idsOf(paths), ['d01'], 'a projection gets whole records too (core projects them)');
  });
  await t.test('devices.jobs rows are DeviceJobRecords', async () => {
    const page = await store.query.run(rows(eq(jobCol('jobId'), 'j1'), 'jobs'), { limit: 2 });
    assert.equal(page.kind, 'jobs');
    assert.deepEqual(page.rows, [
      {
        jobId: 'j1', deviceId: 'd01', moduleId: '', jobType: 'scheduleDeviceMethod', status: 'completed', createdDateTimeUtc: T.jan,
        startTimeUtc: '2026-01-01T00:00:01Z', endTimeUtc: '2026-01-01T00:00:02Z', lastUpdatedDateTimeUtc: '2026-01-01T00:00:02Z',
        outcome: { deviceMethodResponse: { status: 200, payload: { ok: true } } }, error: null,
      },
      {
        jobId: 'j1', deviceId: 'd02', moduleId: '', jobType: 'scheduleDeviceMethod', status: 'failed', createdDateTimeUtc: T.jan,
        startTimeUtc: '2026-01-01T00:00:01Z', endTimeUtc: '2026-01-01T00:00:05Z', lastUpdatedDateTimeUtc: '2026-01-01T00:00:05Z',
        outcome: null, error: { code: 'DeviceNotOnline', description: 'offline' },
      },
    ]);
  });
}

async function telemetryCases(t: TestContext, { store }: QueryFixture): Promise<void> {
  await seedTelemetry(store);
  const temp = doc('telemetry', 'temp');
  const at = (iso: string): JsonObject => ({ $lastUpdated: iso });
  await t.test('rows of a plan filtering on telemetry are whole identity records, without telemetry', async () => {
    const page = await store.query.run(rows(cmp(temp, '>', 22)), { limit: 10 });
    assert.equal(page.kind, 'identities');
    assert.deepEqual(page, { kind: 'identities', rows: [{ ...seededDevices()[1], rev: 1 }, { ...seededDevices()[3], rev: 1 }] });
  });
  await t.test('a projection of telemetry gets each row’s documents, null for a device without telemetry', async () => {
    const items = [{ kind: 'path', path: ['deviceId'], alias: 'deviceId' }, { kind: 'path', path: ['telemetry', 'temp'], alias: 'temp' }] as const;
    const plan: QueryPlan = { collection: 'devices', select: { kind: 'paths', items }, where: isIn(col('deviceId'), ['d01', 'd06']) };
    const page = await store.query.run(plan, { limit: 10 });
    assert.equal(page.kind, 'identities');
    assert.deepEqual(idsOf(page), ['d01', 'd06']);
    const march = at('2026-03-01T00:00:00.000Z');
    assert.deepEqual(page.telemetry, [
      { values: TELEMETRY.d01, meta: { temp: march, fw: march, on: march, arr: march, pos: march } },
      null,
    ]);
  });
  await t.test('a projection without telemetry paths carries no telemetry', async () => {
    const plan: QueryPlan = { collection: 'devices', select: { kind: 'paths', items: [{ kind: 'path', path: ['deviceId'], alias: 'deviceId' }] }, where: cmp(temp, '>', 22) };
    const page = await store.query.run(plan, { limit: 10 });
    assert.ok(page.kind === 'identities' && page.telemetry === undefined);
  });
  await t.test('a devices condition compiled into another statement reads telemetry too (overdue devices)', async () => {
    const overdue = await store.pipeline.overdueDevices({
      where: cmp(temp, '>', 22), heartbeat: { seconds: 60 }, nowMs: Date.parse('2030-01-01T00:00:00Z'), sinceMs: 0, onlyHealthy: false, limit: 10,
    });
    assert.deepEqual(overdue, [{ deviceId: 'd02', moduleId: '' }, { deviceId: 'd04', moduleId: '' }]);
  });
}

async function cursorCases(t: TestContext, { store }: QueryFixture): Promise<void> {
  const refused = async (plan: QueryPlan, after: unknown): Promise<void> => {
    await assert.rejects(store.query.run(plan, { limit: 3, after: after as never }), QueryCursorInvalid);
  };
  const plain = rows(eq(tag('g'), 'zoo'));
  const byV = ordered([[tag('v'), 'asc']]);
  await t.test('too few or too many values', async () => {
    await refused(plain, ['d01']);
    await refused(plain, ['d01', '', 'x']);
    await refused(byV, ['d01', '']);
  });
  await t.test('values of the wrong kind', async () => {
    await refused(plain, [1, '']);
    await refused(plain, ['d01', null]);
    await refused(byV, [3.5, 0, '', 'd01', '']);
    await refused(byV, ['3', 0, '', 'd01', '']);
    await refused(byV, [3, {}, '', 'd01', '']);
  });
  await t.test('not an array', async () => {
    await refused(plain, 'd01');
  });
  await t.test('a cursor on a query with a single page', async () => {
    await refused(aggregate([{ kind: 'aggregate', aggregate: 'count', alias: 'n' }]), []);
  });
  await t.test('a cursor from another query', async () => {
    const first = await store.query.run(byV, { limit: 3 });
    assert.ok(first.after);
    await refused(plain, first.after);
    await refused(aggregate([{ kind: 'aggregate', aggregate: 'count', alias: 'n' }], [col('status')]), first.after);
  });
  await t.test('a well-formed cursor past the end gives an empty page', async () => {
    const page = await store.query.run(byV, { limit: 3, after: [9, 0, '', 'zz', ''] });
    assert.deepEqual([page.rows.length, page.after], [0, undefined]);
  });
}

async function refusedCases(t: TestContext, { store }: QueryFixture): Promise<void> {
  await t.test('a twin field in devices.jobs', async () => {
    await assert.rejects(store.query.run(rows(eq(tag('v'), 1), 'jobs'), { limit: 3 }), /devices\.jobs rows have no tags document/);
    await assert.rejects(store.query.run(rows(eq(col('status'), 'x'), 'jobs'), { limit: 3 }), /no twin column/);
  });
  await t.test('telemetry in devices.jobs', async () => {
    await assert.rejects(store.query.run(rows(eq(doc('telemetry', 't'), 1), 'jobs'), { limit: 3 }), /devices\.jobs rows have no telemetry document/);
  });
  await t.test('a job column in devices', async () => {
    await assert.rejects(store.query.run(rows(eq(jobCol('jobId'), 'j1')), { limit: 3 }), /no job column/);
  });
  await t.test('a page limit below 1', async () => {
    await assert.rejects(store.query.run(rows(), { limit: 0 }), RangeError);
  });
}

/**
 * Keyset paging reads each row at most once, and every row that was there throughout, whatever is inserted,
 * updated or deleted between pages (an update that leaves the order keys as they were).
 */
async function writesBetweenPages(store: Store): Promise<void> {
  const ids = Array.from({ length: 20 }, (_, i) => `d${String(i + 1).padStart(2, '0')}`);
  for (const [i, id] of ids.entries()) assert.ok(await store.identities.insert(identityRecord(id, '', { twin: { tags: { n: i % 3 } } })));
  for (const plan of [rows(), ordered([[tag('n'), 'desc']])]) {
    const first = await store.query.run(plan, { limit: 3 });
    const seen = idsOf(first);
    const read = new Set(seen);
    const unread = ids.filter((id) => !read.has(id) && (plan.orderBy !== undefined || id > 'd05'));
    const [deleted, updated] = [unread[2], unread[4]];
    // Inserted ahead of the cursor in key order ('p-new' > 'd…') and behind it ('d00' < 'd01'); new ids each round.
    const [ahead, behind] = plan.orderBy ? ['o-new', 'c00'] : ['p-new', 'd00'];
    assert.ok(await store.identities.insert(identityRecord(ahead, '', { twin: { tags: { n: 1 } } })));
    assert.ok(await store.identities.insert(identityRecord(behind, '', { twin: { tags: { n: 5 } } })));
    assert.ok(await store.identities.delete({ deviceId: deleted, moduleId: '' }));
    const current = await store.identities.get({ deviceId: updated, moduleId: '' });
    assert.ok(current);
    assert.ok(await store.identities.replace({ ...current, twin: { ...current.twin, reported: { changed: true } } }, current.rev));
    let after = first.after;
    while (after) {
      const page = await store.query.run(plan, { limit: 3, after });
      seen.push(...idsOf(page));
      after = page.after;
    }
    assert.equal(new Set(seen).size, seen.length, `no row twice: ${seen.join(' ')}`);
    for (const id of ids) if (id !== deleted) assert.ok(seen.includes(id), `${id} was there throughout and was read`);
    assert.ok(!seen.includes(deleted), 'a row deleted before it was reached is not read');
    if (!plan.orderBy) assert.ok(!seen.includes('d00') && seen.includes('p-new'), 'rows inserted behind the cursor are not read, ahead of it are');
    // Put the deleted row back for the next plan.
    assert.ok(await store.identities.insert(identityRecord(deleted, '', { twin: { tags: { n: ids.indexOf(deleted) % 3 } } })));
  }
}

async function indexCases(store: Store): Promise<void> {
  for (const [id, site] of [['a1', 'paris'], ['a2', 'lyon'], ['a3', 'paris']]) {
    assert.ok(await store.identities.insert(identityRecord(id, '', { twin: { tags: { site, [INJECTION]: site } } })));
  }
  const q = store.query;
  assert.deepEqual(await q.listIndexes(), []);
  assert.equal(await q.addIndex('tags', ['site'], T.jan), true);
  assert.equal(await q.addIndex('tags', ['site'], T.feb), false, 'a second declaration changes nothing');
  assert.equal(await q.addIndex('reported', ['fw', 'version'], T.feb), true);
  assert.deepEqual(await q.listIndexes(), [
    { document: 'tags', path: ['site'], createdTime: T.jan },
    { document: 'reported', path: ['fw', 'version'], createdTime: T.feb },
  ]);
  assert.deepEqual(await allIds(store, rows(eq(tag('site'), 'paris'))), ['a1', 'a3'], 'the indexed path answers as before');
  assert.equal(await q.removeIndex('tags', ['site']), true);
  assert.equal(await q.removeIndex('tags', ['site']), false, 'removing an index not declared changes nothing');
  assert.deepEqual(await q.listIndexes(), [{ document: 'reported', path: ['fw', 'version'], createdTime: T.feb }]);
  assert.equal(await q.addIndex('tags', ['site'], T.mar), true, 'an index can be declared again');
  assert.equal(await q.addIndex('tags', [INJECTION], T.mar), true, 'a path segment holding SQL is data');
  assert.deepEqual(await allIds(store, rows(eq(tag(INJECTION), 'lyon'))), ['a2']);
  assert.equal(await q.removeIndex('tags', [INJECTION]), true);
  await assert.rejects(q.addIndex('tags', [], T.mar), /not the whole document/);
  await assert.rejects(q.addIndex('bogus' as never, ['x'], T.mar), /not a twin document/);
  await assert.rejects(q.addIndex('telemetry', ['temp'], T.mar), /not a twin document/);
  assert.deepEqual(await allIds(store, rows(eq(doc('reported', 'fw', 'version'), 1))), []);
  assert.equal((await store.identities.counts()).total, 3, 'the registry is intact');
}

async function injectionIntact(_: TestContext, { store }: QueryFixture): Promise<void> {
  for (const [, plan] of INJECTION_CASES) await store.query.run(plan, { limit: 10 });
  assert.equal((await store.identities.scan({ scope: 'all', limit: 100 })).length, 40);
  assert.equal((await allIds(store, rows(undefined, 'jobs'))).length, 7);
}
