import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CorralError } from '../errors/index.js';
import { ManualClock } from '../../ports/clock/index.js';
import type { StoredEvent } from '../../ports/eventlog/index.js';
import { identityRecord } from '../../ports/store/contract.js';
import type { IdentityKey, JsonObject, JsonValue } from '../../ports/store/index.js';
import type { AlertRecord, PipelineStore } from '../../ports/store/pipeline.js';
import { SqliteStore } from '../../ports/store/sqlite/index.js';
import { Alerts } from './alerts.js';
import { PipelineMessage } from './message.js';
import { parseRule, ruleValidator, RulesEngine, type RuleErrorContext } from './rules.js';
import { PipelineSettings } from './settings.js';
import { WindowTracker } from './windows.js';

const T0 = Date.UTC(2026, 0, 1);
const S = 1000;

async function setUp(opts: { devices?: Record<string, JsonObject>; wrap?: (s: PipelineStore) => PipelineStore } = {}) {
  const store = SqliteStore.open(':memory:');
  await store.migrate();
  for (const [id, tags] of Object.entries(opts.devices ?? {})) await store.identities.insert(identityRecord(id, '', { twin: { tags } }));
  const clock = new ManualClock(T0);
  const settings = new PipelineSettings({ store: store.pipeline, clock, pollMs: 0 });
  settings.register('rule', ruleValidator);
  const ops: string[] = [];
  const alerts = new Alerts({
    store: opts.wrap ? opts.wrap(store.pipeline) : store.pipeline, clock,
    events: { alert: async (op, key) => { ops.push(`${op} ${key.deviceId}`); } },
  });
  const errors: { err: unknown; context: RuleErrorContext }[] = [];
  const engine = new RulesEngine({ settings, alerts, store, clock, onError: (err, context) => errors.push({ err, context }) });
  let sequence = 0;
  const record = (kind: string, deviceId: string, atMs: number, body: JsonValue, moduleId = ''): PipelineMessage => {
    const e: StoredEvent = { kind, deviceId, moduleId, enqueuedTimeMs: atMs, properties: {}, body: Buffer.from(JSON.stringify(body)), sequence: ++sequence };
    return new PipelineMessage('p0', e);
  };
  return {
    store, clock, settings, alerts, engine, ops, errors,
    rule: (name: string, doc: JsonObject) => settings.put('rule', name, doc),
    /** Handles telemetry records of one device at T0 + seconds, the clock moved to the last one. */
    send: async (deviceId: string, ...samples: [seconds: number, body: JsonValue][]) => {
      clock.advance(T0 + samples[samples.length - 1][0] * S - clock.now());
      await engine.handle('p0', samples.map(([s, body]) => record('telemetry', deviceId, T0 + s * S, body)));
    },
    event: (kind: string, deviceId: string) => engine.handle('p0', [record(kind, deviceId, clock.now(), {})]),
    record,
    setTwin: async (deviceId: string, change: { tags?: JsonObject; reported?: JsonObject }) => {
      const r = await store.identities.get({ deviceId, moduleId: '' });
      assert.ok(r);
      await store.identities.replace({ ...r, twin: { ...r.twin, ...change } }, r.rev);
    },
    /** Oldest first; alerts raised in the same millisecond by rule, then device. */
    alertsOf: async (rule?: string): Promise<AlertRecord[]> => [...(await alerts.list({ ...(rule ? { ruleName: rule } : {}), limit: 1000 })).items]
      .sort((a, b) => a.raisedMs - b.raisedMs || a.ruleName.localeCompare(b.ruleName) || a.deviceId.localeCompare(b.deviceId)),
    close: () => store.close(),
  };
}

type Hub = Awaited<ReturnType<typeof setUp>>;

/** Each alert as `device status` in raise order, with its severity when asked. */
async function summary(hub: Hub, rule?: string): Promise<string[]> {
  return (await hub.alertsOf(rule)).map((a) => `${a.deviceId} ${a.status}`);
}

