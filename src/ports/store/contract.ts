import assert from 'node:assert/strict';
import { caCertificateCases } from './contract-ca-certificates.js';
import { c2dCases } from './contract-c2d.js';
import { jobCases } from './contract-jobs.js';
import { pipelineCases } from './contract-pipeline.js';
import type { IdentityKey, IdentityRecord, PolicyRecord, Store } from './index.js';

type TestFn = typeof import('node:test').test;

/**
 * The Store behaviour every adapter must pass. `make` gives a fresh, migrated, empty store; each test closes it.
 * With `skip`, every test is registered as skipped with that reason, so a missing engine shows in the report.
 * Ids are plain ASCII so byte order and every engine's order agree; mixed case and punctuation catch a collation
 * that is not bytewise.
 */
export function storeContract({ test, make, skip }: { test: TestFn; make: () => Promise<Store>; skip?: string }): void {
  const it = (name: string, body: (store: Store) => Promise<void>): void => {
    test(name, { skip }, async () => {
      const store = await make();
      try {
        await body(store);
      } finally {
        await store.close();
      }
    });
  };
  migrationCases(it);
  readCases(it);
  writeCases(it);
  deleteCases(it);
  batchCases(it);
  scanCases(it);
  countCases(it);
  importCases(it);
  importSessionCases(it);
  policyCases(it);
  c2dCases(it);
  caCertificateCases(it);
  jobCases(it);
  pipelineCases(it);

  it('MQTT sessions are kept by clientId, replaced on put and forgotten on delete', async (store) => {
    assert.equal(await store.mqttSessions.get('d1'), undefined);
    await store.mqttSessions.put('d1', ['c2d', 'methods'], 1);
    await store.mqttSessions.put('d1/m', [], 1);
    assert.deepEqual(await store.mqttSessions.get('d1'), ['c2d', 'methods']);
    assert.deepEqual(await store.mqttSessions.get('d1/m'), []);
    await store.mqttSessions.put('d1', ['desired'], 2);
    assert.deepEqual(await store.mqttSessions.get('d1'), ['desired']);
    await store.mqttSessions.delete('d1');
    assert.equal(await store.mqttSessions.get('d1'), undefined);
    assert.deepEqual(await store.mqttSessions.get('d1/m'), []);
  });
}

type Case = (name: string, body: (store: Store) => Promise<void>) => void;

/** A complete record with plain defaults; `over` replaces top-level fields, `twin` replaces twin fields. */
export function identityRecord(
  deviceId: string, moduleId = '', over: Partial<Omit<IdentityRecord, 'twin'>> & { twin?: Partial<IdentityRecord['twin']> } = {},
): IdentityRecord {
  const { twin, ...rest } = over;
  return {
    deviceId, moduleId,
    generationId: `gen-${deviceId}-${moduleId}`, etag: 'MQ==', status: 'enabled', statusReason: null,
    statusUpdatedTime: '0001-01-01T00:00:00Z', authType: 'sas', primaryKey: 'sealed:p', secondaryKey: 'sealed:s',
    primaryThumbprint: null, secondaryThumbprint: null, iotEdge: false, deviceScope: null, parentScopes: [],
    managedBy: null, modelId: '', connectionState: 'Disconnected', connectionStateUpdatedTime: '0001-01-01T00:00:00Z',
    lastActivityTime: '0001-01-01T00:00:00Z', c2dCount: 0,
    twin: {
      tags: {}, desired: {}, reported: {}, desiredMeta: {}, reportedMeta: {},
      desiredVersion: 1, reportedVersion: 1, version: 1, ...twin,
    },
    rev: 0,
    ...rest,
  };
}

const keyOf = (r: IdentityRecord): IdentityKey => ({ deviceId: r.deviceId, moduleId: r.moduleId });
const withRev = (r: IdentityRecord, rev: number): IdentityRecord => ({ ...r, rev });
const keys = (rs: readonly IdentityRecord[]): string[] => rs.map((r) => `${r.deviceId}/${r.moduleId}`);

