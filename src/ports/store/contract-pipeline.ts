import assert from 'node:assert/strict';
import { identityRecord } from './contract.js';
import { eq, tag } from './contract-query-data.js';
import type { IdentityKey, JsonObject, Store } from './index.js';
import type { AlertRecord, AlertSeverity, DeviceStateUpdate, OverdueOptions } from './pipeline.js';

type Case = (name: string, body: (store: Store) => Promise<void>) => void;

const T0 = Date.UTC(2026, 0, 1);
const iso = (ms: number): string => new Date(ms).toISOString();
const dev = (deviceId: string, moduleId = ''): IdentityKey => ({ deviceId, moduleId });

/** An update of `deviceId` whose fields were all seen at `timeMs`, heard from then. */
function seen(deviceId: string, timeMs: number, values: JsonObject, moduleId = ''): DeviceStateUpdate {
  return {
    deviceId, moduleId, lastSeenMs: timeMs,
    values: Object.fromEntries(Object.entries(values).map(([field, value]) => [field, { value, timeMs }])),
  };
}

/** The telemetry pipeline's state: settings, checkpoints, leases, device state and health, alerts. */
export function pipelineCases(it: Case): void {
  settingCases(it);
  checkpointCases(it);
  leaseCases(it);
  deviceStateCases(it);
  overdueCases(it);
  alertCases(it);
}

function settingCases(it: Case): void {
  it('pipeline settings: put creates at rev 1, put again replaces with rev + 1 keeping createdMs, list is per kind by name', async (store) => {
    const p = store.pipeline;
    assert.deepEqual(await p.listSettings('route'), []);
    assert.equal(await p.getSetting('route', 'r1'), undefined);
    const created = await p.putSetting('route', 'r1', { source: 'DeviceMessages', endpoints: ['e1'] }, T0);
    assert.deepEqual(created, { kind: 'route', name: 'r1', doc: { source: 'DeviceMessages', endpoints: ['e1'] }, createdMs: T0, updatedMs: T0, rev: 1 });
    const replaced = await p.putSetting('route', 'r1', { source: 'TwinChangeEvents', nested: { ü: [null, true, 1.5] } }, T0 + 5);
    assert.deepEqual(replaced, { kind: 'route', name: 'r1', doc: { source: 'TwinChangeEvents', nested: { ü: [null, true, 1.5] } }, createdMs: T0, updatedMs: T0 + 5, rev: 2 });
    assert.deepEqual(await p.getSetting('route', 'r1'), replaced);
    await p.putSetting('route', 'B', {}, T0);
    await p.putSetting('route', 'a', {}, T0);
    await p.putSetting('endpoint', 'r1', { kind: 'webhook' }, T0);
    assert.deepEqual((await p.listSettings('route')).map((s) => s.name), ['B', 'a', 'r1']);
    assert.deepEqual(await p.listSettings('endpoint'), [{ kind: 'endpoint', name: 'r1', doc: { kind: 'webhook' }, createdMs: T0, updatedMs: T0, rev: 1 }]);
    assert.deepEqual(await p.listSettings('rule'), []);
  });

  it('pipeline settings: preconditions refuse and change nothing; settingsVersion moves with each write only', async (store) => {
    const p = store.pipeline;
    const v0 = await p.settingsVersion();
    assert.equal((await p.putSetting('rule', 'hot', { n: 1 }, T0, 'absent'))?.rev, 1);
    assert.equal(await p.putSetting('rule', 'hot', { n: 2 }, T0 + 1, 'absent'), undefined);
    assert.equal(await p.putSetting('rule', 'hot', { n: 2 }, T0 + 1, 2), undefined);
    assert.equal(await p.putSetting('rule', 'cold', { n: 2 }, T0 + 1, 1), undefined, 'a rev precondition never creates');
    assert.equal(await p.settingsVersion(), v0 + 1);
    assert.deepEqual((await p.putSetting('rule', 'hot', { n: 3 }, T0 + 2, 1))?.doc, { n: 3 });
    assert.equal(await p.settingsVersion(), v0 + 2);
    assert.equal(await p.deleteSetting('rule', 'hot', 1), false);
    assert.equal(await p.deleteSetting('rule', 'cold'), false);
    assert.equal(await p.settingsVersion(), v0 + 2);
    assert.equal(await p.deleteSetting('rule', 'hot', 2), true);
    assert.equal(await p.getSetting('rule', 'hot'), undefined);
    await p.putSetting('healthProfile', 'x', {}, T0);
    assert.equal(await p.deleteSetting('healthProfile', 'x'), true);
    assert.equal(await p.deleteSetting('healthProfile', 'x'), false);
    assert.equal(await p.settingsVersion(), v0 + 5);
  });
}