test('a threshold rule raises once while its condition holds, clears when a record makes it false, and raises anew after', async () => {
  const hub = await setUp();
  try {
    await hub.rule('hot', { type: 'threshold', condition: '$body.temperature > 30', severity: 'critical' });
    await hub.send('d1', [0, { temperature: 25 }]);
    assert.deepEqual(await summary(hub), []);
    await hub.send('d1', [1, { temperature: 31 }], [2, { temperature: 35 }], [3, { temperature: 40 }]);
    await hub.send('d2', [3, { temperature: 10 }]);
    const [raised] = await hub.alertsOf();
    assert.deepEqual(await summary(hub), ['d1 raised']);
    assert.equal(raised.severity, 'critical');
    assert.equal(raised.raisedMs, T0 + 3 * S, 'raised when the batch was handled');
    assert.deepEqual(raised.details, { type: 'threshold', condition: '$body.temperature > 30', partition: 'p0', sequenceNumber: 2, enqueuedTime: '2026-01-01T00:00:01.000Z', body: { temperature: 31 } });
    await hub.send('d1', [4, { temperature: 20 }]);
    assert.deepEqual(await summary(hub), ['d1 cleared']);
    assert.deepEqual((await hub.alertsOf())[0].details.cleared, { partition: 'p0', sequenceNumber: 6, enqueuedTime: '2026-01-01T00:00:04.000Z', body: { temperature: 20 } });
    await hub.send('d1', [5, { temperature: 33 }]);
    assert.deepEqual(await summary(hub), ['d1 cleared', 'd1 raised']);
    assert.deepEqual(hub.ops, ['alertRaised d1', 'alertCleared d1', 'alertRaised d1']);
    assert.deepEqual(hub.errors, []);
  } finally {
    await hub.close();
  }
});

test('with a clearCondition, a threshold alert clears only when it holds (hysteresis)', async () => {
  const hub = await setUp();
  try {
    await hub.rule('hot', { type: 'threshold', condition: '$body.t > 30', clearCondition: '$body.t < 28' });
    await hub.send('d1', [0, { t: 31 }]);
    await hub.send('d1', [1, { t: 29 }]);
    assert.deepEqual(await summary(hub), ['d1 raised']);
    await hub.send('d1', [2, { t: 27 }]);
    assert.deepEqual(await summary(hub), ['d1 cleared']);
    assert.equal((await hub.alertsOf())[0].severity, 'warning', 'the default severity');
  } finally {
    await hub.close();
  }
});

test('a scoped rule watches only the devices whose twin matches, and clears when a device leaves the scope', async () => {
  const hub = await setUp({ devices: { d1: { site: 'lyon' }, d2: { site: 'paris' } } });
  try {
    await hub.rule('hot', { type: 'threshold', condition: '$body.t > 30', scope: "tags.site = 'lyon'" });
    await hub.send('d1', [0, { t: 31 }]);
    await hub.send('d2', [0, { t: 31 }]);
    assert.deepEqual(await summary(hub), ['d1 raised']);
    await hub.setTwin('d1', { tags: { site: 'paris' } });
    await hub.event('twinChange', 'd1');
    assert.deepEqual(await summary(hub), ['d1 cleared']);
    await hub.send('d1', [1, { t: 40 }]);
    assert.deepEqual(await summary(hub), ['d1 cleared'], 'out of scope now');
  } finally {
    await hub.close();
  }
});

test('a condition reading $twin judges against the sender\'s twin', async () => {
  const hub = await setUp({ devices: { d1: { max: 30 }, d2: { max: 50 } } });
  try {
    await hub.rule('over', { type: 'threshold', condition: '$body.t > $twin.tags.max' });
    await hub.send('d1', [0, { t: 40 }]);
    await hub.send('d2', [0, { t: 40 }]);
    assert.deepEqual(await summary(hub), ['d1 raised']);
  } finally {
    await hub.close();
  }
});

