import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CorralError } from '../errors/index.js';
import { SystemEvents } from '../events/index.js';
import { ManualClock } from '../../ports/clock/index.js';
import { SqliteEventLog } from '../../ports/eventlog/sqlite/index.js';
import type { IdentityKey, JsonObject } from '../../ports/store/index.js';
import type { PipelineStore } from '../../ports/store/pipeline.js';
import { SqliteStore } from '../../ports/store/sqlite/index.js';
import { Alerts, alertView, OpenAlertIndex } from './alerts.js';

const d = (deviceId: string, moduleId = ''): IdentityKey => ({ deviceId, moduleId });

async function setUp(wrap: (s: PipelineStore) => PipelineStore = (s) => s) {
  const store = SqliteStore.open(':memory:');
  await store.migrate();
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const notices: { op: string; key: IdentityKey; alert: JsonObject }[] = [];
  const alerts = new Alerts({ store: wrap(store.pipeline), clock, events: { alert: async (op, key, alert) => { notices.push({ op, key, alert }); } } });
  return { store, clock, alerts, notices, close: () => store.close() };
}

function code(err: unknown): number | undefined {
  return err instanceof CorralError ? err.code : undefined;
}

test('a raise opens one alert per rule and identity; raising again returns the open one and notifies nothing', async () => {
  const hub = await setUp();
  try {
    const first = await hub.alerts.raise({ ruleName: 'hot', key: d('d1'), severity: 'critical', details: { value: 31 } });
    assert.equal(first.status, 'raised');
    assert.equal(first.severity, 'critical');
    hub.clock.advance(1000);
    const again = await hub.alerts.raise({ ruleName: 'hot', key: d('d1'), severity: 'critical', details: { value: 35 } });
    assert.equal(again.id, first.id);
    assert.deepEqual(again.details, { value: 31 });
    const other = await hub.alerts.raise({ ruleName: 'hot', key: d('d1', 'm1'), severity: 'info', details: {} });
    assert.notEqual(other.id, first.id);
    assert.deepEqual(hub.notices.map((n) => [n.op, n.key.deviceId, n.key.moduleId]), [['alertRaised', 'd1', ''], ['alertRaised', 'd1', 'm1']]);
    assert.equal(hub.notices[0].alert.id, first.id);
  } finally {
    await hub.close();
  }
});

test('an alert goes raised → acknowledged → cleared, each step notified once', async () => {
  const hub = await setUp();
  try {
    const raised = await hub.alerts.raise({ ruleName: 'hot', key: d('d1'), severity: 'warning', details: { value: 31 } });
    hub.clock.advance(5000);
    const acked = await hub.alerts.acknowledge(raised.id, 'service');
    assert.equal(acked.status, 'acknowledged');
    assert.equal(acked.acknowledgedBy, 'service');
    assert.equal(acked.acknowledgedMs, hub.clock.now());
    assert.equal((await hub.alerts.acknowledge(raised.id, 'someone-else')).acknowledgedBy, 'service', 'acknowledging twice changes nothing');
    hub.clock.advance(5000);
    const cleared = await hub.alerts.clear('hot', d('d1'), { value: 20 });
    assert.equal(cleared?.status, 'cleared');
    assert.equal(cleared?.clearedMs, hub.clock.now());
    assert.deepEqual(cleared?.details, { value: 31, cleared: { value: 20 } });
    assert.equal(await hub.alerts.clear('hot', d('d1'), {}), undefined, 'nothing open to clear');
    assert.deepEqual(hub.notices.map((n) => n.op), ['alertRaised', 'alertAcknowledged', 'alertCleared']);
    const view = alertView(cleared!); // cleared: checked above
    assert.equal(view.raisedTime, '2026-01-01T00:00:00.000Z');
    assert.equal(view.acknowledgedTime, '2026-01-01T00:00:05.000Z');
    assert.equal(view.clearedTime, '2026-01-01T00:00:10.000Z');
    assert.equal(view.moduleId, undefined);
    const next = await hub.alerts.raise({ ruleName: 'hot', key: d('d1'), severity: 'warning', details: {} });
    assert.notEqual(next.id, raised.id, 'after a clear, a raise opens a new alert');
  } finally {
    await hub.close();
  }
});

test('acknowledging a cleared alert fails with 409999; an unknown id with 404999', async () => {
  const hub = await setUp();
  try {
    const a = await hub.alerts.raise({ ruleName: 'hot', key: d('d1'), severity: 'warning', details: {} });
    const cleared = await hub.alerts.clearById(a.id, 'ops');
    assert.deepEqual(cleared.details, { cleared: { by: 'ops', manual: true } });
    assert.equal((await hub.alerts.clearById(a.id, 'ops')).rev, cleared.rev, 'clearing twice changes nothing');
    await assert.rejects(hub.alerts.acknowledge(a.id, 'ops'), (err) => code(err) === 409999 && /cleared/.test((err as Error).message));
    await assert.rejects(hub.alerts.acknowledge('nope', 'ops'), (err) => code(err) === 404999 && /nope/.test((err as Error).message));
    await assert.rejects(hub.alerts.clearById('nope', 'ops'), (err) => code(err) === 404999);
    await assert.rejects(hub.alerts.get('nope'), (err) => code(err) === 404999);
  } finally {
    await hub.close();
  }
});