function checkpointCases(it: Case): void {
  it('checkpoints are kept per consumer and partition; onlyForward ignores a lower sequence; delete drops one consumer', async (store) => {
    const p = store.pipeline;
    assert.deepEqual(await p.readCheckpoints('route:r1'), {});
    await p.writeCheckpoint('route:r1', '0', 10, T0, true);
    await p.writeCheckpoint('route:r1', '1', 2 ** 40, T0, true);
    await p.writeCheckpoint('route:r10', '0', 99, T0, false);
    await p.writeCheckpoint('route:r1', '0', 7, T0 + 1, true);
    assert.deepEqual(await p.readCheckpoints('route:r1'), { 0: 10, 1: 2 ** 40 });
    await p.writeCheckpoint('route:r1', '0', 12, T0 + 2, true);
    assert.deepEqual(await p.readCheckpoints('route:r1'), { 0: 12, 1: 2 ** 40 });
    await p.writeCheckpoint('route:r1', '0', 3, T0 + 3, false);
    assert.deepEqual(await p.readCheckpoints('route:r1'), { 0: 3, 1: 2 ** 40 });
    await p.deleteCheckpoints('route:r1');
    assert.deepEqual(await p.readCheckpoints('route:r1'), {});
    assert.deepEqual(await p.readCheckpoints('route:r10'), { 0: 99 });
  });
}

function leaseCases(it: Case): void {
  it('a lease has one holder: others fail until it expires or is released; the holder renews it', async (store) => {
    const p = store.pipeline;
    assert.equal(await p.leaseHolder('wellness', T0), undefined);
    assert.equal(await p.acquireLease('wellness', 'node-a', 1000, T0), true);
    assert.equal(await p.acquireLease('wellness', 'node-b', 1000, T0 + 10), false);
    assert.equal(await p.leaseHolder('wellness', T0 + 10), 'node-a');
    assert.equal(await p.acquireLease('wellness', 'node-a', 1000, T0 + 900), true, 'renew');
    assert.equal(await p.acquireLease('wellness', 'node-b', 1000, T0 + 1500), false, 'the renewal holds to T0 + 1900');
    assert.equal(await p.acquireLease('other', 'node-b', 1000, T0 + 1500), true, 'leases are by name');
    assert.equal(await p.leaseHolder('wellness', T0 + 1900), undefined, 'expired at its until');
    assert.equal(await p.acquireLease('wellness', 'node-b', 1000, T0 + 1900), true);
    assert.equal(await p.leaseHolder('wellness', T0 + 1901), 'node-b');
    await p.releaseLease('wellness', 'node-a');
    assert.equal(await p.leaseHolder('wellness', T0 + 1901), 'node-b', 'only the holder releases');
    await p.releaseLease('wellness', 'node-b');
    assert.equal(await p.leaseHolder('wellness', T0 + 1901), undefined);
    assert.equal(await p.acquireLease('wellness', 'node-a', 1000, T0 + 1902), true);
  });

  it('a lease raced by several owners at once goes to exactly one', async (store) => {
    const won = await Promise.all(['a', 'b', 'c', 'd', 'e', 'f'].map((o) => store.pipeline.acquireLease('race', o, 1000, T0)));
    assert.equal(won.filter(Boolean).length, 1);
    assert.equal(await store.pipeline.leaseHolder('race', T0), ['a', 'b', 'c', 'd', 'e', 'f'][won.indexOf(true)]);
  });
}