test('a tumbling avg window is judged when a record of a later window arrives, and by the sweep once the device is quiet', async () => {
  const hub = await setUp();
  try {
    await hub.rule('warm', { type: 'window', field: '$body.t', aggregate: 'avg', window: { kind: 'tumbling', seconds: 60 }, operator: '>', threshold: 30, severity: 'error' });
    await hub.send('d1', [0, { t: 20 }], [10, { t: 50 }], [59, { other: 1 }]);
    assert.deepEqual(await summary(hub), [], 'the first window has not ended');
    await hub.send('d1', [60, { t: 10 }]);
    const [a] = await hub.alertsOf();
    assert.deepEqual(await summary(hub), ['d1 raised']);
    assert.equal(a.severity, 'error');
    assert.deepEqual(a.details, {
      type: 'window', aggregate: 'avg', field: '$body.t', window: { kind: 'tumbling', seconds: 60 }, operator: '>', threshold: 30,
      value: 35, samples: 2, windowStart: '2026-01-01T00:00:00.000Z', windowEnd: '2026-01-01T00:01:00.000Z',
    });
    await hub.send('d1', [70, { t: 20 }], [119, { t: 30 }]);
    assert.deepEqual(await summary(hub), ['d1 raised'], 'the second window (avg 20) is still open');
    await hub.send('d1', [125, { t: 40 }]);
    assert.deepEqual(await summary(hub), ['d1 cleared'], 'avg 20 clears');
    hub.clock.advance(T0 + 182 * S - hub.clock.now());
    await hub.engine.sweep(hub.clock.now());
    assert.deepEqual(await summary(hub), ['d1 cleared'], 'within the grace after the window end');
    hub.clock.advance(5 * S);
    await hub.engine.sweep(hub.clock.now());
    assert.deepEqual(await summary(hub), ['d1 cleared', 'd1 raised'], 'the quiet device\'s third window (avg 40) is judged by the sweep');
    assert.equal(hub.engine.windowStats().identities, 0, 'and forgotten');
  } finally {
    await hub.close();
  }
});

test('tumbling min, max and count are judged at each window\'s end; empty windows count 0', async () => {
  const hub = await setUp();
  try {
    const tumbling = { kind: 'tumbling', seconds: 10 };
    await hub.rule('low', { type: 'window', field: 't', aggregate: 'min', window: tumbling, operator: '<', threshold: 0 });
    await hub.rule('high', { type: 'window', field: 't', aggregate: 'max', window: tumbling, operator: '>=', threshold: 100 });
    await hub.rule('busy', { type: 'window', aggregate: 'count', window: tumbling, operator: '>=', threshold: 3 });
    await hub.send('d1', [0, { t: 5 }], [1, { t: -2 }], [2, { t: 100 }]);
    assert.deepEqual(await summary(hub), []);
    await hub.send('d1', [10, { t: 7 }]);
    assert.deepEqual((await hub.alertsOf()).map((a) => `${a.ruleName} ${a.details.value}`), ['busy 3', 'high 100', 'low -2']);
    await hub.send('d1', [35, { t: 50 }]);
    assert.deepEqual((await hub.alertsOf()).map((a) => `${a.ruleName} ${a.status} ${(a.details.cleared as JsonObject).value}`), ['busy cleared 1', 'high cleared 7', 'low cleared 7']);
  } finally {
    await hub.close();
  }
});

test('a counted tumbling window of a quiet device is followed by one empty window (count 0) in the sweep', async () => {
  const hub = await setUp();
  try {
    await hub.rule('flood', { type: 'window', aggregate: 'count', window: { kind: 'tumbling', seconds: 10 }, operator: '>', threshold: 2 });
    await hub.send('d1', [0, {}], [1, {}], [2, {}]);
    hub.clock.advance(T0 + 16 * S - hub.clock.now());
    await hub.engine.sweep(hub.clock.now());
    assert.deepEqual(await summary(hub), ['d1 raised']);
    hub.clock.advance(10 * S);
    await hub.engine.sweep(hub.clock.now());
    assert.deepEqual(await summary(hub), ['d1 cleared']);
    assert.equal(((await hub.alertsOf())[0].details.cleared as JsonObject).value, 0);
    assert.equal(hub.engine.windowStats().identities, 0);
  } finally {
    await hub.close();
  }
});

test('windows fed from a partition this node gave up are dropped unjudged', async () => {
  const hub = await setUp();
  try {
    await hub.rule('warm', { type: 'window', field: 't', aggregate: 'max', window: { kind: 'tumbling', seconds: 10 }, operator: '>', threshold: 0 });
    await hub.send('d1', [0, { t: 5 }]);
    hub.engine.forgetPartition('p0');
    hub.clock.advance(60 * S);
    await hub.engine.sweep(hub.clock.now());
    assert.deepEqual(await summary(hub), []);
    assert.equal(hub.engine.windowStats().identities, 0);
  } finally {
    await hub.close();
  }
});

