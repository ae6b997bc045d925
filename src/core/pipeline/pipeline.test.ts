import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { PipelineItemConflict, PipelineItemNotFound } from '../errors/index.js';
import { systemClock } from '../../ports/clock/index.js';
import { EndpointFailed, type Endpoint, type EndpointBatch, type EndpointSpec } from '../../ports/endpoints/index.js';
import { checkEndpointSpec } from '../../ports/endpoints/index.js';
import type { EventRecord } from '../../ports/eventlog/index.js';
import { SqliteEventLogSet } from '../../ports/eventlog/sqlite/index.js';
import { SqliteStore } from '../../ports/store/sqlite/index.js';
import {
  AppendSignal, ConsumerGroups, DeviceStateConsumer, endpointRemovalCheck, endpointValidator, Endpoints, enrichmentValidator,
  Pipeline, PipelineSettings, Routing, routeValidator, signalAppends,
} from './index.js';
import { newTwin } from '../twins/index.js';

const dirs: string[] = [];

/** Records what a fake endpoint was given; `fail` decides per attempt whether (and how) it fails. */
class FakeEndpoint implements Endpoint {
  readonly batches: EndpointBatch[] = [];
  attempts = 0;
  constructor(private readonly fail: (attempt: number, batch: EndpointBatch) => EndpointFailed | undefined) {}
  async deliver(batch: EndpointBatch): Promise<void> {
    this.attempts++;
    const err = this.fail(this.attempts, batch);
    if (err) throw err;
    this.batches.push(batch);
  }
  async close(): Promise<void> {}
  get bodies(): unknown[] {
    return this.batches.flatMap((b) => b.messages.map((m) => (JSON.parse(m.json) as { body: unknown }).body));
  }
}

async function harness(t: TestContext, opts: { dataDir?: string; fail?: Record<string, (attempt: number) => EndpointFailed | undefined> } = {}) {
  const dir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'corral-pipeline-'));
  dirs.push(dir);
  const store = SqliteStore.open(join(dir, 'corral.db'));
  await store.migrate();
  const logs = SqliteEventLogSet.open(join(dir, 'eventlog.db'), { deviceIndex: false });
  const signal = new AppendSignal();
  const log = signalAppends(logs.local, signal);
  const clock = systemClock;
  const settings = new PipelineSettings({ store: store.pipeline, clock, pollMs: 0 });
  settings.register('endpoint', endpointValidator((doc) => checkEndpointSpec(doc)), endpointRemovalCheck);
  settings.register('route', routeValidator);
  settings.register('enrichment', enrichmentValidator);
  const fakes = new Map<string, FakeEndpoint>();
  const endpoints = new Endpoints({
    clock, deadLetters: log, checkSpec: checkEndpointSpec, sleep: async () => undefined,
    open: (name: string, _spec: EndpointSpec) => {
      const f = new FakeEndpoint((attempt) => opts.fail?.[name]?.(attempt));
      fakes.set(name, f);
      return f;
    },
  });
  const errors: unknown[] = [];
  const pipeline = new Pipeline({
    store, log: logs, clock, settings, endpoints, signal, hubName: 'hub.test', consumers: [new DeviceStateConsumer({ store: store.pipeline })],
    sweepers: [], tickMs: 20, onError: (err) => errors.push(err),
  });
  const routing = new Routing({ settings, pipeline, store, hubName: 'hub.test' });
  const groups = new ConsumerGroups({ store, log: logs, settings, clock, routes: () => pipeline.routeTable() });
  pipeline.start();
  const send = (deviceId: string, body: unknown, properties: Record<string, string> = {}): Promise<number[]> =>
    log.append([{ kind: 'telemetry', deviceId, moduleId: '', enqueuedTimeMs: Date.now(), properties: { 'iothub-connection-device-id': deviceId, ...properties }, body: Buffer.from(JSON.stringify(body)) } satisfies EventRecord]);
  let stopped: Promise<void> | undefined;
  const stop = () => (stopped ??= (async () => { await pipeline.stop(); await endpoints.close(); await logs.close(); await store.close(); })());
  t.after(stop);
  const webhook = { type: 'webhook', url: 'https://127.0.0.1:9/hook' };
  return { dir, store, logs, settings, routing, groups, pipeline, fakes, send, stop, errors, webhook };
}

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('a route delivers matching telemetry in order, once, and resumes at its checkpoint after a restart', async (t) => {
  const h = await harness(t);
  await h.send('d1', { t: 0 }); // before the route: not routed
  await h.settings.put('endpoint', 'hook', h.webhook);
  await h.routing.putRoute('hot', { source: 'telemetry', condition: '$body.t > 1', endpointNames: ['hook'] }, {});
  for (const t of [1, 2, 3, 4]) await h.send('d1', { t });
  await until(() => (h.fakes.get('hook')?.bodies.length ?? 0) === 3, 'three deliveries');
  assert.deepEqual(h.fakes.get('hook')!.bodies, [{ t: 2 }, { t: 3 }, { t: 4 }]);
  const dir = h.dir;
  await h.stop();
  const again = await harness(t, { dataDir: dir });
  await again.send('d1', { t: 5 });
  await until(() => (again.fakes.get('hook')?.bodies.length ?? 0) === 1, 'the delivery after the restart');
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(again.fakes.get('hook')!.bodies, [{ t: 5 }]);
  await again.stop();
});

