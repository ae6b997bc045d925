import assert from 'node:assert/strict';
import { test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Right } from '../../core/access/index.js';
import { AccessDenied } from '../../core/errors/index.js';
import { PipelineSettings } from '../../core/pipeline/index.js';
import { Alerts } from '../../core/pipeline/alerts.js';
import { ruleValidator } from '../../core/pipeline/rules.js';
import { healthProfileValidator, Wellness } from '../../core/pipeline/wellness.js';
import { ManualClock } from '../../ports/clock/index.js';
import { SqliteStore } from '../../ports/store/sqlite/index.js';
import { registerAlertRoutes } from './alerts.js';
import { toWireError } from './wire-errors.js';

/** The routes on a bare Fastify: the caller's policy and rights come from test headers, errors as the REST server sends them. */
async function setUp() {
  const store = SqliteStore.open(':memory:');
  await store.migrate();
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const settings = new PipelineSettings({ store: store.pipeline, clock, pollMs: 0 });
  settings.register('rule', ruleValidator);
  settings.register('healthProfile', healthProfileValidator);
  const alerts = new Alerts({ store: store.pipeline, clock, events: { alert: async () => undefined } });
  const wellness = new Wellness({ store: store.pipeline, alerts, settings, clock, onError: () => undefined });
  const app: FastifyInstance = Fastify();
  app.addHook('onRequest', async (req) => {
    const rights = new Set(String(req.headers['x-rights'] ?? '').split(',').filter(Boolean) as Right[]);
    const principal = { policy: String(req.headers['x-policy'] ?? 'test'), rights };
    const needed = req.routeOptions.config.rights ?? [];
    if (!needed.some((r) => rights.has(r))) throw new AccessDenied(principal.policy, needed.join(' or '));
    req.principal = principal;
  });
  app.setErrorHandler((err, _req, reply) => {
    const w = toWireError(err);
    void reply.code(w.status).headers(w.headers).send(w.body);
  });
  registerAlertRoutes(app, { settings, alerts, wellness });
  await app.ready();
  const call = (method: 'GET' | 'PUT' | 'POST' | 'DELETE', url: string, opts: { body?: unknown; rights?: string; headers?: Record<string, string> } = {}) =>
    app.inject({ method, url, headers: { 'x-rights': opts.rights ?? 'RegistryRead,RegistryWrite,ServiceConnect', 'x-policy': 'service', ...opts.headers }, ...(opts.body === undefined ? {} : { payload: opts.body as object }) });
  return { store, clock, alerts, call, close: async () => { await app.close(); await store.close(); } };
}

test('rules are created, read, replaced with If-Match, listed and removed; a bad rule is a 400 naming the field', async () => {
  const hub = await setUp();
  try {
    const created = await hub.call('PUT', '/corral/v1/rules/hot?create=true', { body: { type: 'threshold', condition: '$body.t > 30' } });
    assert.equal(created.statusCode, 201);
    assert.equal(created.headers.etag, '"1"');
    assert.equal(created.json().severity, 'warning');
    assert.equal((await hub.call('PUT', '/corral/v1/rules/hot?create=true', { body: { type: 'threshold', condition: 'true' } })).statusCode, 409);
    const stale = await hub.call('PUT', '/corral/v1/rules/hot', { body: { type: 'threshold', condition: 'true' }, headers: { 'if-match': '"7"' } });
    assert.equal(stale.statusCode, 409);
    const replaced = await hub.call('PUT', '/corral/v1/rules/hot', { body: { ...(created.json() as object), severity: 'critical' }, headers: { 'if-match': '"1"' } });
    assert.equal(replaced.statusCode, 200);
    assert.equal(replaced.json().severity, 'critical');
    assert.deepEqual((await hub.call('GET', '/corral/v1/rules')).json().map((r: { name: string }) => r.name), ['hot']);
    const bad = await hub.call('PUT', '/corral/v1/rules/cold', { body: { type: 'window', aggregate: 'avg', field: 't', window: { kind: 'sliding', seconds: 0 }, operator: '<', threshold: 1 } });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.headers['iothub-errorcode'], 'ArgumentInvalid');
    assert.match(bad.json().Message, /window.seconds must be an integer from 1 to 86400/);
    assert.equal((await hub.call('PUT', '/corral/v1/rules/x', { body: { type: 'absence', seconds: 60 }, rights: 'ServiceConnect' })).statusCode, 401, 'writing a rule takes RegistryWrite');
    assert.equal((await hub.call('DELETE', '/corral/v1/rules/hot')).statusCode, 204);
    assert.equal((await hub.call('GET', '/corral/v1/rules/hot')).statusCode, 404);
  } finally {
    await hub.close();
  }
});