test('a sliding window is judged on every record over the last N seconds of event time', async () => {
  const hub = await setUp();
  try {
    const sliding = { kind: 'sliding', seconds: 30 };
    await hub.rule('low', { type: 'window', field: 't', aggregate: 'min', window: sliding, operator: '<', threshold: 0 });
    await hub.send('d1', [0, { t: 5 }]);
    assert.deepEqual(await summary(hub), []);
    await hub.send('d1', [10, { t: -1 }]);
    assert.deepEqual(await summary(hub), ['d1 raised'], 'raised at the record that made it true');
    await hub.send('d1', [35, { t: 3 }]);
    assert.deepEqual(await summary(hub), ['d1 raised'], '-1 at 10 s is still within (5 s, 35 s]');
    await hub.send('d1', [40, { t: 4 }]);
    assert.deepEqual(await summary(hub), ['d1 cleared'], '(10 s, 40 s] holds 3 and 4');
    assert.equal(((await hub.alertsOf())[0].details.cleared as JsonObject).value, 3);
  } finally {
    await hub.close();
  }
});

test('sliding avg, max and count each raise and clear at the exact record', async () => {
  const hub = await setUp();
  try {
    const sliding = { kind: 'sliding', seconds: 20 };
    await hub.rule('avg', { type: 'window', field: 't', aggregate: 'avg', window: sliding, operator: '>', threshold: 30 });
    await hub.rule('max', { type: 'window', field: 't', aggregate: 'max', window: sliding, operator: '>', threshold: 45 });
    await hub.rule('burst', { type: 'window', aggregate: 'count', window: { kind: 'sliding', seconds: 10 }, operator: '>', threshold: 2, filter: "$body.kind = 'error'" });
    const states: string[] = [];
    const step = async (s: number, body: JsonObject) => {
      await hub.send('d1', [s, body]);
      const open = (await hub.alerts.list({ open: true })).items.map((a) => a.ruleName).sort();
      states.push(`${s}:${open.join(',')}`);
    };
    await step(0, { t: 40, kind: 'error' });
    await step(5, { t: 10, kind: 'error' });
    await step(6, { t: 50, kind: 'ok' });
    await step(7, { t: 50, kind: 'error' });
    await step(21, { t: 30, kind: 'error' });
    await step(30, { t: 30, kind: 'error' });
    assert.deepEqual(states, [
      '0:avg', // avg 40
      '5:', // avg 25
      '6:avg,max', // avg 33.3, max 50; 'ok' is not counted by burst
      '7:avg,burst,max', // avg 37.5; errors at 0, 5, 7 s in (−3 s, 7 s]
      '21:avg,max', // (1 s, 21 s]: 10, 50, 50, 30 → avg 35, max 50; one error in (11 s, 21 s]
      '30:', // (10 s, 30 s]: 30, 30 → avg 30, max 30; two errors in (20 s, 30 s]
    ]);
  } finally {
    await hub.close();
  }
});

test('a sliding window keeps at most its cap of samples per device, the newest', () => {
  const tracker = new WindowTracker({ kind: 'sliding', seconds: 3600, aggregate: 'count' }, 3);
  const key = { deviceId: 'd1', moduleId: '' };
  const counts = [1, 2, 3, 4, 5].map((i) => tracker.add(key, 'p0', T0 + i * S, i)[0].value);
  assert.deepEqual(counts, [1, 2, 3, 3, 3]);
  const avg = new WindowTracker({ kind: 'sliding', seconds: 3600, aggregate: 'avg' }, 2);
  assert.deepEqual([10, 20, 60].map((v, i) => avg.add(key, 'p0', T0 + i * S, v)[0].value), [10, 15, 40]);
});

