import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import iothub from 'azure-iothub';
import { connect } from 'nats';
import { disposeHub, startHub, type RunningHub } from '../support/hub-process.js';
import { DeviceClient, Message, Mqtt } from '../support/devices.js';
import { serviceCall } from '../support/rest.js';
import { dropSchemas, requireNats, requirePostgres, skipReason } from '../support/services.js';
import { WebhookReceiver } from '../support/webhook.js';

// Two nodes on PostgreSQL, NATS and the JetStream EventLog: each appends to its own partition, both partitions are
// routed and read, and when a node dies another takes over its partition and routes what it left behind.
const pgUrl = await requirePostgres();
const natsUrl = await requireNats();
const skip = skipReason('PostgreSQL') ?? skipReason('NATS');
const schema = `pipeline_cluster_${randomBytes(4).toString('hex')}`;
const prefix = `CLUSTER_${randomBytes(4).toString('hex').toUpperCase()}`;
const NODE_A = '127.0.0.27';
const NODE_B = '127.0.0.28';
let a: RunningHub;
let b: RunningHub;
let hook: WebhookReceiver;

before(async () => {
  if (skip) return;
  hook = await WebhookReceiver.start('127.0.0.29');
  const shared = ['--store', 'postgres', '--postgres-url', pgUrl ?? '', '--postgres-schema', schema, '--bus', 'nats', '--nats-url', natsUrl ?? '',
    '--eventlog', 'jetstream', '--eventlog-stream-prefix', prefix];
  const env = { CORRAL_MASTER_KEY: randomBytes(32).toString('base64') };
  a = await startHub({ address: NODE_A, args: [...shared, '--node-id', 'cl-a'], env });
  b = await startHub({ address: NODE_B, args: [...shared, '--node-id', 'cl-b'], env });
});

after(async () => {
  if (skip) return;
  await disposeHub(a);
  await disposeHub(b);
  await hook.close();
  await dropSchemas(pgUrl ?? '', [schema]);
  const nc = await connect({ servers: natsUrl });
  const jsm = await nc.jetstreamManager();
  for await (const name of jsm.streams.names()) if (name.startsWith(`${prefix}_`)) await jsm.streams.delete(name);
  await nc.close();
});

async function device(hub: RunningHub, host: string, id: string): Promise<DeviceClient> {
  const registry = iothub.Registry.fromConnectionString(hub.info.connectionStrings.iothubowner);
  const { responseBody } = await registry.create({ deviceId: id });
  const client = DeviceClient.fromConnectionString(`HostName=${host};DeviceId=${id};SharedAccessKey=${responseBody.authentication?.symmetricKey?.primaryKey}`, Mqtt);
  await client.open();
  return client;
}

test('each node routes its own partition; a consumer group reads both; a dead node\'s partition is taken over', { skip }, async () => {
  const owner = b.info.connectionStrings.iothubowner;
  const put = async (path: string, body: unknown) => {
    const res = await serviceCall(NODE_B, owner, 'PUT', path, body);
    assert.ok(res.status === 200 || res.status === 201, `${path}: ${res.status} ${res.text}`);
  };
  await put('/corral/v1/routing/endpoints/hook', { type: 'webhook', url: hook.url, caCertificate: hook.caPem, retry: { maxAttempts: 100, initialBackoffMs: 50, maxBackoffMs: 200 } });
  await put('/corral/v1/routing/routes/all', { source: 'telemetry', endpointNames: ['hook'] });
  await put('/corral/v1/consumer-groups/g', { start: 'earliest', view: 'all', sources: ['telemetry'] });
  const onA = await device(a, NODE_A, 'on-a');
  const onB = await device(b, NODE_B, 'on-b');
  try {
    for (let i = 0; i < 3; i++) {
      await onA.sendEvent(new Message(JSON.stringify({ i })));
      await onB.sendEvent(new Message(JSON.stringify({ i })));
    }
    await hook.until((r) => r.length === 6);
    const partitions = new Set(hook.received.map((m) => m.doc.partition));
    assert.deepEqual([...partitions].sort(), ['cl-a', 'cl-b']);
    const read = await serviceCall(NODE_A, a.info.connectionStrings.service, 'GET', '/corral/v1/consumer-groups/g/events?limit=100');
    const events = (read.json as { events: { deviceId: string; partition: string }[] }).events;
    assert.deepEqual(events.map((e) => `${e.partition}/${e.deviceId}`).sort(), [...Array(3).fill('cl-a/on-a'), ...Array(3).fill('cl-b/on-b')]);

    // Node A's endpoint fails while it has records to route; then node A dies with them undelivered.
    hook.failNext(1_000_000, 503);
    await onA.sendEvent(new Message(JSON.stringify({ late: 1 })));
    await onA.sendEvent(new Message(JSON.stringify({ late: 2 })));
    const requests = hook.requests;
    await new Promise<void>((resolve) => { const t = setInterval(() => { if (hook.requests > requests) { clearInterval(t); resolve(); } }, 20); });
    a.process.kill('SIGKILL');
    hook.failNext(0, 503);
    // Node B takes partition cl-a over once A's lease runs out, and routes what A left.
    await hook.until((r) => r.filter((m) => (m.doc.body as { late?: number }).late !== undefined).length === 2, 45_000);
    const late = hook.received.filter((m) => (m.doc.body as { late?: number }).late !== undefined);
    assert.deepEqual(late.map((m) => m.doc.partition), ['cl-a', 'cl-a']);
    const health = await serviceCall(NODE_B, owner, 'GET', '/corral/v1/routing/health');
    assert.deepEqual((health.json as { partitions: string[] }).partitions, ['cl-a', 'cl-b']);
  } finally {
    await onA.close().catch(() => undefined);
    await onB.close();
  }
});
