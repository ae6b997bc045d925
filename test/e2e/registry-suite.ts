import assert from 'node:assert/strict';
import type { test as nodeTest } from 'node:test';
import iothub from 'azure-iothub';
import { disposeHub, startHub, type RunningHub } from '../support/hub-process.js';

type Test = typeof nodeTest;

/**
 * The registry and twins as the unchanged azure-iothub SDK drives them, against a real hub process.
 * Run once per store: `storeArgs` picks it (`[]` for the SQLite default).
 */
export function registrySuite(opts: { test: Test; address: string; storeArgs: () => Promise<string[]> | string[]; skip?: string }): void {
  const { test } = opts;
  let hub: RunningHub;
  let registry: iothub.Registry;

  test.before(async () => {
    if (opts.skip) return;
    hub = await startHub({ address: opts.address, args: await opts.storeArgs() });
    registry = iothub.Registry.fromConnectionString(hub.info.connectionStrings.iothubowner);
  });
  test.after(async () => { if (hub) await disposeHub(hub); });

  const t = (name: string, fn: () => Promise<void>) => test(name, { skip: opts.skip }, fn);

  t('create returns the device with generated SAS keys and IoT Hub defaults', async () => {
    const { responseBody: d } = await registry.create({ deviceId: 'sdk-create' });
    assert.equal(d.deviceId, 'sdk-create');
    assert.equal(d.status, 'enabled');
    assert.equal(d.connectionState, 'Disconnected');
    assert.equal(d.cloudToDeviceMessageCount, 0);
    assert.equal((d.authentication as { type?: string } | undefined)?.type, 'sas');
    assert.equal(Buffer.from(d.authentication?.symmetricKey?.primaryKey ?? '', 'base64').length, 32);
    assert.notEqual(d.authentication?.symmetricKey?.primaryKey, d.authentication?.symmetricKey?.secondaryKey);
    assert.match(d.generationId ?? '', /^\d{18}$/);
    assert.ok(d.etag);
    assert.deepEqual(d.capabilities, { iotEdge: false });
  });

  t('create of an existing id raises DeviceAlreadyExistsError', async () => {
    await registry.create({ deviceId: 'sdk-dup' });
    await assert.rejects(registry.create({ deviceId: 'sdk-dup' }), { name: 'DeviceAlreadyExistsError' });
  });

  t('get of a missing device raises DeviceNotFoundError', async () => {
    await assert.rejects(registry.get('sdk-missing'), { name: 'DeviceNotFoundError' });
  });

  t('update changes status and etag and keeps the keys (the SDK always sends If-Match "*")', async () => {
    const { responseBody: d } = await registry.create({ deviceId: 'sdk-update' });
    const { responseBody: u } = await registry.update({ deviceId: 'sdk-update', status: 'disabled', statusReason: 'maintenance', etag: d.etag });
    assert.equal(u.status, 'disabled');
    assert.equal(u.statusReason, 'maintenance');
    assert.notEqual(u.etag, d.etag);
    assert.equal(u.authentication?.symmetricKey?.primaryKey, d.authentication?.symmetricKey?.primaryKey);
    const { responseBody: again } = await registry.update({ deviceId: 'sdk-update', status: 'enabled', etag: d.etag });
    assert.equal(again.status, 'enabled');
    await assert.rejects(registry.update({ deviceId: 'sdk-never-made', status: 'enabled' }), { name: 'DeviceNotFoundError' });
  });

  t('delete removes the device', async () => {
    await registry.create({ deviceId: 'sdk-delete' });
    await registry.delete('sdk-delete');
    await assert.rejects(registry.get('sdk-delete'), { name: 'DeviceNotFoundError' });
    await assert.rejects(registry.delete('sdk-delete'), { name: 'DeviceNotFoundError' });
  });

  t('given keys and self-signed thumbprints are kept', async () => {
    const key = Buffer.alloc(32, 7).toString('base64');
    const { responseBody: d } = await registry.create({ deviceId: 'sdk-keys', authentication: { symmetricKey: { primaryKey: key, secondaryKey: key } } });
    assert.equal(d.authentication?.symmetricKey?.primaryKey, key);
    const tp = 'AB'.repeat(20);
    const { responseBody: x } = await registry.create({ deviceId: 'sdk-x509', authentication: { x509Thumbprint: { primaryThumbprint: tp, secondaryThumbprint: tp } } });
    assert.equal((x.authentication as { type?: string } | undefined)?.type, 'selfSigned');
    assert.equal(x.authentication?.x509Thumbprint?.primaryThumbprint, tp);
  });

  t('list returns the devices created', async () => {
    const { responseBody: all } = await registry.list();
    const ids = all.map((d) => d.deviceId);
    assert.ok(ids.includes('sdk-create') && ids.includes('sdk-dup'));
    assert.deepEqual([...ids].sort(), ids);
  });

  t('addDevices, updateDevices and removeDevices report per-device results', async () => {
    const add = await registry.addDevices([{ deviceId: 'bulk-1' }, { deviceId: 'bulk-2' }, { deviceId: 'sdk-dup' }]);
    assert.equal(add.responseBody.isSuccessful, false);
    assert.deepEqual(add.responseBody.errors.map((e) => [e.deviceId, e.errorCode]), [['sdk-dup', 'DeviceAlreadyExists']]);
    assert.equal((await registry.get('bulk-2')).responseBody.deviceId, 'bulk-2');
    const upd = await registry.updateDevices([{ deviceId: 'bulk-1', status: 'disabled' }, { deviceId: 'bulk-nope', status: 'disabled' }], true);
    assert.deepEqual(upd.responseBody.errors.map((e) => [e.deviceId, e.errorCode]), [['bulk-nope', 'DeviceNotFound']]);
    assert.equal((await registry.get('bulk-1')).responseBody.status, 'disabled');
    const del = await registry.removeDevices([{ deviceId: 'bulk-1' }, { deviceId: 'bulk-2' }], true);
    assert.deepEqual(del.responseBody, { isSuccessful: true, errors: [], warnings: [] });
    await assert.rejects(registry.get('bulk-1'), { name: 'DeviceNotFoundError' });
  });

  t('getTwin returns versions and metadata; updateTwin merges and deletes with null', async () => {
    await registry.create({ deviceId: 'sdk-twin' });
    const { responseBody: t0 } = await registry.getTwin('sdk-twin');
    assert.equal(t0.deviceId, 'sdk-twin');
    assert.equal(t0.properties.desired.$version, 1);
    assert.equal(t0.properties.reported.$version, 1);
    const { responseBody: t1 } = await registry.updateTwin('sdk-twin', { tags: { site: 'north', floor: 2 }, properties: { desired: { interval: 5, mode: 'eco' } } }, t0.etag);
    assert.deepEqual(t1.tags, { site: 'north', floor: 2 });
    assert.equal(t1.properties.desired.interval, 5);
    assert.equal(t1.properties.desired.$version, 2);
    assert.equal((t1 as unknown as { version: number }).version, (t0 as unknown as { version: number }).version + 1);
    assert.ok(t1.properties.desired.$metadata.interval.$lastUpdated);
    const { responseBody: t2 } = await registry.updateTwin('sdk-twin', { tags: { floor: null }, properties: { desired: { mode: null } } }, '*');
    assert.deepEqual(t2.tags, { site: 'north' });
    assert.equal(t2.properties.desired.mode, undefined);
    assert.equal(t2.properties.desired.$version, 3);
    await assert.rejects(registry.updateTwin('sdk-twin', { tags: { a: 1 } }, t0.etag), { name: 'InvalidEtagError' });
  });

  t('Twin.get and Twin.update of the SDK work too', async () => {
    await registry.create({ deviceId: 'sdk-twin2' });
    const { responseBody: twin } = await registry.getTwin('sdk-twin2');
    const { result: updated } = await twin.update({ properties: { desired: { fw: '2.0' } } });
    assert.equal(updated.properties.desired.fw, '2.0');
    const { result: again } = await (await registry.getTwin('sdk-twin2')).responseBody.get();
    assert.equal(again.properties.desired.fw, '2.0');
  });

  t('an over-limit twin patch raises ArgumentError naming the section', async () => {
    await registry.create({ deviceId: 'sdk-big' });
    await assert.rejects(registry.updateTwin('sdk-big', { tags: { blob: 'x'.repeat(4000), more: 'y'.repeat(4000), last: 'z'.repeat(400) } }, '*'),
      (err: Error) => err.name === 'ArgumentError' && /tags.*8192/.test(err.message));
  });

  t('modules: add, get, list, update, remove', async () => {
    await registry.create({ deviceId: 'sdk-mod' });
    const { responseBody: m } = await registry.addModule({ deviceId: 'sdk-mod', moduleId: 'm1' });
    assert.equal(m.moduleId, 'm1');
    assert.equal(m.deviceId, 'sdk-mod');
    assert.equal((await registry.getModule('sdk-mod', 'm1')).responseBody.moduleId, 'm1');
    assert.deepEqual((await registry.getModulesOnDevice('sdk-mod')).responseBody.map((x) => x.moduleId), ['m1']);
    const { responseBody: u } = await registry.updateModule({ deviceId: 'sdk-mod', moduleId: 'm1', managedBy: 'ops', etag: m.etag });
    assert.equal(u.managedBy, 'ops');
    const { responseBody: mt } = await registry.getModuleTwin('sdk-mod', 'm1');
    assert.equal(mt.moduleId, 'm1');
    await registry.removeModule('sdk-mod', 'm1');
    await assert.rejects(registry.getModule('sdk-mod', 'm1'), { name: 'DeviceNotFoundError' });
  });

  t('getRegistryStatistics counts devices by status', async () => {
    await registry.create({ deviceId: 'stat-off', status: 'disabled' });
    const { responseBody: s } = await registry.getRegistryStatistics();
    const { responseBody: all } = await registry.list();
    assert.equal(s.totalDeviceCount, all.length);
    assert.equal(s.disabledDeviceCount, all.filter((d) => d.status === 'disabled').length);
    assert.equal(s.enabledDeviceCount, s.totalDeviceCount - s.disabledDeviceCount);
  });

  t('a registryRead connection string can read but not write', async () => {
    const reader = iothub.Registry.fromConnectionString(hub.info.connectionStrings.registryRead);
    assert.equal((await reader.get('sdk-create')).responseBody.deviceId, 'sdk-create');
    await assert.rejects(reader.create({ deviceId: 'reader-made' }), { name: 'UnauthorizedError' });
    const device = iothub.Registry.fromConnectionString(hub.info.connectionStrings.device);
    await assert.rejects(device.get('sdk-create'), { name: 'UnauthorizedError' });
  });

  t('state survives a restart on the same data dir', async () => {
    await registry.updateTwin('sdk-create', { tags: { kept: true } }, '*');
    const before = (await registry.get('sdk-create')).responseBody;
    assert.equal(await hub.stop(), 0);
    hub = await startHub({ address: opts.address, dataDir: hub.dataDir, args: await opts.storeArgs() });
    registry = iothub.Registry.fromConnectionString(hub.info.connectionStrings.iothubowner);
    const after = (await registry.get('sdk-create')).responseBody;
    assert.equal(after.etag, before.etag);
    assert.equal(after.authentication?.symmetricKey?.primaryKey, before.authentication?.symmetricKey?.primaryKey);
    assert.deepEqual((await registry.getTwin('sdk-create')).responseBody.tags, { kept: true });
  });
}