test('an absence rule raises for devices not heard from for N seconds and clears when one is heard from', async () => {
  const hub = await setUp({ devices: { d1: {}, d2: {}, d3: { site: 'x' } } });
  try {
    await hub.store.pipeline.mergeDeviceState([
      { deviceId: 'd1', moduleId: '', values: {}, lastSeenMs: T0 },
      { deviceId: 'd3', moduleId: '', values: {}, lastSeenMs: T0 },
    ]);
    await hub.rule('silent', { type: 'absence', seconds: 120, scope: 'NOT IS_DEFINED(tags.site)', severity: 'info' });
    hub.clock.advance(119 * S);
    await hub.engine.sweep(hub.clock.now());
    assert.deepEqual(await summary(hub), []);
    hub.clock.advance(2 * S);
    await hub.engine.sweep(hub.clock.now());
    assert.deepEqual(await summary(hub), ['d1 raised', 'd2 raised'], 'd2, never heard from, counts from the rule\'s creation; d3 is out of scope');
    assert.equal((await hub.alertsOf())[0].severity, 'info');
    await hub.engine.sweep(hub.clock.now());
    assert.equal((await hub.alertsOf()).length, 2, 'one open alert per device');
    await hub.send('d1', [125, { t: 1 }]);
    assert.deepEqual(await summary(hub), ['d1 cleared', 'd2 raised']);
    assert.deepEqual((await hub.alertsOf())[0].details.cleared, { heardTime: '2026-01-01T00:02:05.000Z' });
  } finally {
    await hub.close();
  }
});

test('a twin rule is judged on twin changes and lifecycle events, and scans the fleet once for a new rule', async () => {
  const hub = await setUp({ devices: { d1: {}, d2: {} } });
  try {
    await hub.setTwin('d1', { reported: { battery: 50 } });
    await hub.setTwin('d2', { reported: { battery: 3 } });
    await hub.rule('battery', { type: 'twin', condition: 'properties.reported.battery < 10', severity: 'error' });
    await hub.engine.sweep(hub.clock.now());
    assert.deepEqual(await summary(hub), ['d2 raised'], 'the scan finds the device already matching');
    hub.clock.advance(S);
    await hub.setTwin('d1', { reported: { battery: 5 } });
    await hub.event('twinChange', 'd1');
    assert.deepEqual(await summary(hub), ['d2 raised', 'd1 raised']);
    assert.equal((await hub.alertsOf())[1].severity, 'error');
    await hub.setTwin('d1', { reported: { battery: 80 } });
    await hub.event('twinChange', 'd1');
    assert.deepEqual(await summary(hub), ['d2 raised', 'd1 cleared']);
    hub.clock.advance(S);
    await hub.store.identities.insert(identityRecord('d3', '', { twin: { reported: { battery: 1 } } }));
    await hub.event('lifecycle', 'd3');
    assert.deepEqual(await summary(hub), ['d2 raised', 'd1 cleared', 'd3 raised']);
    await hub.store.identities.delete({ deviceId: 'd3', moduleId: '' });
    await hub.event('lifecycle', 'd3');
    assert.deepEqual(await summary(hub), ['d2 raised', 'd1 cleared', 'd3 cleared'], 'a deleted identity\'s alerts clear');
  } finally {
    await hub.close();
  }
});

test('disabled rules raise nothing; the alerts of a removed or disabled rule clear at the next sweep', async () => {
  const hub = await setUp();
  try {
    await hub.rule('off', { type: 'threshold', condition: '$body.t > 0', enabled: false });
    await hub.rule('on', { type: 'threshold', condition: '$body.t > 0' });
    await hub.rule('other', { type: 'threshold', condition: '$body.t > 0' });
    await hub.send('d1', [0, { t: 1 }]);
    assert.deepEqual((await hub.alertsOf()).map((a) => a.ruleName), ['on', 'other']);
    await hub.settings.remove('rule', 'on');
    await hub.rule('other', { type: 'threshold', condition: '$body.t > 0', enabled: false });
    await hub.engine.sweep(hub.clock.now());
    assert.deepEqual((await hub.alertsOf()).map((a) => `${a.ruleName} ${a.status}`), ['on cleared', 'other cleared']);
  } finally {
    await hub.close();
  }
});

test('a stored rule that no longer compiles is reported and skipped; the other rules go on', async () => {
  const hub = await setUp();
  try {
    await hub.store.pipeline.putSetting('rule', 'broken', { type: 'threshold', condition: '$body.t >' }, T0);
    await hub.rule('hot', { type: 'threshold', condition: '$body.t > 30' });
    await hub.send('d1', [0, { t: 31 }]);
    await hub.send('d1', [1, 'not an object']);
    assert.deepEqual(await summary(hub), ['d1 cleared']);
    assert.deepEqual(hub.errors.map((e) => e.context), [{ rule: 'broken' }]);
  } finally {
    await hub.close();
  }
});