test('health profiles have the same life cycle', async () => {
  const hub = await setUp();
  try {
    const r = await hub.call('PUT', '/corral/v1/health-profiles/sensors', { body: { condition: "tags.type = 'sensor'", heartbeatSeconds: 60 } });
    assert.equal(r.statusCode, 201);
    assert.deepEqual((await hub.call('GET', '/corral/v1/health-profiles/sensors')).json().heartbeatSeconds, 60);
    assert.equal((await hub.call('PUT', '/corral/v1/health-profiles/bad', { body: { condition: 'true', heartbeatSeconds: -1 } })).statusCode, 400);
  } finally {
    await hub.close();
  }
});

test('alerts are listed in pages, read, acknowledged by the caller\'s policy and cleared; fleet health counts them', async () => {
  const hub = await setUp();
  try {
    const ids: string[] = [];
    for (const d of ['d1', 'd2', 'd3']) {
      ids.push((await hub.alerts.raise({ ruleName: 'hot', key: { deviceId: d, moduleId: '' }, severity: 'error', details: {} })).id);
      hub.clock.advance(1000);
    }
    const first = await hub.call('GET', '/corral/v1/alerts?limit=2', { rights: 'RegistryRead' });
    assert.equal(first.statusCode, 200);
    assert.deepEqual(first.json().map((a: { deviceId: string }) => a.deviceId), ['d3', 'd2']);
    const token = first.headers['x-ms-continuation'] as string;
    const second = await hub.call('GET', `/corral/v1/alerts?limit=2&continuation=${token}`);
    assert.deepEqual(second.json().map((a: { deviceId: string }) => a.deviceId), ['d1']);
    assert.equal(second.headers['x-ms-continuation'], undefined);
    assert.equal((await hub.call('GET', '/corral/v1/alerts?status=bogus')).statusCode, 400);
    assert.equal((await hub.call('POST', `/corral/v1/alerts/${ids[0]}/acknowledge`, { rights: 'RegistryRead' })).statusCode, 401, 'acknowledging takes ServiceConnect');
    const acked = await hub.call('POST', `/corral/v1/alerts/${ids[0]}/acknowledge`, { rights: 'ServiceConnect' });
    assert.equal(acked.json().status, 'acknowledged');
    assert.equal(acked.json().acknowledgedBy, 'service');
    assert.equal((await hub.call('POST', `/corral/v1/alerts/${ids[1]}/clear`, { rights: 'ServiceConnect' })).json().status, 'cleared');
    assert.equal((await hub.call('POST', `/corral/v1/alerts/${ids[1]}/acknowledge`, { rights: 'ServiceConnect' })).statusCode, 409);
    assert.equal((await hub.call('GET', '/corral/v1/alerts/nope')).statusCode, 404);
    assert.deepEqual((await hub.call('GET', '/corral/v1/alerts?open=true&deviceId=d1')).json().map((a: { status: string }) => a.status), ['acknowledged']);
    await hub.store.pipeline.setHealth([{ deviceId: 'd1', moduleId: '' }], 'unhealthy', hub.clock.now());
    assert.deepEqual((await hub.call('GET', '/corral/v1/health', { rights: 'ServiceConnect' })).json(), {
      devices: { healthy: 0, unhealthy: 1 }, alerts: { open: { critical: 0, error: 2, warning: 0, info: 0 }, acknowledged: 1 },
    });
  } finally {
    await hub.close();
  }
});