test('a disabled route forgets its place: enabled again, it routes only what comes after', async (t) => {
  const h = await harness(t);
  await h.settings.put('endpoint', 'hook', h.webhook);
  await h.routing.putRoute('r', { source: 'telemetry', endpointNames: ['hook'] }, {});
  await h.send('d1', { n: 1 });
  await until(() => (h.fakes.get('hook')?.bodies.length ?? 0) === 1, 'first');
  await h.routing.putRoute('r', { source: 'telemetry', endpointNames: ['hook'], isEnabled: false }, {});
  // A change applies on the next tick: once the route's cursor is gone, nothing is routed.
  await until(async () => Object.keys((await h.pipeline.health()).routes.find((r) => r.name === 'r')?.partitions ?? {}).length === 0, 'the route stopped');
  await h.send('d1', { n: 2 });
  await h.routing.putRoute('r', { source: 'telemetry', endpointNames: ['hook'], isEnabled: true }, {});
  await h.send('d1', { n: 3 });
  await until(() => (h.fakes.get('hook')?.bodies ?? []).some((b) => (b as { n: number }).n === 3), 'third');
  assert.ok(!h.fakes.get('hook')!.bodies.some((b) => (b as { n: number }).n === 2));
  await h.stop();
});

test('retryable failures are retried until delivered; a refusal dead-letters the batch and the route goes on', async (t) => {
  const h = await harness(t, { fail: {
    flaky: (attempt) => (attempt <= 3 ? new EndpointFailed('flaky', 'HTTP 503', true) : undefined),
    strict: (attempt) => (attempt === 1 ? new EndpointFailed('strict', 'HTTP 400', false) : undefined),
  } });
  await h.settings.put('endpoint', 'flaky', h.webhook);
  await h.settings.put('endpoint', 'strict', h.webhook);
  await h.routing.putRoute('a', { source: 'telemetry', condition: "$connectionDeviceId = 'a'", endpointNames: ['flaky'] }, {});
  await h.routing.putRoute('b', { source: 'telemetry', condition: "$connectionDeviceId = 'b'", endpointNames: ['strict'] }, {});
  await h.send('a', { x: 1 });
  await h.send('b', { x: 1 });
  await until(() => (h.fakes.get('flaky')?.bodies.length ?? 0) === 1, 'the retried delivery');
  await until(async () => (await h.pipeline.health()).endpoints.strict?.deadLettered === 1, 'the dead letter');
  await h.send('b', { x: 2 });
  await until(() => (h.fakes.get('strict')?.bodies.length ?? 0) === 1, 'the delivery after the dead letter');
  assert.deepEqual(h.fakes.get('strict')!.bodies, [{ x: 2 }]);
  const health = await h.pipeline.health();
  assert.equal(health.endpoints.flaky.status, 'healthy');
  assert.equal(health.endpoints.flaky.failedAttempts, 3);
  assert.equal(health.endpoints.strict.deadLettered, 1);
  const dead = await h.groups.read({ view: 'all', positions: {}, start: { kind: 'earliest' }, limit: 100, sources: ['deadLetter'] });
  assert.equal(dead.events.length, 1);
  assert.equal((dead.events[0].properties as Record<string, string>)['corral-endpoint'], 'strict');
  await h.stop();
});