test('a Store failure rejects the batch, so the cursor hands it over again', async () => {
  let failing = true;
  const hub = await setUp({
    wrap: (s) => Object.assign(Object.create(s) as PipelineStore, {
      openAlert: async (...args: Parameters<PipelineStore['openAlert']>) => {
        if (failing) throw new Error('database is locked');
        return s.openAlert(...args);
      },
    }),
  });
  try {
    await hub.rule('hot', { type: 'threshold', condition: '$body.t > 30' });
    const batch = [hub.record('telemetry', 'd1', T0, { t: 31 })];
    await assert.rejects(hub.engine.handle('p0', batch), /locked/);
    failing = false;
    await hub.engine.handle('p0', batch);
    await hub.engine.handle('p0', batch);
    assert.deepEqual(await summary(hub), ['d1 raised'], 'handing a batch over again changes nothing');
  } finally {
    await hub.close();
  }
});

function invalid(doc: JsonObject, message: RegExp): void {
  assert.throws(() => parseRule('r1', doc), (err) => err instanceof CorralError && err.code === 400004 && message.test(err.message), JSON.stringify(doc));
}

test('invalid rule documents are refused with a message naming the field', () => {
  const win = { type: 'window', field: 't', aggregate: 'avg', window: { kind: 'tumbling', seconds: 60 }, operator: '>', threshold: 1 };
  invalid({}, /rule 'r1': type must be one of threshold, window, absence, twin, got nothing/);
  invalid({ type: 'alarm' }, /type must be one of .*, got "alarm"/);
  invalid({ type: 'threshold' }, /condition must be a non-empty string, got nothing/);
  invalid({ type: 'threshold', condition: '$body.t >' }, /rule 'r1': condition: query error at position/);
  invalid({ type: 'threshold', condition: 'true', clearCondition: 5 }, /clearCondition must be a non-empty string, got 5/);
  invalid({ type: 'threshold', condition: 'true', severity: 'fatal' }, /severity must be one of critical, error, warning, info, got "fatal"/);
  invalid({ type: 'threshold', condition: 'true', enabled: 'yes' }, /enabled must be true or false/);
  invalid({ type: 'threshold', condition: 'true', scope: "tags.site = " }, /rule 'r1': scope: query error/);
  invalid({ type: 'threshold', condition: 'true', threshold: 3 }, /unknown field 'threshold'/);
  invalid({ ...win, aggregate: 'median' }, /aggregate must be one of avg, min, max, count, got "median"/);
  invalid({ ...win, field: undefined as unknown as JsonValue }, /field must be a non-empty string, got nothing/);
  invalid({ ...win, field: '$twin.tags.x' }, /rule 'r1': field: .*not in the body/);
  invalid({ ...win, window: 60 }, /window must be \{"kind"/);
  invalid({ ...win, window: { kind: 'hopping', seconds: 60 } }, /window.kind must be one of tumbling, sliding, got "hopping"/);
  invalid({ ...win, window: { kind: 'sliding', seconds: 0 } }, /window.seconds must be an integer from 1 to 86400, got 0/);
  invalid({ ...win, window: { kind: 'sliding', seconds: 5, size: 1 } }, /window must be an object with kind and seconds only, got "window.size"/);
  invalid({ ...win, operator: '=>' }, /operator must be one of >, >=, <, <=, =, !=, got "=>"/);
  invalid({ ...win, threshold: '30' }, /threshold must be a number, got "30"/);
  invalid({ type: 'absence', seconds: 1.5 }, /seconds must be an integer from 1 to 2592000, got 1.5/);
  invalid({ type: 'absence', seconds: 60, condition: 'true' }, /unknown field 'condition'/);
  invalid({ type: 'twin', condition: 'telemetry.t > 3' }, /condition reads telemetry/);
});

test('a valid rule is stored with its defaults, and a count window needs no field', async () => {
  const hub = await setUp();
  try {
    const r = await hub.rule('busy', { type: 'window', aggregate: 'count', window: { kind: 'sliding', seconds: 5 }, operator: '>', threshold: 10, description: 'chatty' });
    assert.deepEqual(r.doc, { type: 'window', description: 'chatty', severity: 'warning', enabled: true, aggregate: 'count', window: { kind: 'sliding', seconds: 5 }, operator: '>', threshold: 10 });
    await assert.rejects(hub.rule('bad', { type: 'twin' }), (err) => err instanceof CorralError && err.code === 400004);
  } finally {
    await hub.close();
  }
});
