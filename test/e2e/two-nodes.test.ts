import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import iothub from 'azure-iothub';
import { disposeHub, startHub, type RunningHub } from '../support/hub-process.js';
import { DeviceClient, Message, Mqtt } from '../support/devices.js';
import { eventually } from '../support/eventually.js';
import { serviceCall } from '../support/rest.js';
import { connected, createRawDevice, rawConnect } from '../support/mqtt-raw.js';
import { dropSchemas, requireNats, requirePostgres, skipReason } from '../support/services.js';

// Two hub processes on one PostgreSQL database and one NATS: a device connected to node 1 is reached from node 2.
const pgUrl = await requirePostgres();
const natsUrl = await requireNats();
const skip = skipReason('PostgreSQL') ?? skipReason('NATS');
const schema = `two_nodes_${randomBytes(4).toString('hex')}`;
const NODE1 = '127.0.0.15';
const NODE2 = '127.0.0.16';
let node1: RunningHub;
let node2: RunningHub;

before(async () => {
  if (skip) return;
  const shared = ['--store', 'postgres', '--postgres-url', pgUrl ?? '', '--postgres-schema', schema, '--bus', 'nats', '--nats-url', natsUrl ?? ''];
  // Nodes of one cluster share the master key: device keys sealed by one are opened by the other.
  const env = { CORRAL_MASTER_KEY: randomBytes(32).toString('base64') };
  node1 = await startHub({ address: NODE1, args: shared, env });
  node2 = await startHub({ address: NODE2, args: shared, env });
});

after(async () => {
  if (node1) await disposeHub(node1);
  if (node2) await disposeHub(node2);
  if (pgUrl) await dropSchemas(pgUrl, [schema]);
});

test('a device on node 1 gets a method call, a desired patch and a C2D message made through node 2', { skip }, async () => {
  assert.equal(node1.info.connectionStrings.service.split('SharedAccessKey=')[1], node2.info.connectionStrings.service.split('SharedAccessKey=')[1], 'the nodes share policies');
  const registry2 = iothub.Registry.fromConnectionString(node2.info.connectionStrings.iothubowner);
  const service2 = iothub.Client.fromConnectionString(node2.info.connectionStrings.service);
  const { responseBody: created } = await registry2.create({ deviceId: 'roamer' });
  const device = DeviceClient.fromConnectionString(`HostName=${NODE1};DeviceId=roamer;SharedAccessKey=${created.authentication?.symmetricKey?.primaryKey}`, Mqtt);
  await device.open();
  try {
    device.onDeviceMethod('ping', (req, res) => void res.send(200, { pong: req.payload }));
    const twin = await device.getTwin();
    const desired = new Promise<Record<string, unknown>>((resolve) => twin.on('properties.desired', (d: Record<string, unknown>) => { if (d.$version === 2) resolve(d); }));
    const c2d = new Promise<string>((resolve) => device.on('message', (m) => resolve(String(m.data))));
    await device.sendEvent(new Message('hello from node 1'));

    await eventually(async () => {
      const r = await service2.invokeDeviceMethod('roamer', { methodName: 'ping', payload: 7, responseTimeoutInSeconds: 5 });
      assert.deepEqual(r.result, { status: 200, payload: { pong: 7 } });
    });
    await registry2.updateTwin('roamer', { properties: { desired: { across: 'nodes' } } }, '*');
    assert.equal((await desired).across, 'nodes');
    const sent = await serviceCall(NODE2, node2.info.connectionStrings.service, 'POST', '/devices/roamer/messages/deviceBound?api-version=2021-04-12', 'via node 2', { 'content-type': 'text/plain' });
    assert.equal(sent.status, 200, sent.text);
    assert.equal(await c2d, 'via node 2');
    assert.equal((await registry2.get('roamer')).responseBody.connectionState, 'Connected');
  } finally {
    await device.close();
  }
});

test('disabling a device through node 2 closes its connection on node 1 within 1 s', { skip }, async () => {
  // A raw client: the SDK would retry a refused reconnect for minutes; here the hub's close is the whole story.
  const creds = await createRawDevice(node2, 'to-be-cut');
  const client = await connected(node1, { ...creds, hostName: NODE1 });
  const registry2 = iothub.Registry.fromConnectionString(node2.info.connectionStrings.iothubowner);
  const t0 = Date.now();
  await registry2.update({ deviceId: 'to-be-cut', status: 'disabled' });
  const closedAt = await client.closed;
  assert.ok(closedAt - t0 < 1000, `cut off after ${closedAt - t0} ms`);
  await eventually(async () => assert.equal((await registry2.get('to-be-cut')).responseBody.connectionState, 'Disconnected'), 1000, 10);
});

