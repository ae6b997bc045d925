import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import iothub from 'azure-iothub';
import { createDevice, Message, openDevice, type DeviceClient } from '../support/devices.js';
import { eventually } from '../support/eventually.js';
import { disposeHub, startHub, type RunningHub } from '../support/hub-process.js';
import { serviceCall } from '../support/rest.js';
import { WebhookReceiver } from '../support/webhook.js';

type Doc = Record<string, unknown>;
interface ReadPage { events: (Doc & { sequenceNumber: number; partition: string; source: string; deviceId: string; body: Doc })[]; positions: Record<string, number>; next: string }

/**
 * The telemetry pipeline end to end, driven by the unchanged device SDK: routes to a webhook (with enrichment and
 * the fallback to the built-in endpoint), a consumer group reading with checkpoints, last-known values in fleet
 * queries, a rule raising and clearing an alert (notified through a route), wellness, and a restart in the middle
 * losing nothing acknowledged and redelivering nothing checkpointed.
 */
export function pipelineSuite(opts: { address: string; webhookAddress: string; args: () => string[]; skip?: string }): void {
  const { address } = opts;
  let hub: RunningHub;
  let hook: WebhookReceiver;
  const owner = (): string => hub.info.connectionStrings.iothubowner;
  const call = async (method: string, path: string, body?: unknown, expected = [200, 201, 204]): Promise<Doc> => {
    const res = await serviceCall(address, owner(), method, path, body);
    assert.ok(expected.includes(res.status), `${method} ${path} → ${res.status} ${res.text}`);
    return (res.json ?? {}) as Doc;
  };
  const send = async (client: DeviceClient, body: Doc, props: Record<string, string> = {}): Promise<void> => {
    const m = new Message(JSON.stringify(body));
    for (const [k, v] of Object.entries(props)) m.properties.add(k, v);
    await client.sendEvent(m);
  };
  const readGroup = async (group: string, limit = 100): Promise<ReadPage> =>
    (await call('GET', `/corral/v1/consumer-groups/${group}/events?limit=${limit}&waitMs=2000`)) as unknown as ReadPage;

  before(async () => {
    if (opts.skip) return;
    hook = await WebhookReceiver.start(opts.webhookAddress, 'hook-secret');
    hub = await startHub({ address, args: opts.args() });
  });
  after(async () => {
    if (opts.skip) return;
    await disposeHub(hub);
    await hook.close();
  });

  test('routes, fallback, enrichment, consumer group, device state, rule and alert, then a restart', { skip: opts.skip }, async () => {
    const registry = iothub.Registry.fromConnectionString(owner());
    const cs = await createDevice(hub, 'pipe-1');
    await registry.updateTwin('pipe-1', { tags: { site: 'lyon' } }, '*');
    await call('PUT', '/corral/v1/routing/endpoints/hook', { type: 'webhook', url: hook.url, secret: 'hook-secret', caCertificate: hook.caPem, retry: { maxAttempts: 20, initialBackoffMs: 50, maxBackoffMs: 200 } });
    await call('PUT', '/corral/v1/routing/routes/hot', { source: 'DeviceMessages', condition: '$body.temperature > 30', endpointNames: ['hook'] });
    await call('PUT', '/corral/v1/routing/routes/alerts', { source: 'alerts', condition: 'true', endpointNames: ['hook'] });
    await call('PUT', '/corral/v1/routing/enrichments/site', { value: '$twin.tags.site', endpointNames: ['hook'] });
    await call('PUT', '/corral/v1/rules/overheat', { type: 'threshold', condition: '$body.temperature > 50', severity: 'critical' });
    await call('PUT', '/corral/v1/consumer-groups/g1', { start: 'latest' });
    await call('PUT', '/corral/v1/consumer-groups/all', { start: 'latest', view: 'all' });
    // A route test says what the route does with a sample, without sending anything.
    const tested = await call('POST', '/corral/v1/routing/test', { routeName: 'hot', message: { body: { temperature: 31 } } });
    assert.equal(tested.result, 'true');
    assert.equal((await call('POST', '/corral/v1/routing/test', { routeName: 'hot', message: { body: { temperature: 3 } } })).result, 'false');

    let client = await openDevice(cs, 'mqtt');
    for (const t of [20, 35, 60, 25]) await send(client, { temperature: t, n: t });

    // The webhook gets what matches `hot`, enriched with the twin's site, and the alert's raise and clear.
    await hook.until((r) => r.filter((m) => m.route === 'hot').length === 2 && r.filter((m) => m.route === 'alerts').length === 2);
    const hot = hook.received.filter((m) => m.route === 'hot').map((m) => m.doc);
    assert.deepEqual(hot.map((d) => (d.body as Doc).temperature), [35, 60]);
    assert.deepEqual(hot.map((d) => (d.enrichments as Doc).site), ['lyon', 'lyon']);
    assert.equal(hot[0].deviceId, 'pipe-1');
    const alertOps = hook.received.filter((m) => m.route === 'alerts').map((m) => (m.doc.properties as Doc).opType);
    assert.deepEqual(alertOps, ['alertRaised', 'alertCleared']);
    assert.equal(hook.badSignatures, 0);

    // The built-in endpoint (view `events`) gets the telemetry no route took: 20 and 25, through $fallback.
    const g1 = await readGroup('g1');
    assert.deepEqual(g1.events.filter((e) => e.source === 'telemetry').map((e) => e.body.temperature), [20, 25]);
    // The `all` view has every record, system events included.
    const all = await readGroup('all');
    assert.deepEqual(all.events.filter((e) => e.source === 'telemetry').map((e) => e.body.temperature), [20, 35, 60, 25]);
    assert.ok(all.events.some((e) => e.source === 'alerts'));

    // Alert life cycle through REST: raised then cleared by the 25.
    const list = await call('GET', '/corral/v1/alerts?rule=overheat&deviceId=pipe-1') as unknown as Doc[];
    assert.equal(list.length, 1);
    assert.equal(list[0].status, 'cleared');
    assert.equal(list[0].severity, 'critical');

    // Last-known values, and `telemetry.*` in a fleet query.
    await eventually(async () => {
      const state = await call('GET', '/corral/v1/devices/pipe-1/state');
      assert.equal((state.telemetry as Doc).temperature, 25);
    }, 10_000, 100);
    const found = await registry.createQuery('SELECT deviceId FROM devices WHERE telemetry.temperature < 30 AND tags.site = \'lyon\'').nextAsTwin();
    assert.deepEqual(found.result.map((t) => t.deviceId), ['pipe-1']);
    const telemetry = await call('GET', '/corral/v1/devices/pipe-1/telemetry?limit=10') as { events: Doc[] };
    assert.deepEqual(telemetry.events.map((e) => (e.body as Doc).temperature), [20, 35, 60, 25]);

    // Checkpoint g1 past the first read, send more, then restart in the middle.
    await call('POST', '/corral/v1/consumer-groups/g1/checkpoint', { position: g1.next });
    for (const t of [1, 2, 3]) await send(client, { temperature: t });
    await client.close();
    assert.equal(await hub.stop(), 0);
    hub = await startHub({ address, args: opts.args(), dataDir: hub.dataDir });
    client = await openDevice(cs, 'mqtt');
    for (const t of [4, 40]) await send(client, { temperature: t });
    await client.close();

    // g1 resumes at its checkpoint: 1..4 exactly once, nothing from before the checkpoint.
    const resumed: number[] = [];
    await eventually(async () => {
      const page = await readGroup('g1');
      for (const e of page.events) if (e.source === 'telemetry') resumed.push(e.body.temperature as number);
      if (page.events.length) await call('POST', '/corral/v1/consumer-groups/g1/checkpoint', { position: page.next });
      assert.deepEqual(resumed, [1, 2, 3, 4]);
    }, 15_000, 100);
    // The route resumes at its checkpoint: 40 arrives, and nothing arrived twice.
    await hook.until((r) => r.some((m) => m.route === 'hot' && (m.doc.body as Doc).temperature === 40));
    const keys = hook.received.map((m) => `${m.route}/${m.doc.partition}/${m.doc.sequenceNumber}`);
    assert.equal(new Set(keys).size, keys.length, `duplicates: ${keys.join(' ')}`);

    const health = await call('GET', '/corral/v1/routing/health') as { endpoints: Record<string, { status: string; delivered: number }> };
    assert.equal(health.endpoints.hook.status, 'healthy');
  });

  test('a failing webhook is retried with back-off, then healthy again; a refused batch is dead-lettered', { skip: opts.skip }, async () => {
    // Readers never see the endpoint's secret; sending back what was read keeps it (the receiver checks signatures).
    const shown = await call('GET', '/corral/v1/routing/endpoints/hook');
    assert.equal(shown.secret, '*****');
    await call('PUT', '/corral/v1/routing/endpoints/hook', shown);
    const cs = await createDevice(hub, 'pipe-2');
    await call('PUT', '/corral/v1/routing/routes/retry', { source: 'telemetry', condition: "$connectionDeviceId = 'pipe-2'", endpointNames: ['hook'] });
    await call('PUT', '/corral/v1/consumer-groups/dead', { start: 'latest', view: 'all', sources: ['deadLetter'] });
    const client = await openDevice(cs, 'mqtt');
    try {
      hook.failNext(3, 503);
      await send(client, { step: 'retried' });
      await hook.until((r) => r.some((m) => m.route === 'retry' && (m.doc.body as Doc).step === 'retried'));
      hook.failNext(1, 400);
      await send(client, { step: 'refused' });
      await eventually(async () => {
        const page = await readGroup('dead');
        assert.equal(page.events.length, 1);
        assert.equal((page.events[0].properties as Doc)['corral-endpoint'], 'hook');
        assert.equal((page.events[0].body as Doc).route, 'retry');
      }, 15_000, 200);
      await send(client, { step: 'after' });
      await hook.until((r) => r.some((m) => m.route === 'retry' && (m.doc.body as Doc).step === 'after'));
      assert.ok(!hook.received.some((m) => (m.doc.body as Doc).step === 'refused'));
    } finally {
      await client.close();
    }
  });

  test('wellness: a device that misses its heartbeat turns unhealthy with an alert, and recovers', { skip: opts.skip }, async () => {
    const registry = iothub.Registry.fromConnectionString(owner());
    const cs = await createDevice(hub, 'pipe-beat');
    await registry.updateTwin('pipe-beat', { tags: { corral: { heartbeatSeconds: 2 } } }, '*');
    const client = await openDevice(cs, 'mqtt');
    try {
      await send(client, { beat: 1 });
      await eventually(async () => {
        const state = await call('GET', '/corral/v1/devices/pipe-beat/state');
        assert.equal(state.health, 'unhealthy');
      }, 20_000, 200);
      const open = await call('GET', '/corral/v1/alerts?rule=$wellness&deviceId=pipe-beat&open=true') as unknown as Doc[];
      assert.equal(open.length, 1);
      await send(client, { beat: 2 });
      await eventually(async () => {
        const state = await call('GET', '/corral/v1/devices/pipe-beat/state');
        assert.equal(state.health, 'healthy');
      }, 10_000, 100);
      // Fleet health is in the registry statistics (a Corral extension the SDK passes through) and in /metrics.
      const stats = (await registry.getRegistryStatistics()).responseBody as unknown as { healthyDeviceCount: number; unhealthyDeviceCount: number };
      assert.ok(stats.healthyDeviceCount >= 1, JSON.stringify(stats));
      assert.equal(typeof stats.unhealthyDeviceCount, 'number');
      const metrics = await serviceCall(address, owner(), 'GET', '/metrics');
      assert.equal(metrics.status, 200);
      assert.match(metrics.text, /corral_device_health\{health="healthy"\} \d+/);
      assert.match(metrics.text, /corral_consumer_lag_records\{consumer="state",partition="[^"]+"\} \d+/);
    } finally {
      await client.close();
    }
  });

  test('the pipeline surface refuses bad input and callers without the right', { skip: opts.skip }, async () => {
    const bad = await serviceCall(address, owner(), 'PUT', '/corral/v1/routing/routes/broken', { source: 'telemetry', condition: '$body.x >', endpointNames: ['hook'] });
    assert.equal(bad.status, 400);
    assert.match(bad.text, /position/);
    const noEndpoint = await serviceCall(address, owner(), 'PUT', '/corral/v1/routing/routes/nowhere', { source: 'telemetry', endpointNames: ['missing'] });
    assert.equal(noEndpoint.status, 400);
    assert.match(noEndpoint.text, /missing/);
    const inUse = await serviceCall(address, owner(), 'DELETE', '/corral/v1/routing/endpoints/hook');
    assert.equal(inUse.status, 409);
    const plain = await serviceCall(address, owner(), 'PUT', '/corral/v1/routing/endpoints/plain', { type: 'webhook', url: 'http://127.0.0.1/x' });
    assert.equal(plain.status, 400);
    // registryRead may read routing but not change it; the device policy may not read events.
    const reader = hub.info.connectionStrings.registryRead;
    assert.equal((await serviceCall(address, reader, 'GET', '/corral/v1/routing/routes')).status, 200);
    assert.equal((await serviceCall(address, reader, 'PUT', '/corral/v1/routing/routes/x', { source: 'telemetry', endpointNames: ['events'] })).status, 401);
    assert.equal((await serviceCall(address, hub.info.connectionStrings.device, 'GET', '/corral/v1/events')).status, 401);
    assert.equal((await serviceCall(address, reader, 'GET', '/metrics')).status, 200);
  });
}