function deviceStateCases(it: Case): void {
  it('mergeDeviceState: a first update creates the row; each field keeps the newer value, a tie goes to the update', async (store) => {
    const p = store.pipeline;
    assert.equal(await p.getDeviceState(dev('d1')), undefined);
    await p.mergeDeviceState([seen('d1', T0 + 10, { t: 20, h: 50 }), seen('d1', T0 + 1, { t: 'module' }, 'm1')]);
    assert.deepEqual(await p.getDeviceState(dev('d1')), {
      deviceId: 'd1', moduleId: '', values: { t: 20, h: 50 }, meta: { t: { $lastUpdated: iso(T0 + 10) }, h: { $lastUpdated: iso(T0 + 10) } },
      lastSeenMs: T0 + 10, health: null, healthChangedMs: null,
    });
    await p.mergeDeviceState([{
      deviceId: 'd1', moduleId: '', lastSeenMs: T0 + 7,
      values: { t: { value: 19, timeMs: T0 + 5 }, h: { value: 51, timeMs: T0 + 10 }, pos: { value: { lat: 1.5, tags: ['ä', null] }, timeMs: T0 + 7 } },
    }]);
    assert.deepEqual(await p.getDeviceState(dev('d1')), {
      deviceId: 'd1', moduleId: '', values: { t: 20, h: 51, pos: { lat: 1.5, tags: ['ä', null] } },
      meta: { t: { $lastUpdated: iso(T0 + 10) }, h: { $lastUpdated: iso(T0 + 10) }, pos: { $lastUpdated: iso(T0 + 7) } },
      lastSeenMs: T0 + 10, health: null, healthChangedMs: null,
    });
    assert.deepEqual((await p.getDeviceState(dev('d1', 'm1')))?.values, { t: 'module' });
    await p.mergeDeviceState([]);
  });

  it('mergeDeviceState: several updates for one device in a call merge in order', async (store) => {
    const p = store.pipeline;
    await p.mergeDeviceState([seen('d1', T0 + 4, { x: 0 })]);
    await p.mergeDeviceState([
      seen('d1', T0 + 5, { x: 1, y: 1 }), seen('d2', T0 + 1, { z: 1 }),
      { deviceId: 'd1', moduleId: '', lastSeenMs: T0 + 3, values: { x: { value: 2, timeMs: T0 + 3 }, y: { value: 2, timeMs: T0 + 5 } } },
      seen('d1', T0 + 5, { x: 3 }), seen('d2', T0 + 2, { z: 2 }), seen('d1', T0 + 2, { w: 'old' }),
    ]);
    const d1 = await p.getDeviceState(dev('d1'));
    assert.deepEqual(d1?.values, { x: 3, y: 2, w: 'old' });
    assert.deepEqual(d1?.meta, { x: { $lastUpdated: iso(T0 + 5) }, y: { $lastUpdated: iso(T0 + 5) }, w: { $lastUpdated: iso(T0 + 2) } });
    assert.equal(d1?.lastSeenMs, T0 + 5);
    assert.deepEqual((await p.getDeviceState(dev('d2')))?.values, { z: 2 });
  });

  it('mergeDeviceState takes a batch of a thousand devices, new and known ones mixed', async (store) => {
    const p = store.pipeline;
    const ids = Array.from({ length: 1000 }, (_, i) => `dev-${String(i).padStart(4, '0')}`);
    await p.mergeDeviceState(ids.filter((_, i) => i % 2 === 0).map((id) => seen(id, T0, { a: 1, b: 'x' })));
    await p.mergeDeviceState(ids.map((id, i) => seen(id, T0 + 1, { a: i, c: [i] })));
    for (const i of [0, 1, 998, 999]) {
      const b = i % 2 === 0 ? { b: 'x' } : {};
      assert.deepEqual((await p.getDeviceState(dev(ids[i] ?? '')))?.values, { a: i, ...b, c: [i] });
    }
  });

  it('merges of the same devices from several nodes at once lose no field', async (store) => {
    const fields = ['f0', 'f1', 'f2', 'f3', 'f4', 'f5'];
    await store.pipeline.mergeDeviceState([seen('known', T0 - 1, { f0: -1 })]);
    await Promise.all(fields.map((f, i) => store.pipeline.mergeDeviceState([
      seen('known', T0 + i, { [f]: i }), seen(`fresh-${i % 2}`, T0 + i, { [f]: i }), seen('fresh', T0 + i, { [f]: i }),
    ])));
    const all = Object.fromEntries(fields.map((f, i) => [f, i]));
    assert.deepEqual((await store.pipeline.getDeviceState(dev('fresh')))?.values, all);
    assert.deepEqual((await store.pipeline.getDeviceState(dev('known')))?.values, all);
    assert.equal((await store.pipeline.getDeviceState(dev('known')))?.lastSeenMs, T0 + 5);
  });

  it('setHealth creates missing rows, returns only the keys whose health changed; merges keep health; healthCounts', async (store) => {
    const p = store.pipeline;
    assert.deepEqual(await p.healthCounts(), { healthy: 0, unhealthy: 0 });
    await p.mergeDeviceState([seen('a', T0, { v: 1 }), seen('never-judged', T0, { v: 1 })]);
    assert.deepEqual(await p.setHealth([dev('a'), dev('b'), dev('a'), dev('b', 'm1')], 'unhealthy', T0 + 1), [dev('a'), dev('b'), dev('b', 'm1')]);
    assert.deepEqual(await p.getDeviceState(dev('b')), {
      deviceId: 'b', moduleId: '', values: {}, meta: {}, lastSeenMs: 0, health: 'unhealthy', healthChangedMs: T0 + 1,
    });
    assert.deepEqual(await p.setHealth([dev('a'), dev('c')], 'unhealthy', T0 + 2), [dev('c')]);
    assert.deepEqual(await p.setHealth([dev('a')], 'healthy', T0 + 3), [dev('a')]);
    assert.deepEqual(await p.setHealth([], 'healthy', T0 + 3), []);
    await p.mergeDeviceState([seen('a', T0 + 4, { v: 2 })]);
    assert.deepEqual(await p.getDeviceState(dev('a')), {
      deviceId: 'a', moduleId: '', values: { v: 2 }, meta: { v: { $lastUpdated: iso(T0 + 4) } }, lastSeenMs: T0 + 4,
      health: 'healthy', healthChangedMs: T0 + 3,
    });
    assert.deepEqual(await p.healthCounts(), { healthy: 1, unhealthy: 2 }, 'devices only: b/m1 is a module');
  });

  it('deleteDeviceState removes the device and its modules, and no other device', async (store) => {
    const p = store.pipeline;
    await p.mergeDeviceState([seen('d1', T0, { v: 1 }), seen('d1', T0, { v: 2 }, 'm1'), seen('d10', T0, { v: 3 }), seen('D1', T0, { v: 4 })]);
    await p.deleteDeviceState('d1');
    assert.equal(await p.getDeviceState(dev('d1')), undefined);
    assert.equal(await p.getDeviceState(dev('d1', 'm1')), undefined);
    assert.deepEqual((await p.getDeviceState(dev('d10')))?.values, { v: 3 });
    assert.deepEqual((await p.getDeviceState(dev('D1')))?.values, { v: 4 });
  });
}