test('the built-in endpoint gets what routes send it and, through $fallback, telemetry no route matched', async (t) => {
  const h = await harness(t);
  await h.settings.put('endpoint', 'hook', h.webhook);
  await h.groups.create('g', { start: 'earliest' });
  await h.groups.create('raw', { start: 'earliest', view: 'all' });
  await h.routing.putRoute('hot', { source: 'telemetry', condition: '$body.t > 10', endpointNames: ['hook'] }, {});
  await h.routing.putRoute('tagged', { source: 'telemetry', condition: "level = 'x'", endpointNames: ['events'] }, {});
  await h.send('d', { t: 1 });
  await h.send('d', { t: 20 });
  await h.send('d', { t: 30 }, { level: 'x' });
  const g = await h.groups.readGroup('g', { limit: 100 });
  assert.deepEqual(g.events.map((e) => e.body), [{ t: 1 }, { t: 30 }]);
  const raw = await h.groups.readGroup('raw', { limit: 100 });
  assert.equal(raw.events.length, 3);
  // Turning the fallback off takes unmatched telemetry out of `events`.
  await h.routing.putRoute('$fallback', { isEnabled: false }, {});
  await h.send('d', { t: 2 });
  const after = await h.groups.readGroup('g', { limit: 100, positions: g.positions });
  assert.deepEqual(after.events, []);
  await h.stop();
});

test('consumer groups: starts, checkpoints, seek, lag, and their errors', async (t) => {
  const h = await harness(t);
  await h.send('d', { n: 1 });
  const [seq2] = await h.send('d', { n: 2 });
  await h.groups.create('latest', {});
  await h.groups.create('from2', { start: { sequence: seq2 }, view: 'all' });
  await assert.rejects(h.groups.create('latest', {}), PipelineItemConflict);
  await h.send('d', { n: 3 });
  assert.deepEqual((await h.groups.readGroup('latest', { limit: 10 })).events.map((e) => e.body), [{ n: 3 }]);
  const page = await h.groups.readGroup('from2', { limit: 1 });
  assert.deepEqual(page.events.map((e) => e.body), [{ n: 2 }]);
  await h.groups.checkpoint('from2', page.positions);
  assert.deepEqual((await h.groups.readGroup('from2', { limit: 10 })).events.map((e) => e.body), [{ n: 3 }]);
  assert.equal((await h.groups.lag('from2'))['0'].lag, 1);
  await h.groups.seek('from2', { kind: 'earliest' });
  assert.equal((await h.groups.readGroup('from2', { limit: 10 })).events.length, 3);
  await assert.rejects(h.groups.readGroup('nope', { limit: 1 }), PipelineItemNotFound);
  await assert.rejects(h.groups.checkpoint('from2', { '7': 1 }), /no partition '7'/);
  await assert.rejects(h.groups.create('bad', { start: 'yesterday' }), /start must be/);
  await assert.rejects(h.groups.create('bad', { view: 'some' }), /view must be/);
  await assert.rejects(h.groups.create('bad', { colour: 1 }), /unknown field 'colour'/);
  await h.stop();
});

