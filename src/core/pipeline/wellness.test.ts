import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CorralError } from '../errors/index.js';
import { ManualClock } from '../../ports/clock/index.js';
import { identityRecord } from '../../ports/store/contract.js';
import type { JsonObject } from '../../ports/store/index.js';
import { SqliteStore } from '../../ports/store/sqlite/index.js';
import { Alerts } from './alerts.js';
import { PipelineSettings } from './settings.js';
import { healthProfileValidator, Wellness, WELLNESS_RULE } from './wellness.js';

const T0 = Date.UTC(2026, 0, 1);
const S = 1000;
const dev = (deviceId: string, moduleId = '') => ({ deviceId, moduleId });

async function setUp(devices: Record<string, JsonObject>) {
  const store = SqliteStore.open(':memory:');
  await store.migrate();
  for (const [id, tags] of Object.entries(devices)) await store.identities.insert(identityRecord(id, '', { twin: { tags } }));
  const clock = new ManualClock(T0);
  const settings = new PipelineSettings({ store: store.pipeline, clock, pollMs: 0 });
  settings.register('healthProfile', healthProfileValidator);
  const ops: string[] = [];
  const alerts = new Alerts({ store: store.pipeline, clock, events: { alert: async (op, key) => { ops.push(`${op} ${key.deviceId}`); } } });
  const errors: string[] = [];
  const wellness = new Wellness({ store: store.pipeline, alerts, settings, clock, onError: (_err, profile) => errors.push(profile) });
  return {
    store, clock, settings, alerts, wellness, ops, errors,
    heard: (deviceId: string, atMs: number) => store.pipeline.mergeDeviceState([{ deviceId, moduleId: '', values: {}, lastSeenMs: atMs }]),
    at: (seconds: number) => { clock.advance(T0 + seconds * S - clock.now()); return clock.now(); },
    open: async () => (await alerts.list({ open: true, ruleName: WELLNESS_RULE })).items.map((a) => `${a.deviceId} ${a.severity}`).sort(),
    close: () => store.close(),
  };
}

test('a device that misses the heartbeat of its tag turns unhealthy with an alert, and recovers when heard from', async () => {
  const hub = await setUp({ d1: { corral: { heartbeatSeconds: 60 } }, d2: {}, d3: { corral: { heartbeatSeconds: 'often' } } });
  try {
    await hub.heard('d1', T0);
    await hub.heard('d2', T0);
    await hub.heard('d3', T0);
    assert.equal(await hub.wellness.sweep(hub.at(30)), 0);
    assert.equal(await hub.wellness.sweep(hub.at(61)), 1);
    assert.deepEqual(await hub.open(), ['d1 warning'], 'd2 has no expectation; d3\'s tag is not a positive number');
    assert.equal((await hub.store.pipeline.getDeviceState(dev('d1')))?.health, 'unhealthy');
    assert.deepEqual(await hub.wellness.counts(), { healthy: 0, unhealthy: 1 });
    assert.equal(await hub.wellness.sweep(hub.at(200)), 0, 'an unhealthy device is not judged again');
    assert.deepEqual(hub.ops, ['alertRaised d1']);
    await hub.heard('d1', hub.at(210));
    await hub.wellness.seen([dev('d1'), dev('d1', 'm1')], hub.clock.now());
    assert.deepEqual(await hub.open(), []);
    assert.deepEqual(await hub.wellness.counts(), { healthy: 1, unhealthy: 0 });
    const [cleared] = (await hub.alerts.list({ ruleName: WELLNESS_RULE })).items;
    assert.equal(cleared.status, 'cleared');
    assert.deepEqual(cleared.details, { source: 'tag', tag: 'tags.corral.heartbeatSeconds', detectedTime: '2026-01-01T00:01:01.000Z', cleared: { heardTime: '2026-01-01T00:03:30.000Z' } });
    await hub.wellness.seen([dev('d1')], hub.at(215));
    assert.deepEqual(hub.ops, ['alertRaised d1', 'alertCleared d1'], 'a healthy device heard from again costs no alert call');
  } finally {
    await hub.close();
  }
});

