import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ArgumentInvalid, CorralError } from '../errors/index.js';
import { IOT_HUB_TWIN_LIMITS, Twins } from '../twins/index.js';
import { ManualClock } from '../../ports/clock/index.js';
import { AesGcmKeyRing } from '../../ports/keyring/index.js';
import type { IdentityKey, IdentityRecord } from '../../ports/store/index.js';
import { SqliteStore } from '../../ports/store/sqlite/index.js';
import { BulkRegistry, Registry, RegistryTransfer, parseIdentitySpec, type BulkResult } from './index.js';

const LIMITS = IOT_HUB_TWIN_LIMITS;
const SAS = parseIdentitySpec({});
const dev = (deviceId: string): IdentityKey => ({ deviceId, moduleId: '' });
const mod = (deviceId: string, moduleId: string): IdentityKey => ({ deviceId, moduleId });

async function hub(t: TestContext) {
  const store = SqliteStore.open(':memory:');
  await store.migrate();
  t.after(() => store.close());
  const keyring = new AesGcmKeyRing(randomBytes(32));
  const clock = new ManualClock();
  const registry = new Registry({ store, keyring, clock });
  const deps = { store, keyring, clock, registry, limits: LIMITS };
  return {
    ...deps,
    bulk: new BulkRegistry(deps),
    transfer: new RegistryTransfer(deps),
    twins: new Twins({ store, clock, limits: LIMITS }),
  };
}

async function* linesOf(lines: readonly string[]): AsyncGenerator<string> {
  yield* lines;
}