const NOW = T0 + 1_000_000;

/**
 * Devices a–f and a module, with heartbeat tags (`hb.s`) and sites. With a fixed 60 s heartbeat the threshold is
 * NOW - 60 000: b (heard before it) and c and d (never heard: from sinceMs) are overdue; e, heard exactly at it, is not.
 */
async function seedOverdue(store: Store): Promise<void> {
  const devices: [string, JsonObject][] = [
    ['a', { site: 'paris', hb: { s: 10 } }], ['b', { site: 'paris', hb: { s: '60' } }], ['c', { site: 'paris', hb: { s: 0 } }],
    ['d', { site: 'lyon', hb: { s: 2000 } }], ['e', { hb: { s: 1.5 } }], ['f', { hb: { s: -5 } }],
  ];
  await store.identities.applyBatch([
    ...devices.map(([id, tags]) => ({ kind: 'insert' as const, record: identityRecord(id, '', { twin: { tags } }) })),
    { kind: 'insert', record: identityRecord('b', 'm1', { twin: { tags: { hb: { s: 1 } } } }) },
  ]);
  await store.pipeline.mergeDeviceState([
    seen('a', NOW - 50_000, { v: 1 }), seen('b', NOW - 100_000, { v: 1 }), seen('e', NOW - 60_000, { v: 1 }),
    seen('f', T0, { v: 1 }), seen('b', T0, { v: 1 }, 'm1'), seen('ghost', T0, { v: 1 }),
  ]);
  await store.pipeline.setHealth([dev('d')], 'unhealthy', T0);
}