async function insertAll(store: Store, records: readonly IdentityRecord[]): Promise<void> {
  for (const r of records) assert.equal(await store.identities.insert(r), true, `insert ${r.deviceId}/${r.moduleId}`);
}

/** Every field away from its default, with nested, unicode and null-bearing JSON. */
function richRecord(): IdentityRecord {
  return identityRecord('rich-Dev.1', '', {
    generationId: '638000000000000001', etag: 'ImFiYyI=', status: 'disabled', statusReason: 'stolen — «ünïcødé» 设备 🚀',
    statusUpdatedTime: '2024-05-06T07:08:09.1234567Z', authType: 'selfSigned', primaryKey: null, secondaryKey: null,
    primaryThumbprint: 'AB'.repeat(20), secondaryThumbprint: 'CD'.repeat(20), iotEdge: true,
    deviceScope: 'ms-azure-iot-edge://rich-Dev.1-123', parentScopes: ['ms-azure-iot-edge://parent-1', 'ms-azure-iot-edge://p2'],
    managedBy: 'iotEdge', modelId: 'dtmi:com:example:Thermostat;1', connectionState: 'Connected',
    connectionStateUpdatedTime: '2024-05-06T07:08:10Z', lastActivityTime: '2024-05-06T07:08:11Z', c2dCount: 42,
    twin: {
      tags: { site: 'Zürich', floors: [1, 2, { wing: 'B', labels: ['ä', '漢字'] }], owner: null, ok: true },
      desired: { telemetry: { intervalS: 30, limits: { lo: -1.5, hi: 1e6 } }, emoji: '🙂', empty: {}, none: [] },
      reported: { fw: '1.2.3', nested: { deep: { deeper: { deepest: 'x' } } }, flag: false, n: 0 },
      desiredMeta: { $lastUpdated: '2024-05-06T07:08:09Z', $lastUpdatedVersion: 7 },
      reportedMeta: { $lastUpdated: '2024-05-06T07:08:12Z', fw: { $lastUpdated: '2024-05-06T07:08:12Z' } },
      desiredVersion: 7, reportedVersion: 12, version: 19,
    },
    rev: 99,
  });
}

function migrationCases(it: Case): void {
  it('migrate run twice more keeps the schema and its data', async (store) => {
    await insertAll(store, [identityRecord('d1')]);
    await store.migrate();
    await store.migrate();
    assert.deepEqual(await store.identities.get({ deviceId: 'd1', moduleId: '' }), withRev(identityRecord('d1'), 1));
  });

  it('capabilities.skipLocked is a boolean', async (store) => {
    assert.equal(typeof store.capabilities.skipLocked, 'boolean');
  });
}

function readCases(it: Case): void {
  it('get returns every field exactly as inserted, with rev 1', async (store) => {
    const rich = richRecord();
    const plain = identityRecord('plain', '', { iotEdge: false, rev: 5 });
    const mod = identityRecord('plain', 'mod-Ä', { twin: { tags: { t: [null, 'ß'] } } });
    await insertAll(store, [rich, plain, mod]);
    assert.deepEqual(await store.identities.get(keyOf(rich)), withRev(rich, 1));
    assert.deepEqual(await store.identities.get(keyOf(plain)), withRev(plain, 1));
    assert.deepEqual(await store.identities.get(keyOf(mod)), withRev(mod, 1));
  });

  it('get of an absent key returns undefined', async (store) => {
    await insertAll(store, [identityRecord('d1', 'm1')]);
    assert.equal(await store.identities.get({ deviceId: 'd1', moduleId: '' }), undefined);
    assert.equal(await store.identities.get({ deviceId: 'D1', moduleId: 'm1' }), undefined);
  });

  it('getMany returns the present records in the order asked, skipping absent keys', async (store) => {
    const rich = richRecord();
    const a = identityRecord('a');
    await insertAll(store, [a, rich]);
    const got = await store.identities.getMany([keyOf(rich), { deviceId: 'missing', moduleId: '' }, keyOf(a)]);
    assert.deepEqual(got, [withRev(rich, 1), withRev(a, 1)]);
    assert.deepEqual(await store.identities.getMany([]), []);
  });
}