test('settings: names, conditions, references, etags', async (t) => {
  const h = await harness(t);
  await assert.rejects(h.settings.put('endpoint', 'bad name', h.webhook), /name "bad name" is invalid/);
  await assert.rejects(h.settings.put('endpoint', 'events', h.webhook), /built-in endpoint/);
  await assert.rejects(h.settings.put('endpoint', 'plain', { type: 'webhook', url: 'http://x/y' }), /endpoint 'plain'/);
  await assert.rejects(h.routing.putRoute('r', { source: 'telemetry', condition: '$body.t >', endpointNames: ['events'] }, {}), /position/);
  await assert.rejects(h.routing.putRoute('r', { source: 'Telemetryx', endpointNames: ['events'] }, {}), /route source/);
  await assert.rejects(h.routing.putRoute('r', { source: 'telemetry', endpointNames: ['nope'] }, {}), /no endpoint named 'nope'/);
  await assert.rejects(h.routing.putRoute('r', { source: 'telemetry', endpointNames: ['events', 'events'] }, {}), /endpointNames/);
  const e = await h.settings.put('endpoint', 'hook', h.webhook);
  await h.routing.putRoute('r', { source: 'TwinChangeEvents', endpointNames: ['hook'] }, {});
  assert.equal((await h.settings.get('route', 'r')).doc.source, 'twinChange');
  await assert.rejects(h.settings.remove('endpoint', 'hook'), /used by route 'r'/);
  await assert.rejects(h.settings.put('endpoint', 'hook', h.webhook, { ifMatch: `"${e.rev + 5}"` }), PipelineItemConflict);
  await h.settings.put('endpoint', 'hook', { ...h.webhook, retry: { maxAttempts: 3 } }, { ifMatch: `"${e.rev}"` });
  await assert.rejects(h.settings.put('endpoint', 'hook', { ...h.webhook, retry: { maxAttempts: 0 } }), /retry.maxAttempts/);
  await assert.rejects(h.settings.put('enrichment', 'e', { value: '$twin.nothing', endpointNames: ['hook'] }), /must be static text/);
  await h.stop();
});

test('route test and enrichments: static values and twin values reach the endpoint document', async (t) => {
  const h = await harness(t);
  await h.store.identities.insert({
    deviceId: 'd1', moduleId: '', generationId: 'g', etag: 'e', status: 'enabled', statusReason: null, statusUpdatedTime: '', authType: 'sas',
    primaryKey: null, secondaryKey: null, primaryThumbprint: null, secondaryThumbprint: null, iotEdge: false, deviceScope: null, parentScopes: [],
    managedBy: null, modelId: '', connectionState: 'Disconnected', connectionStateUpdatedTime: '', lastActivityTime: '', c2dCount: 0,
    twin: { ...newTwin(new Date().toISOString()), tags: { site: 'lyon' } }, rev: 1,
  });
  await h.settings.put('endpoint', 'hook', h.webhook);
  await h.settings.put('enrichment', 'site', { value: '$twin.tags.site', endpointNames: ['hook'] });
  await h.settings.put('enrichment', 'env', { value: 'prod', endpointNames: ['hook'] });
  await h.routing.putRoute('lyon', { source: 'telemetry', condition: "$twin.tags.site = 'lyon' AND $body.t > 1", endpointNames: ['hook'] }, {});
  const yes = await h.routing.test({ routeName: 'lyon', message: { deviceId: 'd1', body: { t: 5 } } });
  assert.equal(yes.result, 'true');
  assert.deepEqual((yes.document as { enrichments: unknown }).enrichments, { site: 'lyon', env: 'prod' });
  assert.equal((await h.routing.test({ routeName: 'lyon', message: { deviceId: 'd1', body: { t: 0 } } })).result, 'false');
  assert.equal((await h.routing.test({ route: { source: 'telemetry', condition: "$contentType = 'application/json'", endpointNames: ['events'] }, message: { systemProperties: { contentType: 'application/json' } } })).result, 'true');
  await h.send('d1', { t: 9 });
  await until(() => (h.fakes.get('hook')?.batches.length ?? 0) === 1, 'the enriched delivery');
  const doc = JSON.parse(h.fakes.get('hook')!.batches[0].messages[0].json) as Record<string, unknown>;
  assert.deepEqual(doc.enrichments, { site: 'lyon', env: 'prod' });
  assert.equal(doc.route, 'lyon');
  assert.equal(doc.bodyEncoding, 'json');
  // Last-known values follow the telemetry.
  await until(async () => (await h.store.pipeline.getDeviceState({ deviceId: 'd1', moduleId: '' }))?.values.t === 9, 'the device state');
  await h.stop();
});