test('subscriptions kept for a clean-session-0 client follow it to another node (no SUBSCRIBE after the reconnect)', { skip }, async () => {
  const creds = await createRawDevice(node2, 'wanderer');
  const first = await connected(node1, { ...creds, hostName: NODE1 });
  first.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '$iothub/methods/POST/#', qos: 0 }] });
  await first.next('suback');
  first.send({ cmd: 'disconnect' });
  await first.closed;
  const { client: second, connack } = await rawConnect(node2, { ...creds, hostName: NODE2 });
  try {
    assert.equal(connack.returnCode, 0);
    assert.equal(connack.sessionPresent, true);
    const service1 = iothub.Client.fromConnectionString(node1.info.connectionStrings.service);
    const call = eventually(async () => {
      const r = await service1.invokeDeviceMethod('wanderer', { methodName: 'hello', payload: null, responseTimeoutInSeconds: 5 });
      assert.deepEqual(r.result, { status: 200, payload: { from: 'node 2' } });
    });
    const request = await second.next('publish');
    const rid = /\$rid=([^&]+)/.exec(request.topic)?.[1];
    assert.match(request.topic, /^\$iothub\/methods\/POST\/hello\//);
    second.send({ cmd: 'publish', topic: `$iothub/methods/res/200/?$rid=${rid}`, payload: Buffer.from('{"from":"node 2"}'), qos: 0, retain: false, dup: false });
    await call;
  } finally {
    second.destroy();
  }
});

test('a method job scheduled on node 2 reaches devices connected to either node; the others fail fast', { skip }, async () => {
  const registry = iothub.Registry.fromConnectionString(node2.info.connectionStrings.iothubowner);
  const ids = Array.from({ length: 40 }, (_, i) => `shared-${String(i).padStart(2, '0')}`);
  await registry.addDevices(ids.map((deviceId) => ({ deviceId })));
  const clients: DeviceClient[] = [];
  try {
    for (const [i, id] of ['shared-00', 'shared-01'].entries()) {
      const { responseBody: d } = await registry.get(id);
      const client = DeviceClient.fromConnectionString(`HostName=${i === 0 ? NODE1 : NODE2};DeviceId=${id};SharedAccessKey=${d.authentication?.symmetricKey?.primaryKey}`, Mqtt);
      await client.open();
      clients.push(client);
      client.onDeviceMethod('whoami', (_req, res) => void res.send(200, { id }));
    }
    const service = iothub.Client.fromConnectionString(node1.info.connectionStrings.service);
    await eventually(async () => {
      for (const id of ['shared-00', 'shared-01']) assert.equal((await service.invokeDeviceMethod(id, { methodName: 'whoami', payload: null, responseTimeoutInSeconds: 5 })).result.status, 200);
    });
    const jobs = iothub.JobClient.fromConnectionString(node2.info.connectionStrings.iothubowner);
    await jobs.scheduleDeviceMethod('shared-job', "STARTSWITH(deviceId, 'shared-')", { methodName: 'whoami', payload: null, responseTimeoutInSeconds: 10 });
    await eventually(async () => assert.equal(((await jobs.getJob('shared-job')).jobStatus as { status: string }).status, 'completed'), 20_000, 100);
    const done = (await jobs.getJob('shared-job')).jobStatus as { deviceJobStatistics: { deviceCount: number; succeededCount: number; failedCount: number } };
    assert.deepEqual([done.deviceJobStatistics.deviceCount, done.deviceJobStatistics.succeededCount, done.deviceJobStatistics.failedCount], [40, 2, 38]);
    const rows = await registry.createQuery("SELECT * FROM devices.jobs WHERE jobId = 'shared-job' AND status = 'completed'").next();
    assert.deepEqual((rows.result as { deviceId: string; outcome: { deviceMethodResponse: { payload: { id: string } } } }[])
      .map((r) => [r.deviceId, r.outcome.deviceMethodResponse.payload.id]), [['shared-00', 'shared-00'], ['shared-01', 'shared-01']]);
  } finally {
    for (const c of clients) await c.close();
  }
});