async function rejectsWith(promise: Promise<unknown>, code: number, pattern?: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof CorralError, `expected a CorralError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (pattern) assert.match(err.message, pattern);
    return true;
  });
}

function errorCodes(result: BulkResult): Record<string, string> {
  return Object.fromEntries(result.errors.map((e) => [e.moduleId ? `${e.deviceId}/${e.moduleId}` : e.deviceId, e.errorCode]));
}

test('create generates two distinct 32-byte keys and stores them sealed', async (t) => {
  const { registry, store, keyring } = await hub(t);
  const created = await registry.create(dev('d1'), SAS);
  const raw = await store.identities.get(dev('d1'));
  assert.ok(raw?.primaryKey && raw.secondaryKey);
  const primary = keyring.open(raw.primaryKey);
  const secondary = keyring.open(raw.secondaryKey);
  assert.equal(Buffer.from(primary, 'base64').length, 32);
  assert.equal(Buffer.from(secondary, 'base64').length, 32);
  assert.notEqual(primary, secondary);
  for (const [sealed, clear] of [[raw.primaryKey, primary], [raw.secondaryKey, secondary]]) {
    assert.ok(sealed.startsWith('v1:'));
    assert.equal(sealed.includes(clear), false);
  }
  assert.equal(created.status, 'enabled');
  assert.deepEqual([created.twin.version, created.twin.desiredVersion, created.twin.reportedVersion], [1, 1, 1]);
});

test('create keeps given keys, sealed', async (t) => {
  const { registry, keyring } = await hub(t);
  const primaryKey = randomBytes(32).toString('base64');
  const r = await registry.create(dev('d1'), parseIdentitySpec({ authentication: { symmetricKey: { primaryKey } } }));
  assert.equal(keyring.open(r.primaryKey ?? ''), primaryKey);
});

test('creating a device twice fails with DeviceAlreadyExists (409001), a module twice with 409301', async (t) => {
  const { registry } = await hub(t);
  await registry.create(dev('d1'), SAS);
  await rejectsWith(registry.create(dev('d1'), SAS), 409001, /'d1'/);
  await registry.create(mod('d1', 'm1'), SAS);
  await rejectsWith(registry.create(mod('d1', 'm1'), SAS), 409301);
});

test('creating a module of a missing device fails with 404001', async (t) => {
  const { registry, store } = await hub(t);
  await rejectsWith(registry.create(mod('ghost', 'm1'), SAS), 404001, /ghost/);
  assert.equal(await store.identities.get(mod('ghost', 'm1')), undefined);
});

test('create rejects an invalid id with ArgumentInvalid', async (t) => {
  const { registry } = await hub(t);
  await rejectsWith(registry.create(dev('a/b'), SAS), 400004);
});

test('update with a stale etag fails with 412002; with the current etag or * it applies and changes the etag', async (t) => {
  const { registry } = await hub(t);
  const created = await registry.create(dev('d1'), SAS);
  await rejectsWith(registry.update(dev('d1'), parseIdentitySpec({ status: 'disabled' }), 'c3RhbGU='), 412002);
  const u1 = await registry.update(dev('d1'), parseIdentitySpec({ status: 'disabled', statusReason: 'maint' }), created.etag);
  assert.equal(u1.status, 'disabled');
  assert.notEqual(u1.etag, created.etag);
  assert.notEqual(u1.statusUpdatedTime, created.statusUpdatedTime);
  const u2 = await registry.update(dev('d1'), parseIdentitySpec({}), '*');
  assert.notEqual(u2.etag, u1.etag);
  assert.equal(u2.primaryKey, created.primaryKey, 'keys kept when not given');
  assert.equal(u2.statusReason, 'maint');
  assert.equal((await registry.get(dev('d1'))).etag, u2.etag);
});

test('update of a missing identity fails with 404001', async (t) => {
  const { registry } = await hub(t);
  await rejectsWith(registry.update(dev('nope'), SAS, '*'), 404001);
});

test('deleting a device removes its modules; a missing one fails with 404001, a stale etag with 412002', async (t) => {
  const { registry, store } = await hub(t);
  const d = await registry.create(dev('d1'), SAS);
  await registry.create(mod('d1', 'm1'), SAS);
  await registry.create(mod('d1', 'm2'), SAS);
  await registry.create(dev('d2'), SAS);
  await rejectsWith(registry.delete(dev('d1'), 'c3RhbGU='), 412002);
  await registry.delete(dev('d1'), d.etag);
  assert.deepEqual(await store.identities.getMany([dev('d1'), mod('d1', 'm1'), mod('d1', 'm2')]), []);
  assert.ok(await store.identities.get(dev('d2')));
  await rejectsWith(registry.delete(dev('d1')), 404001);
  await rejectsWith(registry.listModules('d1'), 404001);
});

test('listDevices pages in id order after afterDeviceId and skips modules', async (t) => {
  const { registry } = await hub(t);
  for (const id of ['d3', 'd1', 'd5', 'd2', 'd4']) await registry.create(dev(id), SAS);
  await registry.create(mod('d2', 'm1'), SAS);
  const ids = (rs: IdentityRecord[]) => rs.map((r) => r.deviceId);
  assert.deepEqual(ids(await registry.listDevices(2)), ['d1', 'd2']);
  assert.deepEqual(ids(await registry.listDevices(2, 'd2')), ['d3', 'd4']);
  assert.deepEqual(ids(await registry.listDevices(2, 'd4')), ['d5']);
  assert.deepEqual(ids(await registry.listDevices(1000, 'd5')), []);
  assert.deepEqual((await registry.listModules('d2')).map((r) => r.moduleId), ['m1']);
  for (const top of [0, 1001, 1.5]) await rejectsWith(registry.listDevices(top), 400004);
});

test('statistics count devices by status, not modules', async (t) => {
  const { registry } = await hub(t);
  await registry.create(dev('a'), SAS);
  await registry.create(dev('b'), parseIdentitySpec({ status: 'disabled' }));
  await registry.create(dev('c'), SAS);
  await registry.create(mod('a', 'm'), SAS);
  assert.deepEqual(await registry.statistics(), { total: 3, enabled: 2, disabled: 1, connected: 0 });
});

test('a mixed bulk call applies the valid items and reports each failure by errorCode name', async (t) => {
  const { registry, bulk, store } = await hub(t);
  for (const id of ['exists', 'upd', 'stale', 'del']) await registry.create(dev(id), SAS);
  const result = await bulk.run([
    { id: 'fresh', importMode: 'create' },
    { id: 'exists', importMode: 'create' },
    { id: 'missing', importMode: 'update' },
    { id: 'upd', importMode: 'Update', status: 'disabled' },
    { id: 'stale', importMode: 'updateIfMatchETag', eTag: '"c3RhbGU="', status: 'disabled' },
    { id: 'del', importMode: 'delete' },
    { id: 'gone', importMode: 'delete' },
    { id: 'bad/id', importMode: 'create' },
  ]);
  assert.equal(result.isSuccessful, false);
  assert.deepEqual(errorCodes(result), {
    exists: 'DeviceAlreadyExists', missing: 'DeviceNotFound', stale: 'PreconditionFailed', gone: 'DeviceNotFound', 'bad/id': 'ArgumentInvalid',
  });
  for (const e of result.errors) assert.ok(e.errorStatus.length > 0);
  assert.ok(await store.identities.get(dev('fresh')));
  assert.equal((await store.identities.get(dev('upd')))?.status, 'disabled');
  assert.equal((await store.identities.get(dev('stale')))?.status, 'enabled');
  assert.equal(await store.identities.get(dev('del')), undefined);
});

test('a bulk call where every item applies is successful', async (t) => {
  const { bulk, store } = await hub(t);
  const result = await bulk.run([
    { id: 'd1', importMode: 'create', tags: { site: 'x' } },
    { id: 'd2', importMode: 'createOrUpdate', properties: { desired: { a: 1 } } },
  ]);
  assert.deepEqual(result, { isSuccessful: true, errors: [], warnings: [] });
  assert.deepEqual((await store.identities.get(dev('d1')))?.twin.tags, { site: 'x' });
  assert.deepEqual((await store.identities.get(dev('d2')))?.twin.desired, { a: 1 });
});

test('a bulk call with 0 or 101 items, or not an array, fails with ArgumentInvalid', async (t) => {
  const { bulk } = await hub(t);
  const many = Array.from({ length: 101 }, (_, i) => ({ id: `d${i}`, importMode: 'create' }));
  for (const body of [[], many, { id: 'd1' }]) {
    await assert.rejects(bulk.run(body), (err: unknown) => err instanceof ArgumentInvalid && /1 to 100/.test(err.message));
  }
});

test('a bulk call that deletes a device and creates a module on it leaves no orphan module', async (t) => {
  const { registry, bulk, store } = await hub(t);
  await registry.create(dev('d'), SAS);
  const result = await bulk.run([{ id: 'd', importMode: 'delete' }, { id: 'd', moduleId: 'm', importMode: 'create' }]);
  assert.equal(result.isSuccessful, false);
  assert.deepEqual(errorCodes(result), { 'd/m': 'DeviceNotFound' });
  assert.equal(await store.identities.get(mod('d', 'm')), undefined);
});

async function seed(h: Awaited<ReturnType<typeof hub>>): Promise<void> {
  await h.registry.create(dev('plain'), SAS);
  await h.registry.create(dev('edge'), parseIdentitySpec({ capabilities: { iotEdge: true }, status: 'disabled', statusReason: 'paused' }));
  await h.registry.create(mod('edge', 'edgeAgent'), parseIdentitySpec({ managedBy: 'iotEdge' }));
  await h.registry.create(dev('x509'), parseIdentitySpec({ authentication: { x509Thumbprint: { primaryThumbprint: 'AB'.repeat(20) } } }));
  await h.twins.patch(dev('plain'), { tags: { site: 'a', nested: { n: 1 } }, properties: { desired: { fw: '2.0', cfg: { hz: 5 } } } });
  await h.twins.patchReported(dev('plain'), { fw: '1.0', net: { ip: '10.0.0.1' } });
  await h.twins.patch(mod('edge', 'edgeAgent'), { properties: { desired: { image: 'x' } } });
}

async function exportAll(transfer: RegistryTransfer, withKeys: boolean): Promise<string[]> {
  const lines: string[] = [];
  for await (const line of transfer.export(withKeys)) lines.push(line);
  return lines;
}

function comparable(r: IdentityRecord, keyring: AesGcmKeyRing) {
  return {
    key: `${r.deviceId}/${r.moduleId}`, status: r.status, statusReason: r.statusReason, authType: r.authType,
    primaryKey: r.primaryKey && keyring.open(r.primaryKey), secondaryKey: r.secondaryKey && keyring.open(r.secondaryKey),
    thumbprints: [r.primaryThumbprint, r.secondaryThumbprint], iotEdge: r.iotEdge, managedBy: r.managedBy,
    tags: r.twin.tags, desired: r.twin.desired, reported: r.twin.reported,
  };
}

test('export then import into another store reproduces devices, modules, twins and keys', async (t) => {
  const a = await hub(t);
  await seed(a);
  const lines = await exportAll(a.transfer, true);
  assert.equal(lines.length, 4);
  const b = await hub(t);
  const report = await b.transfer.import(linesOf(lines));
  assert.equal(report.ok, true, JSON.stringify(report.errors));
  assert.deepEqual([report.lines, report.upserted, report.errorCount], [4, 4, 0]);
  const all = async (h: typeof a) => (await h.store.identities.scan({ scope: 'all', limit: 100 })).map((r) => comparable(r, h.keyring));
  assert.deepEqual(await all(b), await all(a));
});

test('export without keys leaves the keys out', async (t) => {
  const a = await hub(t);
  await seed(a);
  for (const line of await exportAll(a.transfer, false)) {
    const sym = (JSON.parse(line) as { authentication: { symmetricKey: Record<string, unknown> } }).authentication.symmetricKey;
    assert.deepEqual(sym, { primaryKey: null, secondaryKey: null });
  }
});

test('an import with bad lines writes nothing and reports each bad line with its errorCode', async (t) => {
  const { transfer, registry, store } = await hub(t);
  await registry.create(dev('before'), SAS);
  const report = await transfer.import(linesOf([
    JSON.stringify({ id: 'ok1', tags: { a: 1 } }),
    '{not json',
    JSON.stringify({ id: 'bad/id' }),
    JSON.stringify({ id: 'ok1' }),
    JSON.stringify({ id: 'ghost', moduleId: 'm1' }),
    JSON.stringify({ id: 'badtags', tags: { 'a.b': 1 } }),
    '',
    JSON.stringify({ id: 'before', importMode: 'delete' }),
    JSON.stringify({ id: 'ok2', importMode: 'create' }),
  ]));
  assert.equal(report.ok, false);
  assert.equal(report.errorCount, 6);
  assert.deepEqual([report.upserted, report.deleted], [0, 0]);
  const byLine = [...report.errors].sort((x, y) => x.line - y.line).map((e) => [e.line, e.errorCode]);
  assert.deepEqual(byLine, [
    [2, 'ArgumentInvalid'], [3, 'ArgumentInvalid'], [4, 'ArgumentInvalid'], [5, 'DeviceNotFound'], [6, 'ArgumentInvalid'], [9, 'ArgumentInvalid'],
  ]);
  assert.equal(report.errors.find((e) => e.line === 5)?.deviceId, 'ghost');
  const ids = (await store.identities.scan({ scope: 'all', limit: 100 })).map((r) => r.deviceId);
  assert.deepEqual(ids, ['before']);
});

test('importing an existing device keeps its generationId and keys and moves desired $version forward', async (t) => {
  const { registry, twins, transfer, store, clock } = await hub(t);
  const created = await registry.create(dev('d'), SAS);
  await twins.patch(dev('d'), { properties: { desired: { a: 1 } } });
  await twins.patch(dev('d'), { properties: { desired: { a: 2 } } });
  clock.advance(60_000);
  const report = await transfer.import(linesOf([JSON.stringify({ id: 'd', properties: { desired: { fresh: true } } })]));
  assert.equal(report.ok, true);
  const after = await store.identities.get(dev('d'));
  assert.ok(after);
  assert.equal(after.generationId, created.generationId);
  assert.equal(after.primaryKey, created.primaryKey);
  assert.deepEqual(after.twin.desired, { fresh: true });
  assert.equal(after.twin.desiredVersion, 4);
  assert.ok(after.twin.version > 3);
});

test('importMode delete lines delete devices with their modules, and modules alone', async (t) => {
  const { registry, transfer, store } = await hub(t);
  for (const id of ['d1', 'd2', 'd3']) await registry.create(dev(id), SAS);
  await registry.create(mod('d1', 'm1'), SAS);
  await registry.create(mod('d2', 'm2'), SAS);
  const report = await transfer.import(linesOf([
    JSON.stringify({ id: 'd1', importMode: 'delete' }),
    JSON.stringify({ id: 'd2', moduleId: 'm2', importMode: 'Delete' }),
    JSON.stringify({ id: 'never-there', importMode: 'delete' }),
  ]));
  assert.equal(report.ok, true, JSON.stringify(report.errors));
  const left = (await store.identities.scan({ scope: 'all', limit: 100 })).map((r) => `${r.deviceId}/${r.moduleId}`);
  assert.deepEqual(left, ['d2/', 'd3/']);
});

test('an import that deletes a device and upserts a module on it is refused rather than orphaning the module', async (t) => {
  const { registry, transfer, store } = await hub(t);
  await registry.create(dev('d'), SAS);
  const report = await transfer.import(linesOf([
    JSON.stringify({ id: 'd', importMode: 'delete' }),
    JSON.stringify({ id: 'd', moduleId: 'm' }),
  ]));
  assert.equal(report.ok, false);
  assert.deepEqual(report.errors.map((e) => [e.line, e.errorCode]), [[2, 'DeviceNotFound']]);
  assert.ok(await store.identities.get(dev('d')));
  assert.equal(await store.identities.get(mod('d', 'm')), undefined);
});

test('desired $version never moves backwards when the twin changes while a large import is staged', async (t) => {
  const { registry, twins, transfer, store } = await hub(t);
  await registry.create(dev('d0'), SAS);
  let seenByDevice = 0;
  async function* lines(): AsyncGenerator<string> {
    yield JSON.stringify({ id: 'd0', properties: { desired: { from: 'import' } } });
    for (let i = 1; i < 2000; i++) yield JSON.stringify({ id: `n${i}` });
    // The first 2000 lines are staged now; the service keeps patching d0 before the import commits.
    for (let i = 0; i < 3; i++) seenByDevice = (await twins.patch(dev('d0'), { properties: { desired: { live: i } } })).twin.desiredVersion;
    yield JSON.stringify({ id: 'last' });
  }
  const report = await transfer.import(lines());
  assert.equal(report.ok, true);
  assert.equal(seenByDevice, 4);
  const after = await store.identities.get(dev('d0'));
  assert.ok(after && after.twin.desiredVersion > seenByDevice, `desired $version ${after?.twin.desiredVersion} after the device saw ${seenByDevice}`);
});