function writeCases(it: Case): void {
  it('insert of an existing key returns false and keeps the first record', async (store) => {
    const first = identityRecord('d1', '', { etag: 'first' });
    await insertAll(store, [first]);
    assert.equal(await store.identities.insert(identityRecord('d1', '', { etag: 'second' })), false);
    assert.deepEqual(await store.identities.get(keyOf(first)), withRev(first, 1));
  });

  it('replace with a stale rev returns false and changes nothing', async (store) => {
    const r = identityRecord('d1');
    await insertAll(store, [r]);
    assert.equal(await store.identities.replace({ ...r, etag: 'changed' }, 2), false);
    assert.equal(await store.identities.replace({ ...r, etag: 'changed' }, 0), false);
    assert.deepEqual(await store.identities.get(keyOf(r)), withRev(r, 1));
  });

  it('replace with the stored rev writes every field but presence and C2D count, and bumps rev by one', async (store) => {
    const r = identityRecord('rich-Dev.1');
    await insertAll(store, [r]);
    const next = richRecord();
    assert.equal(await store.identities.replace(next, 1), true);
    assert.deepEqual(await store.identities.get(keyOf(r)), {
      ...withRev(next, 2), connectionState: r.connectionState, connectionStateUpdatedTime: r.connectionStateUpdatedTime,
      lastActivityTime: r.lastActivityTime, c2dCount: r.c2dCount,
    });
    assert.equal(await store.identities.replace({ ...next, etag: 'third' }, 2), true);
    assert.equal((await store.identities.get(keyOf(r)))?.rev, 3);
  });

  it('replace of an absent key returns false and inserts nothing', async (store) => {
    assert.equal(await store.identities.replace(identityRecord('ghost'), 1), false);
    assert.equal(await store.identities.get({ deviceId: 'ghost', moduleId: '' }), undefined);
  });
}

function deleteCases(it: Case): void {
  it('delete of a device removes its modules and nothing else', async (store) => {
    await insertAll(store, [identityRecord('d1'), identityRecord('d1', 'm1'), identityRecord('d1', 'm2'),
      identityRecord('d10'), identityRecord('d10', 'm1')]);
    assert.equal(await store.identities.delete({ deviceId: 'd1', moduleId: '' }), true);
    const left = await store.identities.scan({ scope: 'all', limit: 100 });
    assert.deepEqual(keys(left), ['d10/', 'd10/m1']);
  });

  it('delete of a module leaves its device and sibling modules', async (store) => {
    await insertAll(store, [identityRecord('d1'), identityRecord('d1', 'm1'), identityRecord('d1', 'm2')]);
    assert.equal(await store.identities.delete({ deviceId: 'd1', moduleId: 'm1' }), true);
    assert.deepEqual(keys(await store.identities.scan({ scope: 'all', limit: 100 })), ['d1/', 'd1/m2']);
  });

  it('delete with a mismatched expectedRev returns false and keeps the record and its modules', async (store) => {
    await insertAll(store, [identityRecord('d1'), identityRecord('d1', 'm1')]);
    assert.equal(await store.identities.delete({ deviceId: 'd1', moduleId: '' }, 2), false);
    assert.equal(await store.identities.delete({ deviceId: 'd1', moduleId: 'm1' }, 7), false);
    assert.deepEqual(keys(await store.identities.scan({ scope: 'all', limit: 100 })), ['d1/', 'd1/m1']);
    assert.equal(await store.identities.delete({ deviceId: 'd1', moduleId: '' }, 1), true);
    assert.deepEqual(await store.identities.scan({ scope: 'all', limit: 100 }), []);
  });

  it('delete of an absent key returns false', async (store) => {
    assert.equal(await store.identities.delete({ deviceId: 'nobody', moduleId: '' }), false);
    assert.equal(await store.identities.delete({ deviceId: 'nobody', moduleId: 'm' }, 1), false);
  });
}

