import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { IOT_HUB_TWIN_LIMITS } from '../twins/index.js';
import { InProcessBus } from '../../ports/bus/in-process/index.js';
import { idFromSubjectToken } from '../../ports/bus/index.js';
import { ManualClock } from '../../ports/clock/index.js';
import { AesGcmKeyRing } from '../../ports/keyring/index.js';
import { SqliteStore } from '../../ports/store/sqlite/index.js';
import { BulkRegistry, Registry, parseIdentitySpec } from './index.js';

/** A registry on an in-memory store whose kicks are recorded as `device/module` texts. */
async function setup(t: { after(fn: () => Promise<void>): void }) {
  const store = SqliteStore.open(':memory:');
  await store.migrate();
  const bus = new InProcessBus();
  t.after(async () => { await bus.close(); await store.close(); });
  const kicked: string[] = [];
  await bus.subscribe('corral.device.*.*.kick', (_data, subject) => {
    const [, , d, m] = subject.split('.');
    kicked.push(`${idFromSubjectToken(d)}/${idFromSubjectToken(m)}`);
  });
  const clock = new ManualClock();
  const registry = new Registry({ store, keyring: new AesGcmKeyRing(randomBytes(32)), clock, bus });
  const bulk = new BulkRegistry({ store, clock, registry, limits: IOT_HUB_TWIN_LIMITS, bus });
  for (const k of [{ deviceId: 'd1', moduleId: '' }, { deviceId: 'd1', moduleId: 'm1' }, { deviceId: 'd2', moduleId: '' }, { deviceId: 'd2', moduleId: 'm2' }]) {
    await registry.create(k, parseIdentitySpec({}));
  }
  // The in-process bus delivers on a microtask; one more turn lets every publish land.
  const settled = async () => { await new Promise((resolve) => setImmediate(resolve)); return [...kicked].sort(); };
  return { registry, bulk, settled };
}

test('disabling a device kicks it and its modules; a tag-free update kicks nobody', async (t) => {
  const { registry, settled } = await setup(t);
  await registry.update({ deviceId: 'd1', moduleId: '' }, parseIdentitySpec({ status: 'enabled' }), '*');
  assert.deepEqual(await settled(), []);
  await registry.update({ deviceId: 'd1', moduleId: '' }, parseIdentitySpec({ status: 'disabled' }), '*');
  assert.deepEqual(await settled(), ['d1/', 'd1/m1']);
});

test('deleting a device kicks it and the modules the delete took with it', async (t) => {
  const { registry, settled } = await setup(t);
  await registry.delete({ deviceId: 'd2', moduleId: '' });
  assert.deepEqual(await settled(), ['d2/', 'd2/m2']);
});

test('a bulk delete of a device kicks its modules too, read before the batch removed them', async (t) => {
  const { bulk, settled } = await setup(t);
  const result = await bulk.run([{ id: 'd1', importMode: 'delete' }, { id: 'd2', moduleId: 'm2', importMode: 'delete' }]);
  assert.equal(result.isSuccessful, true);
  assert.deepEqual(await settled(), ['d1/', 'd1/m1', 'd2/m2']);
});