test('a health profile sets the heartbeat of the devices it matches, with its severity; a device\'s tag wins', async () => {
  const hub = await setUp({
    s1: { type: 'sensor' }, s2: { type: 'sensor', corral: { heartbeatSeconds: 600 } }, s3: { type: 'sensor' }, g1: { type: 'gateway' },
  });
  try {
    await hub.settings.put('healthProfile', 'sensors', { condition: "tags.type = 'sensor'", heartbeatSeconds: 120, severity: 'error' });
    for (const id of ['s1', 's2', 'g1']) await hub.heard(id, T0);
    await hub.heard('s3', T0 + 100 * S);
    assert.equal(await hub.wellness.sweep(hub.at(121)), 1);
    assert.deepEqual(await hub.open(), ['s1 error'], 's2 follows its tag (600 s), s3 was heard at 100 s, g1 has no profile');
    const [a] = (await hub.alerts.list({ open: true })).items;
    assert.deepEqual(a.details, { source: 'profile', profile: 'sensors', heartbeatSeconds: 120, detectedTime: '2026-01-01T00:02:01.000Z' });
    assert.equal(await hub.wellness.sweep(hub.at(601)), 2);
    assert.deepEqual(await hub.open(), ['s1 error', 's2 warning', 's3 error']);
    await hub.wellness.seen([dev('s1'), dev('s2'), dev('s3'), dev('g1')], hub.at(610));
    assert.deepEqual(await hub.open(), []);
    assert.deepEqual(await hub.wellness.counts(), { healthy: 4, unhealthy: 0 });
  } finally {
    await hub.close();
  }
});

test('a device never heard from counts from the profile\'s creation', async () => {
  const hub = await setUp({ s1: { type: 'sensor' } });
  try {
    hub.at(1000);
    await hub.settings.put('healthProfile', 'sensors', { condition: "tags.type = 'sensor'", heartbeatSeconds: 60 });
    assert.equal(await hub.wellness.sweep(hub.at(1059)), 0);
    assert.equal(await hub.wellness.sweep(hub.at(1061)), 1);
  } finally {
    await hub.close();
  }
});

test('a sweep marks every overdue device, past one Store page', async () => {
  const devices: Record<string, JsonObject> = {};
  for (let i = 0; i < 1205; i++) devices[`d${String(i).padStart(4, '0')}`] = { corral: { heartbeatSeconds: 10 } };
  const hub = await setUp(devices);
  try {
    await hub.wellness.sweep(hub.at(0));
    assert.equal(await hub.wellness.sweep(hub.at(11)), 1205);
    assert.deepEqual(await hub.wellness.counts(), { healthy: 0, unhealthy: 1205 });
    assert.equal((await hub.alerts.counts()).open.warning, 1205);
  } finally {
    await hub.close();
  }
});

test('invalid health profiles are refused with a message naming the field', () => {
  const bad = (doc: unknown, message: RegExp) => assert.throws(() => healthProfileValidator('p1', doc),
    (err) => err instanceof CorralError && err.code === 400004 && message.test(err.message), JSON.stringify(doc));
  bad([], /health profile 'p1' must be a JSON object/);
  bad({ heartbeatSeconds: 60 }, /health profile 'p1': condition must be a condition over the twin/);
  bad({ condition: 'tags.x =', heartbeatSeconds: 60 }, /health profile 'p1': condition: query error/);
  bad({ condition: 'true', heartbeatSeconds: 0 }, /heartbeatSeconds must be an integer from 1 to 2592000, got 0/);
  bad({ condition: 'true' }, /heartbeatSeconds must be .*, got nothing/);
  bad({ condition: 'true', heartbeatSeconds: 60, severity: 'loud' }, /severity must be one of critical, error, warning, info, got "loud"/);
  bad({ condition: 'true', heartbeatSeconds: 60, every: 5 }, /unknown field 'every'/);
  assert.deepEqual(healthProfileValidator('p1', { condition: 'true', heartbeatSeconds: 60 }), { condition: 'true', heartbeatSeconds: 60, severity: 'warning' });
});