function overdueCases(it: Case): void {
  const ids = (keys: readonly IdentityKey[]): string[] => keys.map((k) => `${k.deviceId}/${k.moduleId}`);
  const base: OverdueOptions = { heartbeat: { seconds: 60 }, nowMs: NOW, sinceMs: T0, onlyHealthy: false, limit: 100 };

  it('overdueDevices with a fixed heartbeat: devices heard before it or never heard since sinceMs, in id order', async (store) => {
    await seedOverdue(store);
    const p = store.pipeline;
    assert.deepEqual(ids(await p.overdueDevices(base)), ['b/', 'c/', 'd/', 'f/']);
    assert.deepEqual(ids(await p.overdueDevices({ ...base, limit: 2 })), ['b/', 'c/']);
    assert.deepEqual(ids(await p.overdueDevices({ ...base, limit: 2, afterDeviceId: 'c' })), ['d/', 'f/'], 'keyset paging');
    assert.deepEqual(ids(await p.overdueDevices({ ...base, onlyHealthy: true })), ['b/', 'c/', 'f/']);
    assert.deepEqual(ids(await p.overdueDevices({ ...base, sinceMs: NOW - 10_000 })), ['b/', 'f/'], 'never-heard devices count from sinceMs');
    assert.deepEqual(ids(await p.overdueDevices({ ...base, heartbeat: { seconds: 200 } })), ['c/', 'd/', 'f/']);
  });

  it('overdueDevices with a heartbeat from a tag: only a positive number there sets an expectation', async (store) => {
    await seedOverdue(store);
    const p = store.pipeline;
    // a: 10 s, heard 50 s ago; e: 1.5 s; d: 2000 s, never heard, counts from T0 (1000 s ago); f: -5 (none).
    assert.deepEqual(ids(await p.overdueDevices({ ...base, heartbeat: { tagPath: ['hb', 's'] } })), ['a/', 'e/']);
    assert.deepEqual(ids(await p.overdueDevices({ ...base, heartbeat: { tagPath: ['hb', 's'] }, nowMs: T0 + 2_500_000 })), ['a/', 'd/', 'e/']);
    assert.deepEqual(ids(await p.overdueDevices({ ...base, heartbeat: { tagPath: ['missing'] } })), []);
    assert.deepEqual(ids(await p.overdueDevices({ ...base, heartbeat: { tagPath: ['hb'] } })), [], 'an object is not a number');
  });

  it('overdueDevices with a where condition looks only at matching devices', async (store) => {
    await seedOverdue(store);
    const p = store.pipeline;
    assert.deepEqual(ids(await p.overdueDevices({ ...base, where: eq(tag('site'), 'paris') })), ['b/', 'c/']);
    assert.deepEqual(ids(await p.overdueDevices({ ...base, where: eq(tag('site'), 'lyon'), onlyHealthy: true })), []);
    assert.deepEqual(ids(await p.overdueDevices({ ...base, where: eq(tag('site'), 'paris'), heartbeat: { tagPath: ['hb', 's'] } })), ['a/']);
  });
}