function batchCases(it: Case): void {
  it('applyBatch applies ops in order and reports each one', async (store) => {
    const b = identityRecord('b');
    await insertAll(store, [b, identityRecord('b', 'm'), identityRecord('c')]);
    const a = identityRecord('a');
    const results = await store.identities.applyBatch([
      { kind: 'insert', record: a },
      { kind: 'insert', record: { ...a, etag: 'dup' } },
      { kind: 'replace', record: { ...a, etag: 'second' }, expectedRev: 1 },
      { kind: 'replace', record: { ...b, etag: 'stale' }, expectedRev: 5 },
      { kind: 'delete', key: keyOf(b) },
      { kind: 'delete', key: { deviceId: 'c', moduleId: '' }, expectedRev: 3 },
      { kind: 'insert', record: b },
    ]);
    assert.deepEqual(results, [true, false, true, false, true, false, true]);
    assert.deepEqual(await store.identities.get(keyOf(a)), { ...a, etag: 'second', rev: 2 });
    assert.deepEqual(await store.identities.get(keyOf(b)), withRev(b, 1));
    assert.deepEqual(keys(await store.identities.scan({ scope: 'all', limit: 100 })), ['a/', 'b/', 'c/']);
  });

  it('applyBatch of no ops returns no results', async (store) => {
    assert.deepEqual(await store.identities.applyBatch([]), []);
  });

  it('applyBatch that fails part-way applies none of its ops', async (store) => {
    const keep = identityRecord('keep');
    await insertAll(store, [keep]);
    // A null in a NOT NULL column is the one failure every engine raises mid-batch; core never sends it.
    const broken = { ...identityRecord('broken'), generationId: null } as unknown as IdentityRecord;
    await assert.rejects(store.identities.applyBatch([
      { kind: 'insert', record: identityRecord('new') },
      { kind: 'delete', key: keyOf(keep) },
      { kind: 'insert', record: broken },
    ]));
    assert.deepEqual(keys(await store.identities.scan({ scope: 'all', limit: 100 })), ['keep/']);
  });
}

/** Devices with modules, inserted out of order; ids chosen so byte order differs from dictionary order. */
function scanFixture(): IdentityRecord[] {
  const devices = ['b', 'B', 'a-1', 'a.1', 'a_1', 'a', 'A', '0', 'Z', 'aa', 'z'];
  const modules: [string, string][] = [['a', 'mB'], ['a', 'ma'], ['a', 'mA'], ['Z', 'x'], ['b', '_'], ['b', '-']];
  return [...devices.map((d) => identityRecord(d)), ...modules.map(([d, m]) => identityRecord(d, m))];
}

const byteOrder = (x: IdentityRecord, y: IdentityRecord): number =>
  x.deviceId !== y.deviceId ? (x.deviceId < y.deviceId ? -1 : 1) : x.moduleId < y.moduleId ? -1 : x.moduleId > y.moduleId ? 1 : 0;

async function scanPaged(store: Store, scope: 'devices' | 'modules' | 'all', limit: number, deviceId?: string): Promise<string[]> {
  const seen: string[] = [];
  let after: IdentityKey | undefined;
  for (;;) {
    const page = await store.identities.scan({ scope, deviceId, after, limit });
    assert.ok(page.length <= limit, `page of ${page.length} over limit ${limit}`);
    seen.push(...keys(page));
    if (page.length < limit) return seen;
    after = keyOf(page[page.length - 1]);
  }
}

