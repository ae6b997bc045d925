import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeJson, deviceSubject, encodeJson } from '../devices/index.js';
import { Methods } from '../methods/index.js';
import { IOT_HUB_TWIN_LIMITS, Twins } from '../twins/index.js';
import { InProcessBus } from '../../ports/bus/in-process/index.js';
import { ManualClock } from '../../ports/clock/index.js';
import { identityRecord } from '../../ports/store/contract.js';
import { SqliteStore } from '../../ports/store/sqlite/index.js';
import { eventually } from '../../../test/support/eventually.js';
import { JobRunner, Jobs } from './index.js';

async function setUp(deviceIds: readonly string[]) {
  const store = SqliteStore.open(':memory:');
  await store.migrate();
  const clock = new ManualClock(Date.now());
  const bus = new InProcessBus();
  for (const id of deviceIds) await store.identities.insert(identityRecord(id, '', { twin: { tags: { site: id < 'd3' ? 'a' : 'b' } } }));
  const twins = new Twins({ store, clock, limits: IOT_HUB_TWIN_LIMITS, bus });
  const methods = new Methods({ store, bus });
  const runner = new JobRunner({ store, twins, methods, clock, limits: IOT_HUB_TWIN_LIMITS, nodeId: 'test', pollMs: 20 });
  const jobs = new Jobs({ store, clock, limits: IOT_HUB_TWIN_LIMITS, onScheduled: () => runner.wake() });
  runner.start();
  return {
    store, clock, bus, jobs, runner,
    close: async () => { await runner.stop(); await bus.close(); await store.close(); },
  };
}

test('a twin job patches the matching devices in batches, notifies each, and completes with statistics', async () => {
  const hub = await setUp(['d0', 'd1', 'd2', 'd3', 'd4']);
  try {
    const notices: string[] = [];
    await hub.bus.subscribe('corral.device.>', (_data, subject) => { notices.push(subject); });
    await hub.jobs.schedule('j1', { type: 'scheduleUpdateTwin', queryCondition: "tags.site = 'a'", updateTwin: { tags: { done: true }, properties: { desired: { x: 7 } } } });
    await eventually(async () => assert.equal((await hub.jobs.get('j1')).status, 'completed'));
    const job = await hub.jobs.get('j1');
    assert.deepEqual(job.deviceJobStatistics, { deviceCount: 3, failedCount: 0, succeededCount: 3, runningCount: 0, pendingCount: 0 });
    for (const id of ['d0', 'd1', 'd2']) {
      const r = await hub.store.identities.get({ deviceId: id, moduleId: '' });
      assert.equal(r?.twin.desired.x, 7);
      assert.equal(r?.twin.tags.done, true);
    }
    assert.equal((await hub.store.identities.get({ deviceId: 'd3', moduleId: '' }))?.twin.desired.x, undefined);
    await eventually(async () => assert.equal(notices.filter((s) => s.endsWith('.desired')).length, 3));
  } finally {
    await hub.close();
  }
});

test('a method job answers for the device that serves its subject and fails the others with DeviceNotOnline', async () => {
  const hub = await setUp(['d0', 'd1', 'd2']);
  try {
    await hub.bus.serve(deviceSubject({ deviceId: 'd1', moduleId: '' }, 'method'), async (data) => {
      const req = decodeJson<{ methodName: string; payload: unknown }>(data);
      return encodeJson({ status: 201, payload: { got: req.payload } });
    });
    await hub.jobs.schedule('m1', { type: 'scheduleDeviceMethod', queryCondition: "tags.site = 'a'", cloudToDeviceMethod: { methodName: 'reboot', payload: 5 } });
    await eventually(async () => assert.equal((await hub.jobs.get('m1')).status, 'completed'));
    const page = await hub.store.query.run({ collection: 'jobs', select: { kind: 'all' } }, { limit: 10 });
    assert.equal(page.kind, 'jobs');
    const rows = page.kind === 'jobs' ? page.rows : [];
    assert.deepEqual(rows.map((r) => [r.deviceId, r.status]), [['d0', 'failed'], ['d1', 'completed'], ['d2', 'failed']]);
    assert.deepEqual(rows[1]?.outcome, { deviceMethodResponse: { status: 201, payload: { got: 5 } } });
    assert.deepEqual(rows[0]?.error?.code, 'DeviceNotOnline');
  } finally {
    await hub.close();
  }
});

test('a job still running after maxExecutionTimeInSeconds fails and its devices not started are canceled', async () => {
  const hub = await setUp(['d0', 'd1', 'd2']);
  try {
    await hub.jobs.schedule('slow', {
      type: 'scheduleUpdateTwin', queryCondition: "tags.site = 'a'", updateTwin: { properties: { desired: { y: 1 } } },
      maxExecutionTimeInSeconds: 5, corral: { devicesPerSecond: 0.001 },
    });
    await eventually(async () => assert.equal((await hub.jobs.get('slow')).deviceJobStatistics.succeededCount, 1));
    hub.clock.advance(6000);
    await eventually(async () => assert.equal((await hub.jobs.get('slow')).status, 'failed'));
    const job = await hub.jobs.get('slow');
    assert.match(job.failureReason ?? '', /maxExecutionTimeInSeconds \(5 s\)/);
    assert.deepEqual(job.deviceJobStatistics, { deviceCount: 3, failedCount: 0, succeededCount: 1, runningCount: 0, pendingCount: 0 });
  } finally {
    await hub.close();
  }
});

test('a scheduled job waits for its start time, and cancel before then leaves every device untouched', async () => {
  const hub = await setUp(['d0']);
  try {
    const start = new Date(hub.clock.now() + 60_000).toISOString();
    assert.equal((await hub.jobs.schedule('later', { type: 'scheduleUpdateTwin', queryCondition: "deviceId = 'd0'", updateTwin: { tags: { t: 1 } }, startTime: start })).status, 'scheduled');
    assert.equal((await hub.jobs.cancel('later')).status, 'cancelled');
    hub.clock.advance(61_000);
    hub.runner.wake();
    assert.equal((await hub.jobs.get('later')).status, 'cancelled');
    assert.equal((await hub.store.identities.get({ deviceId: 'd0', moduleId: '' }))?.twin.tags.t, undefined);
    await assert.rejects(hub.jobs.get('nope'), { code: 404002 });
    await assert.rejects(hub.jobs.schedule('later', { type: 'scheduleUpdateTwin', queryCondition: "deviceId = 'd0'", updateTwin: { tags: { t: 1 } } }), { code: 409005 });
  } finally {
    await hub.close();
  }
});