test('acknowledge retries its compare-and-set when another writer moved the rev', async () => {
  let failOnce = true;
  const hub = await setUp((s) => Object.assign(Object.create(s) as PipelineStore, {
    updateAlert: async (...args: Parameters<PipelineStore['updateAlert']>) => {
      if (failOnce) { failOnce = false; return undefined; }
      return s.updateAlert(...args);
    },
  }));
  try {
    const a = await hub.alerts.raise({ ruleName: 'hot', key: d('d1'), severity: 'warning', details: {} });
    assert.equal((await hub.alerts.acknowledge(a.id, 'ops')).status, 'acknowledged');
    assert.equal(failOnce, false);
  } finally {
    await hub.close();
  }
});

test('list pages newest first with a continuation token, filters, and refuses a foreign token or a bad limit', async () => {
  const hub = await setUp();
  try {
    const ids: string[] = [];
    for (const [i, rule] of ['hot', 'cold', 'hot', 'hot', 'cold'].entries()) {
      ids.push((await hub.alerts.raise({ ruleName: rule, key: d(`d${i}`), severity: i === 0 ? 'critical' : 'warning', details: {} })).id);
      hub.clock.advance(1000);
    }
    await hub.alerts.acknowledge(ids[1], 'ops');
    await hub.alerts.clear('hot', d('d2'), {});
    const seen: string[] = [];
    let continuation: string | undefined;
    let pages = 0;
    do {
      const page = await hub.alerts.list({ limit: 2, ...(continuation ? { continuation } : {}) });
      seen.push(...page.items.map((a) => a.id));
      continuation = page.continuation;
      pages++;
    } while (continuation);
    assert.deepEqual(seen, [...ids].reverse());
    assert.equal(pages, 3);
    const ofIds = async (req: Parameters<Alerts['list']>[0]) => (await hub.alerts.list(req)).items.map((a) => ids.indexOf(a.id));
    assert.deepEqual(await ofIds({ open: true }), [4, 3, 1, 0]);
    assert.deepEqual(await ofIds({ status: 'acknowledged' }), [1]);
    assert.deepEqual(await ofIds({ status: 'cleared' }), [2]);
    assert.deepEqual(await ofIds({ ruleName: 'cold' }), [4, 1]);
    assert.deepEqual(await ofIds({ deviceId: 'd3' }), [3]);
    await assert.rejects(hub.alerts.list({ continuation: 'garbage' }), (err) => code(err) === 400004);
    await assert.rejects(hub.alerts.list({ limit: 0 }), (err) => code(err) === 400004 && /limit/.test((err as Error).message));
    assert.deepEqual(await hub.alerts.counts(), { open: { critical: 1, error: 0, warning: 3, info: 0 }, acknowledged: 1 });
  } finally {
    await hub.close();
  }
});

test('clearRule clears every open alert of a rule and no other', async () => {
  const hub = await setUp();
  try {
    for (const id of ['a', 'b', 'c']) await hub.alerts.raise({ ruleName: 'gone', key: d(id), severity: 'info', details: {} });
    await hub.alerts.raise({ ruleName: 'kept', key: d('a'), severity: 'info', details: {} });
    assert.equal(await hub.alerts.clearRule('gone', { reason: 'removed' }), 3);
    assert.deepEqual((await hub.alerts.list({ open: true })).items.map((a) => a.ruleName), ['kept']);
  } finally {
    await hub.close();
  }
});

test('the open-alert index knows what is open after a refresh and follows the changes made through Alerts', async () => {
  const hub = await setUp();
  try {
    await hub.alerts.raise({ ruleName: 'hot', key: d('d1'), severity: 'info', details: {} });
    const index = new OpenAlertIndex(hub.store.pipeline, { refreshMs: 30_000, maxTracked: 10 });
    hub.alerts.onChange((a) => index.track(a));
    assert.equal(index.isOpen('hot', d('d1')), undefined, 'unknown before the first refresh');
    await index.refreshIfDue(hub.clock.now());
    assert.equal(index.isOpen('hot', d('d1')), true);
    assert.equal(index.isOpen('hot', d('d2')), false);
    const b = await hub.alerts.raise({ ruleName: 'hot', key: d('d2'), severity: 'info', details: {} });
    assert.equal(index.isOpen('hot', d('d2')), true);
    await hub.alerts.clearById(b.id, 'ops');
    assert.equal(index.isOpen('hot', d('d2')), false);
    assert.deepEqual(index.ruleNames(), ['hot']);
    assert.deepEqual(index.openKeys('hot'), [d('d1')]);
  } finally {
    await hub.close();
  }
});

test('alert changes reach the EventLog as alerts events, as routes read them', async () => {
  const store = SqliteStore.open(':memory:');
  await store.migrate();
  const log = SqliteEventLog.open(':memory:');
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  try {
    const events = new SystemEvents({ eventLog: log, clock, hubName: 'hub', onError: (err) => { throw err; } });
    const alerts = new Alerts({ store: store.pipeline, clock, events });
    const a = await alerts.raise({ ruleName: 'hot', key: d('d1', 'm1'), severity: 'error', details: { value: 31 } });
    await alerts.acknowledge(a.id, 'ops');
    await alerts.flush(); // raise and clear append their notification without waiting; flush waits for it
    const records = await log.read({ after: 0, limit: 10 });
    assert.deepEqual(records.map((r) => [r.kind, r.deviceId, r.moduleId, r.properties.opType]), [
      ['alerts', 'd1', 'm1', 'alertRaised'], ['alerts', 'd1', 'm1', 'alertAcknowledged'],
    ]);
    const body = JSON.parse(Buffer.from(records[0].body).toString('utf8')) as JsonObject;
    assert.deepEqual(body, alertView(a));
  } finally {
    await log.close();
    await store.close();
  }
});