function scanCases(it: Case): void {
  it('scan of devices pages in byte order of deviceId and leaves modules out', async (store) => {
    const all = scanFixture();
    await insertAll(store, all);
    const expected = keys(all.filter((r) => r.moduleId === '').sort(byteOrder));
    assert.deepEqual(expected.slice(0, 4), ['0/', 'A/', 'B/', 'Z/']);
    assert.deepEqual(await scanPaged(store, 'devices', 3), expected);
    assert.deepEqual(await scanPaged(store, 'devices', 100), expected);
    const first = await store.identities.scan({ scope: 'devices', limit: 1 });
    assert.deepEqual(first, [withRev(identityRecord('0'), 1)]);
  });

  it('scan of modules returns only that device\'s modules, in byte order', async (store) => {
    const all = scanFixture();
    await insertAll(store, all);
    assert.deepEqual(await scanPaged(store, 'modules', 2, 'a'), ['a/mA', 'a/mB', 'a/ma']);
    assert.deepEqual(await scanPaged(store, 'modules', 2, 'b'), ['b/-', 'b/_']);
    assert.deepEqual(await scanPaged(store, 'modules', 2, 'B'), []);
    assert.deepEqual(await scanPaged(store, 'modules', 2, 'nobody'), []);
  });

  it('scan of all interleaves devices and modules in (deviceId, moduleId) byte order', async (store) => {
    const all = scanFixture();
    await insertAll(store, all);
    const expected = keys([...all].sort(byteOrder));
    for (const limit of [1, 2, 5, 100]) assert.deepEqual(await scanPaged(store, 'all', limit), expected, `limit ${limit}`);
  });

  it('scan after a key that is not stored starts at the next key', async (store) => {
    await insertAll(store, scanFixture());
    const page = await store.identities.scan({ scope: 'all', after: { deviceId: 'a', moduleId: 'mC' }, limit: 3 });
    assert.deepEqual(keys(page), ['a/ma', 'a-1/', 'a.1/']);
    const tail = await store.identities.scan({ scope: 'devices', after: { deviceId: 'zz', moduleId: '' }, limit: 3 });
    assert.deepEqual(tail, []);
  });
}

function countCases(it: Case): void {
  it('counts covers devices only', async (store) => {
    assert.deepEqual(await store.identities.counts(), { total: 0, enabled: 0, disabled: 0, connected: 0 });
    await insertAll(store, [
      identityRecord('d1'), identityRecord('d2', '', { status: 'disabled' }),
      identityRecord('d3', '', { connectionState: 'Connected' }),
      identityRecord('d4', '', { status: 'disabled', connectionState: 'Connected' }),
      identityRecord('d1', 'm1', { connectionState: 'Connected' }), identityRecord('d1', 'm2', { status: 'disabled' }),
    ]);
    assert.deepEqual(await store.identities.counts(), { total: 4, enabled: 2, disabled: 2, connected: 2 });
  });
}

function importCases(it: Case): void {
  it('import commit inserts new records and overwrites existing ones but generation id, presence, C2D count and rev', async (store) => {
    const live = identityRecord('old', '', {
      connectionState: 'Connected', connectionStateUpdatedTime: '2024-01-01T00:00:00Z',
      lastActivityTime: '2024-01-02T00:00:00Z', c2dCount: 9, etag: 'live',
    });
    await insertAll(store, [live]);
    await store.identities.replace(live, 1);
    const imported = { ...richRecord(), deviceId: 'old' };
    const fresh = identityRecord('new', '', { twin: { tags: { a: { b: [1, 'ü'] } } } });
    const session = await store.identities.beginImport();
    await session.stage([imported, fresh], []);
    assert.deepEqual(await store.identities.get(keyOf(fresh)), undefined);
    assert.deepEqual(await store.identities.get(keyOf(live)), withRev(live, 2));
    assert.deepEqual(await session.commit(), { upserted: 2, deleted: 0 });
    assert.deepEqual(await store.identities.get(keyOf(fresh)), withRev(fresh, 1));
    assert.deepEqual(await store.identities.get(keyOf(live)), {
      ...imported, generationId: live.generationId, connectionState: live.connectionState,
      connectionStateUpdatedTime: live.connectionStateUpdatedTime, lastActivityTime: live.lastActivityTime,
      c2dCount: live.c2dCount, rev: 3,
    });
  });

  it('import commit deletes staged keys, a device key with its modules, before upserting', async (store) => {
    await insertAll(store, [identityRecord('d1'), identityRecord('d1', 'm1'), identityRecord('d1', 'm2'),
      identityRecord('d2'), identityRecord('d2', 'm1'), identityRecord('d2', 'm2'), identityRecord('d3')]);
    const session = await store.identities.beginImport();
    await session.stage([], [{ deviceId: 'd1', moduleId: '' }, { deviceId: 'd2', moduleId: 'm1' }]);
    await session.stage([identityRecord('d3', '', { etag: 'imported' })], [{ deviceId: 'd3', moduleId: '' }]);
    assert.equal((await store.identities.scan({ scope: 'all', limit: 100 })).length, 7);
    assert.deepEqual(await session.commit(), { upserted: 1, deleted: 5 });
    assert.deepEqual(keys(await store.identities.scan({ scope: 'all', limit: 100 })), ['d2/', 'd2/m2', 'd3/']);
    assert.deepEqual(await store.identities.get({ deviceId: 'd3', moduleId: '' }),
      withRev(identityRecord('d3', '', { etag: 'imported' }), 1));
  });
}

