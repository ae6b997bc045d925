import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import iothub from 'azure-iothub';
import { buildSasToken } from '../../src/core/access/index.js';
import { disposeHub, startHub, type RunningHub } from '../support/hub-process.js';
import { createDevice, Message, openDevice, readEvents } from '../support/devices.js';
import { rawRequest } from '../support/rest.js';

// The device HTTPS API with the unchanged azure-iot-device-http transport, and raw HTTPS for its refusals.
const HOST = '127.0.0.14';
let hub: RunningHub;

before(async () => { hub = await startHub({ address: HOST }); });
after(async () => { await disposeHub(hub); });

function deviceToken(deviceId: string, key: string, expiry = Math.ceil(Date.now() / 1000) + 600): string {
  return buildSasToken(`${HOST}/devices/${deviceId}`, key, expiry);
}

test('sendEvent stores the body with system and application properties', async () => {
  const client = await openDevice(await createDevice(hub, 'http-1'), 'http');
  try {
    const m = new Message('{"t":1}');
    m.messageId = 'h-1';
    m.contentType = 'application/json';
    m.properties.add('zone', 'north');
    await client.sendEvent(m);
    const [e] = await readEvents(hub, 'http-1');
    assert.equal(Buffer.from(e.body).toString(), '{"t":1}');
    assert.equal(e.properties['$.message-id'], 'h-1');
    assert.equal(e.properties['$.content-type'], 'application/json');
    assert.equal(e.properties.zone, 'north');
    assert.equal(e.properties['iothub-connection-device-id'], 'http-1');
  } finally {
    await client.close();
  }
});

test('sendEventBatch stores every message of the batch in order', async () => {
  const client = await openDevice(await createDevice(hub, 'http-batch'), 'http');
  try {
    const batch = [1, 2, 3].map((i) => { const m = new Message(`m${i}`); m.properties.add('i', String(i)); return m; });
    await client.sendEventBatch(batch);
    const events = await readEvents(hub, 'http-batch');
    assert.deepEqual(events.map((e) => [Buffer.from(e.body).toString(), e.properties.i]), [['m1', '1'], ['m2', '2'], ['m3', '3']]);
  } finally {
    await client.close();
  }
});

test('refusals: no token, another device\'s token, a wrong key, an expired token, an oversized body, a bad batch', async () => {
  const cs = await createDevice(hub, 'http-2');
  const key = /SharedAccessKey=(.*)$/.exec(cs)?.[1] ?? '';
  const otherCs = await createDevice(hub, 'http-3');
  const otherKey = /SharedAccessKey=(.*)$/.exec(otherCs)?.[1] ?? '';
  const post = (auth: string | undefined, body: string | Buffer, headers: Record<string, string> = {}) =>
    rawRequest(HOST, 'POST', '/devices/http-2/messages/events?api-version=2021-04-12', { headers: { ...(auth ? { authorization: auth } : {}), ...headers }, body });
  assert.equal((await post(undefined, 'x')).status, 401);
  assert.equal((await post(deviceToken('http-3', otherKey), 'x')).status, 401);
  assert.equal((await post(deviceToken('http-2', Buffer.alloc(32, 3).toString('base64')), 'x')).status, 401);
  assert.equal((await post(deviceToken('http-2', key, Math.floor(Date.now() / 1000) - 1), 'x')).status, 401);
  assert.equal((await post(deviceToken('http-2', key), Buffer.alloc(300 * 1024, 1))).status, 413);
  const badBatch = await post(deviceToken('http-2', key), '[{"nobody":1}]', { 'content-type': 'application/vnd.microsoft.iothub.json' });
  assert.equal(badBatch.status, 400);
  assert.equal((await post(deviceToken('http-2', key), 'ok')).status, 204);
  assert.equal((await readEvents(hub, 'http-2')).length, 1);
  const registry = iothub.Registry.fromConnectionString(hub.info.connectionStrings.iothubowner);
  await registry.update({ deviceId: 'http-2', status: 'disabled' });
  assert.equal((await post(deviceToken('http-2', key), 'x')).status, 401);
});