function newAlert(id: string, ruleName: string, deviceId: string, over: Partial<AlertRecord> = {}) {
  return { id, ruleName, deviceId, moduleId: '', severity: 'warning' as AlertSeverity, details: { rule: 'temp > 30', value: 31 }, raisedMs: T0, ...over };
}

function alertCases(it: Case): void {
  it('openAlert stores a raised alert unless one is open for the rule and identity; after clearing, a new one opens', async (store) => {
    const p = store.pipeline;
    const first = await p.openAlert(newAlert('a1', 'hot', 'd1'));
    const expected: AlertRecord = {
      ...newAlert('a1', 'hot', 'd1'), status: 'raised', acknowledgedMs: null, acknowledgedBy: null, clearedMs: null, updatedMs: T0, rev: 1,
    };
    assert.deepEqual(first, expected);
    assert.deepEqual(await p.getAlert('a1'), expected);
    assert.equal(await p.openAlert(newAlert('a2', 'hot', 'd1', { severity: 'critical' })), undefined);
    assert.equal(await p.getAlert('a2'), undefined);
    assert.ok(await p.openAlert(newAlert('a3', 'hot', 'd1', { moduleId: 'm1' })));
    assert.ok(await p.openAlert(newAlert('a4', 'cold', 'd1')));
    assert.deepEqual(await p.findOpenAlert('hot', dev('d1')), expected);
    assert.equal((await p.findOpenAlert('hot', dev('d1', 'm1')))?.id, 'a3');
    assert.equal(await p.findOpenAlert('hot', dev('d2')), undefined);

    const acked = await p.updateAlert('a1', { status: 'acknowledged', acknowledgedMs: T0 + 5, acknowledgedBy: 'ops@example' }, T0 + 5, 1);
    assert.deepEqual(acked, { ...expected, status: 'acknowledged', acknowledgedMs: T0 + 5, acknowledgedBy: 'ops@example', updatedMs: T0 + 5, rev: 2 });
    assert.equal(await p.openAlert(newAlert('a5', 'hot', 'd1')), undefined, 'an acknowledged alert is still open');
    assert.equal((await p.findOpenAlert('hot', dev('d1')))?.id, 'a1');

    const cleared = await p.updateAlert('a1', { status: 'cleared', clearedMs: T0 + 9, details: { cleared: 'temp 25' } }, T0 + 9, 2);
    assert.deepEqual(cleared, { ...acked, status: 'cleared', clearedMs: T0 + 9, details: { cleared: 'temp 25' }, updatedMs: T0 + 9, rev: 3 });
    assert.equal(await p.findOpenAlert('hot', dev('d1')), undefined);
    assert.equal((await p.openAlert(newAlert('a6', 'hot', 'd1', { raisedMs: T0 + 10 })))?.rev, 1);
    assert.equal((await p.findOpenAlert('hot', dev('d1')))?.id, 'a6');
  });

  it('updateAlert is a compare-and-set on rev; undefined for a stale rev or an absent alert', async (store) => {
    const p = store.pipeline;
    await p.openAlert(newAlert('a1', 'hot', 'd1'));
    assert.equal(await p.updateAlert('a1', { status: 'cleared', clearedMs: T0 + 1 }, T0 + 1, 2), undefined);
    assert.equal(await p.updateAlert('nope', { status: 'cleared' }, T0 + 1, 1), undefined);
    assert.equal((await p.getAlert('a1'))?.status, 'raised');
    assert.equal((await p.updateAlert('a1', { status: 'cleared', clearedMs: T0 + 1 }, T0 + 1, 1))?.rev, 2);
    assert.equal(await p.updateAlert('a1', { status: 'raised' }, T0 + 2, 1), undefined);
  });

  it('openAlert raced by several nodes for one rule and device opens exactly one', async (store) => {
    const opened = await Promise.all(Array.from({ length: 6 }, (_, i) => store.pipeline.openAlert(newAlert(`a${i}`, 'hot', 'd1'))));
    assert.equal(opened.filter((a) => a !== undefined).length, 1);
  });

  it('listAlerts filters by status, open, rule and device, newest first, paging by (raisedMs, id)', async (store) => {
    const p = store.pipeline;
    const plan: [string, string, string, number][] = [
      ['a1', 'hot', 'd1', T0], ['a2', 'hot', 'd2', T0 + 1], ['a3', 'cold', 'd1', T0 + 1], ['a4', 'cold', 'd2', T0 + 2],
      ['a5', 'hot', 'd3', T0 + 3], ['a6', 'wet', 'd1', T0 + 1],
    ];
    for (const [id, rule, device, raisedMs] of plan) assert.ok(await p.openAlert(newAlert(id, rule, device, { raisedMs })));
    await p.updateAlert('a2', { status: 'acknowledged', acknowledgedMs: T0 + 5 }, T0 + 5, 1);
    await p.updateAlert('a4', { status: 'cleared', clearedMs: T0 + 5 }, T0 + 5, 1);
    const list = async (o: Partial<Parameters<Store['pipeline']['listAlerts']>[0]>): Promise<string[]> =>
      (await p.listAlerts({ limit: 100, ...o })).map((a) => a.id);
    assert.deepEqual(await list({}), ['a5', 'a4', 'a6', 'a3', 'a2', 'a1']);
    assert.deepEqual(await list({ status: 'raised' }), ['a5', 'a6', 'a3', 'a1']);
    assert.deepEqual(await list({ status: 'cleared' }), ['a4']);
    assert.deepEqual(await list({ open: true, status: 'cleared' }), ['a5', 'a6', 'a3', 'a2', 'a1']);
    assert.deepEqual(await list({ ruleName: 'hot' }), ['a5', 'a2', 'a1']);
    assert.deepEqual(await list({ deviceId: 'd1', open: true }), ['a6', 'a3', 'a1']);
    assert.deepEqual(await list({ ruleName: 'cold', deviceId: 'd2' }), ['a4']);
    const paged: string[] = [];
    let after: { raisedMs: number; id: string } | undefined;
    for (;;) {
      const page = await p.listAlerts({ limit: 2, after });
      paged.push(...page.map((a) => a.id));
      const last = page[page.length - 1];
      if (page.length < 2 || last === undefined) break;
      after = { raisedMs: last.raisedMs, id: last.id };
    }
    assert.deepEqual(paged, ['a5', 'a4', 'a6', 'a3', 'a2', 'a1']);
    assert.deepEqual(await list({ after: { raisedMs: T0 + 1, id: 'a4' } }), ['a3', 'a2', 'a1']);
  });

  it('alertCounts counts open alerts by severity, every severity present, and the acknowledged ones', async (store) => {
    const p = store.pipeline;
    const none = { open: { critical: 0, error: 0, warning: 0, info: 0 }, acknowledged: 0 };
    assert.deepEqual(await p.alertCounts(), none);
    await p.openAlert(newAlert('a1', 'r1', 'd1', { severity: 'critical' }));
    await p.openAlert(newAlert('a2', 'r2', 'd1', { severity: 'critical' }));
    await p.openAlert(newAlert('a3', 'r1', 'd2', { severity: 'info' }));
    await p.openAlert(newAlert('a4', 'r1', 'd3', { severity: 'error' }));
    await p.updateAlert('a2', { status: 'acknowledged', acknowledgedMs: T0 }, T0, 1);
    await p.updateAlert('a4', { status: 'cleared', clearedMs: T0 }, T0, 1);
    assert.deepEqual(await p.alertCounts(), { open: { critical: 2, error: 0, warning: 0, info: 1 }, acknowledged: 1 });
  });
}