function importSessionCases(it: Case): void {
  it('import of a key staged twice keeps the last staged record', async (store) => {
    const session = await store.identities.beginImport();
    await session.stage([identityRecord('d1', '', { etag: 'one' })], []);
    await session.stage([identityRecord('d1', '', { etag: 'two' })], []);
    await session.commit();
    assert.equal((await store.identities.get({ deviceId: 'd1', moduleId: '' }))?.etag, 'two');
  });

  it('import abort leaves the registry untouched and drops what was staged', async (store) => {
    const r = identityRecord('d1');
    await insertAll(store, [r, identityRecord('d1', 'm1')]);
    const session = await store.identities.beginImport();
    await session.stage([identityRecord('d2'), { ...r, etag: 'imported' }], [{ deviceId: 'd1', moduleId: 'm1' }]);
    await session.abort();
    assert.deepEqual(keys(await store.identities.scan({ scope: 'all', limit: 100 })), ['d1/', 'd1/m1']);
    assert.deepEqual(await session.commit(), { upserted: 0, deleted: 0 });
    assert.deepEqual(await store.identities.get(keyOf(r)), withRev(r, 1));
  });

  it('import sessions are isolated from each other', async (store) => {
    const one = await store.identities.beginImport();
    const two = await store.identities.beginImport();
    await one.stage([identityRecord('one')], []);
    await two.stage([identityRecord('two')], []);
    assert.deepEqual(await one.commit(), { upserted: 1, deleted: 0 });
    assert.deepEqual(keys(await store.identities.scan({ scope: 'all', limit: 100 })), ['one/']);
    await two.abort();
    assert.deepEqual(keys(await store.identities.scan({ scope: 'all', limit: 100 })), ['one/']);
  });

  it('import stages and commits a batch larger than one statement holds', async (store) => {
    const many = Array.from({ length: 5000 }, (_, i) => identityRecord(`dev-${String(i).padStart(5, '0')}`, '', { c2dCount: i }));
    const session = await store.identities.beginImport();
    await session.stage(many, many.slice(0, 3000).map(keyOf));
    assert.deepEqual(await session.commit(), { upserted: 5000, deleted: 0 });
    assert.deepEqual(await store.identities.counts(), { total: 5000, enabled: 5000, disabled: 0, connected: 0 });
    const page = await store.identities.scan({ scope: 'devices', after: keyOf(many[4997]), limit: 10 });
    assert.deepEqual(page, [withRev(many[4998], 1), withRev(many[4999], 1)]);
  });
}

function policy(name: string, rights: string[], key = 'k'): PolicyRecord {
  return { name, rights, primaryKey: `sealed:${key}1`, secondaryKey: `sealed:${key}2` };
}

function policyCases(it: Case): void {
  it('policies insertMissing adds new names, keeps existing ones as they are, list sorts by name', async (store) => {
    assert.deepEqual(await store.policies.list(), []);
    await store.policies.insertMissing([policy('service', ['ServiceConnect']), policy('iothubowner', ['RegistryWrite', 'ServiceConnect'])]);
    await store.policies.insertMissing([
      policy('service', ['RegistryRead'], 'other'), policy('Zeta', []), policy('device', ['DeviceConnect']),
    ]);
    assert.deepEqual(await store.policies.list(), [
      policy('Zeta', []), policy('device', ['DeviceConnect']),
      policy('iothubowner', ['RegistryWrite', 'ServiceConnect']), policy('service', ['ServiceConnect']),
    ]);
  });
}
