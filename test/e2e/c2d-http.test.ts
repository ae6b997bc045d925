import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import { buildSasToken } from '../../src/core/access/index.js';
import { CORRAL_BIN, disposeHub, startHub, type RunningHub } from '../support/hub-process.js';
import { credentialsOf, rawRequest, serviceCall, serviceToken, type RawResponse } from '../support/rest.js';
import { Message, createDevice, openDevice } from '../support/devices.js';

// Cloud-to-device over raw HTTPS: the service side (send, purge, feedback) and the device HTTPS API (receive,
// complete, abandon, reject), with the forbidden paths; then the unchanged device SDK over HTTP, and a restart.
const HOST = '127.0.0.11';
const API = '?api-version=2021-04-12';
let hub: RunningHub;
let owner: string;
const keys = new Map<string, string>();

before(async () => {
  hub = await startHub({ address: HOST });
  owner = hub.info.connectionStrings.iothubowner;
  for (const id of ['dev-a', 'dev-b', 'dev-full', 'dev-sdk']) {
    const res = await serviceCall(HOST, owner, 'PUT', `/devices/${id}${API}`, {});
    assert.equal(res.status, 200, res.text);
    keys.set(id, (res.json as { authentication: { symmetricKey: { primaryKey: string } } }).authentication.symmetricKey.primaryKey);
  }
  assert.equal((await serviceCall(HOST, owner, 'PUT', `/devices/dev-a/modules/mod-1${API}`, {})).status, 200);
});
after(async () => { await disposeHub(hub); });

function assertHubError(res: RawResponse, status: number, codeName: string, pattern?: RegExp): void {
  assert.equal(res.status, status, res.text);
  assert.equal(res.headers['iothub-errorcode'], codeName);
  const body = res.json as { Message: string };
  assert.ok(body.Message.startsWith(`ErrorCode:${codeName};`), body.Message);
  if (pattern) assert.match(body.Message, pattern);
}

/** A device SAS token as the device SDK makes it (sr = host/devices/id, no skn). */
function deviceToken(deviceId: string, key = keys.get(deviceId) ?? ''): string {
  return buildSasToken(`${HOST}/devices/${deviceId}`, key, Math.ceil(Date.now() / 1000) + 3600);
}

function send(deviceId: string, body: string | Buffer, headers: Record<string, string> = {}, cs = owner, path = `/devices/${deviceId}`): Promise<RawResponse> {
  return rawRequest(HOST, 'POST', `${path}/messages/deviceBound${API}`, {
    headers: { authorization: serviceToken(cs), 'content-type': 'application/octet-stream', ...headers }, body,
  });
}

function deviceCall(method: string, deviceId: string, suffix = '', token = deviceToken(deviceId)): Promise<RawResponse> {
  return rawRequest(HOST, method, `/devices/${deviceId}/messages/devicebound${suffix}`, {
    headers: { authorization: token, 'iothub-to': `/devices/${deviceId}/messages/devicebound` },
  });
}

const lockOf = (res: RawResponse): string => String(res.headers.etag).slice(1, -1);

test('a service sends, the device receives with IoT Hub headers and completes; then the inbox is empty', async () => {
  const sent = await send('dev-a', '{"not":"parsed"', {
    'content-type': 'application/json', 'iothub-messageid': 'msg-1', 'iothub-correlationid': 'corr-1',
    'iothub-userid': 'ops', 'iothub-contenttype': 'text/plain', 'iothub-app-color': 'red', 'iothub-app-size': 'XL',
  });
  assert.equal(sent.status, 200, sent.text);
  assert.deepEqual(sent.json, { messageId: 'msg-1' });
  const got = await deviceCall('GET', 'dev-a');
  assert.equal(got.status, 200, got.text);
  assert.equal(got.text, '{"not":"parsed"');
  assert.match(String(got.headers.etag), /^"[^"]+"$/);
  assert.equal(got.headers['iothub-messageid'], 'msg-1');
  assert.equal(got.headers['iothub-to'], '/devices/dev-a/messages/deviceBound');
  assert.equal(got.headers['iothub-correlationid'], 'corr-1');
  assert.equal(got.headers['iothub-userid'], 'ops');
  assert.equal(got.headers['iothub-contenttype'], 'text/plain');
  assert.equal(got.headers['iothub-app-color'], 'red');
  assert.equal(got.headers['iothub-app-size'], 'XL');
  assert.ok(Date.parse(String(got.headers['iothub-expiry'])) > Date.now() + 3500_000);
  const device = (await serviceCall(HOST, owner, 'GET', `/devices/dev-a${API}`)).json as { cloudToDeviceMessageCount: number };
  assert.equal(device.cloudToDeviceMessageCount, 1);
  assert.equal((await deviceCall('DELETE', 'dev-a', `/${lockOf(got)}${API}`)).status, 204);
  assert.equal((await deviceCall('GET', 'dev-a')).status, 204);
  assertHubError(await deviceCall('DELETE', 'dev-a', `/${lockOf(got)}${API}`), 412, 'PreconditionFailed', /lock token/);
});

test('abandon hands the message out again with the next delivery count; reject removes it', async () => {
  assert.equal((await send('dev-a', 'again')).status, 200);
  const first = await deviceCall('GET', 'dev-a');
  assert.equal(first.headers['iothub-deliverycount'], '1');
  assert.equal((await deviceCall('POST', 'dev-a', `/${lockOf(first)}/abandon${API}`)).status, 204);
  const second = await deviceCall('GET', 'dev-a');
  assert.equal(second.text, 'again');
  assert.equal(second.headers['iothub-deliverycount'], '2');
  assertHubError(await deviceCall('POST', 'dev-a', `/${lockOf(first)}/abandon${API}`), 412, 'PreconditionFailed');
  assert.equal((await deviceCall('DELETE', 'dev-a', `/${lockOf(second)}${API}&reject`)).status, 204);
  assert.equal((await deviceCall('GET', 'dev-a')).status, 204);
});

test('feedback: Success and Rejected records for ack=full, read under a quoted lock token and completed', async () => {
  assert.equal((await send('dev-full', 'ok', { 'iothub-ack': 'full', 'iothub-messageid': 'fb-ok' })).status, 200);
  assert.equal((await send('dev-full', 'bad', { 'iothub-ack': 'full', 'iothub-messageid': 'fb-bad' })).status, 200);
  const ok = await deviceCall('GET', 'dev-full');
  assert.equal((await deviceCall('DELETE', 'dev-full', `/${lockOf(ok)}${API}`)).status, 204);
  const bad = await deviceCall('GET', 'dev-full');
  assert.equal((await deviceCall('DELETE', 'dev-full', `/${lockOf(bad)}${API}&reject`)).status, 204);

  const fb = await serviceCall(HOST, owner, 'GET', `/messages/serviceBound/feedback${API}`);
  assert.equal(fb.status, 200, fb.text);
  assert.match(String(fb.headers['content-type']), /application\/json/);
  const records = fb.json as Record<string, string>[];
  assert.deepEqual(records.map((r) => [r.originalMessageId, r.statusCode, r.description, r.deviceId]), [
    ['fb-ok', 'Success', 'Success', 'dev-full'], ['fb-bad', 'Rejected', 'Message rejected', 'dev-full'],
  ]);
  assert.ok(records.every((r) => r.deviceGenerationId && !Number.isNaN(Date.parse(r.enqueuedTimeUtc))));
  assert.equal((await serviceCall(HOST, owner, 'GET', `/messages/serviceBound/feedback${API}`)).status, 204, 'locked');
  const lock = String(fb.headers.etag).slice(1, -1);
  assert.equal((await serviceCall(HOST, owner, 'DELETE', `/messages/serviceBound/feedback/${lock}${API}`)).status, 204);
  assertHubError(await serviceCall(HOST, owner, 'DELETE', `/messages/serviceBound/feedback/${lock}${API}`), 412, 'PreconditionFailed');
  assert.equal((await serviceCall(HOST, owner, 'GET', `/messages/serviceBound/feedback${API}`)).status, 204);
});

test('purge empties a device inbox and reports how many; modules have inboxes of their own', async () => {
  for (const s of ['1', '2', '3']) assert.equal((await send('dev-b', s)).status, 200);
  assert.equal((await send('dev-a', 'for the module', {}, owner, '/devices/dev-a/modules/mod-1')).status, 200);
  const purged = await serviceCall(HOST, owner, 'DELETE', `/devices/dev-b/commands${API}`);
  assert.equal(purged.status, 200, purged.text);
  assert.deepEqual(purged.json, { totalMessagesPurged: 3, deviceId: 'dev-b' });
  assert.equal((await deviceCall('GET', 'dev-b')).status, 204);
  assert.equal((await deviceCall('GET', 'dev-a')).status, 204, 'the module message is not the device\'s');
  const mod = await serviceCall(HOST, owner, 'DELETE', `/devices/dev-a/modules/mod-1/commands${API}`);
  assert.deepEqual(mod.json, { totalMessagesPurged: 1, deviceId: 'dev-a', moduleId: 'mod-1' });
  assertHubError(await serviceCall(HOST, owner, 'DELETE', `/devices/nobody/commands${API}`), 404, 'DeviceNotFound');
});

test('send refuses an unknown device (404), a full inbox (403004), an oversized body (413) and a bad expiry (400)', async () => {
  assertHubError(await send('nobody', 'x'), 404, 'DeviceNotFound', /nobody/);
  assertHubError(await send('dev-b', Buffer.alloc(64 * 1024 + 1)), 413, 'MessageTooLarge');
  assertHubError(await send('dev-b', 'x', { 'iothub-expiry': 'soon' }), 400, 'ArgumentInvalid', /expiry/);
  assertHubError(await send('dev-b', 'x', { 'iothub-ack': 'maybe' }), 400, 'ArgumentInvalid', /iothub-ack/);
  for (let i = 0; i < 50; i++) assert.equal((await send('dev-b', `n${i}`)).status, 200);
  assertHubError(await send('dev-b', 'one too many'), 403, 'DeviceMaximumQueueDepthExceeded', /50/);
  assert.equal((await serviceCall(HOST, owner, 'DELETE', `/devices/dev-b/commands${API}`)).status, 200);
});

test('forbidden paths: another device\'s token, no token, a service token, a policy without ServiceConnect', async () => {
  assert.equal((await send('dev-b', 'private')).status, 200);
  assertHubError(await deviceCall('GET', 'dev-b', '', deviceToken('dev-a')), 401, 'IotHubUnauthorized');
  assertHubError(await deviceCall('GET', 'dev-b', '', buildSasToken(`${HOST}/devices/dev-b`, keys.get('dev-a') ?? '', Math.ceil(Date.now() / 1000) + 60)), 401, 'IotHubUnauthorized', /signature/);
  assertHubError(await rawRequest(HOST, 'GET', `/devices/dev-b/messages/devicebound${API}`), 401, 'IotHubUnauthorized');
  assertHubError(await deviceCall('GET', 'dev-b', '', serviceToken(owner)), 401, 'IotHubUnauthorized');
  assertHubError(await send('dev-b', 'x', {}, hub.info.connectionStrings.registryRead), 401, 'IotHubUnauthorizedAccess', /ServiceConnect/);
  assertHubError(await send('dev-b', 'x', {}, hub.info.connectionStrings.device), 401, 'IotHubUnauthorizedAccess');
  assertHubError(await serviceCall(HOST, hub.info.connectionStrings.registryReadWrite, 'GET', `/messages/serviceBound/feedback${API}`), 401, 'IotHubUnauthorizedAccess');
  // A DeviceConnect policy may speak for any device (skn present), as in IoT Hub.
  const c = credentialsOf(hub.info.connectionStrings.device);
  const policyToken = buildSasToken(`${HOST}/devices/dev-b`, c.key, Math.ceil(Date.now() / 1000) + 60, c.keyName);
  const got = await deviceCall('GET', 'dev-b', '', policyToken);
  assert.equal(got.text, 'private');
  assert.equal((await deviceCall('DELETE', 'dev-b', `/${lockOf(got)}${API}`, policyToken)).status, 204);
});

test('the unchanged device SDK over HTTP receives a message with its properties and completes it', async () => {
  const client = await openDevice(await createDevice(hub, 'dev-sdk-2'), 'http');
  try {
    const received = new Promise<InstanceType<typeof Message>>((resolve) => client.on('message', (m: InstanceType<typeof Message>) => {
      void client.complete(m).then(() => resolve(m));
    }));
    assert.equal((await send('dev-sdk-2', 'hello sdk', { 'iothub-messageid': 'sdk-1', 'iothub-app-k': 'v' })).status, 200);
    const m = await received;
    assert.equal(m.messageId, 'sdk-1');
    assert.equal(m.data.toString(), 'hello sdk');
    assert.equal(m.properties.getValue('iothub-app-k'), 'v');
  } finally {
    await client.close();
  }
  const device = (await serviceCall(HOST, owner, 'GET', `/devices/dev-sdk-2${API}`)).json as { cloudToDeviceMessageCount: number };
  assert.equal(device.cloudToDeviceMessageCount, 0);
});

/** Runs `corral ARGS --data DIR` and parses its JSON output; fails on a non-zero exit. */
async function corral(...args: string[]): Promise<unknown> {
  const child = spawn(process.execPath, [CORRAL_BIN, ...args, '--data', hub.dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => { stdout += c; });
  child.stderr.on('data', (c: Buffer) => { stderr += c; });
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  assert.equal(code, 0, `corral ${args.join(' ')}: ${stderr}`);
  return JSON.parse(stdout);
}

test('the CLI sends with properties and a TTL, reads and completes feedback, and purges', async () => {
  const sent = await corral('c2d', 'send', 'dev-b', '--body', 'from the cli', '--ack', 'full', '--property', 'a=1',
    '--property', 'b=x=y', '--ttl-seconds', '120', '--message-id', 'cli-1') as { messageId: string };
  assert.equal(sent.messageId, 'cli-1');
  const got = await deviceCall('GET', 'dev-b');
  assert.equal(got.text, 'from the cli');
  assert.equal(got.headers['iothub-app-a'], '1');
  assert.equal(got.headers['iothub-app-b'], 'x=y');
  const ttlMs = Date.parse(String(got.headers['iothub-expiry'])) - Date.now();
  assert.ok(ttlMs > 100_000 && ttlMs <= 120_000, `ttl ${ttlMs} ms`);
  assert.equal((await deviceCall('DELETE', 'dev-b', `/${lockOf(got)}${API}`)).status, 204);
  const feedback = await corral('c2d', 'feedback') as { originalMessageId: string; statusCode: string }[];
  assert.deepEqual(feedback.map((r) => [r.originalMessageId, r.statusCode]), [['cli-1', 'Success']]);
  assert.deepEqual(await corral('c2d', 'feedback'), [], 'the batch was completed');
  await corral('c2d', 'send', 'dev-b', '--body', 'to purge');
  assert.deepEqual(await corral('c2d', 'purge', 'dev-b'), { totalMessagesPurged: 1, deviceId: 'dev-b' });
});

test('messages and their lock survive a restart of the hub', async () => {
  assert.equal((await send('dev-sdk', 'first', { 'iothub-messageid': 'keep-1' })).status, 200);
  assert.equal((await send('dev-sdk', 'second', { 'iothub-messageid': 'keep-2' })).status, 200);
  const locked = await deviceCall('GET', 'dev-sdk');
  assert.equal(locked.text, 'first');
  await hub.stop();
  hub = await startHub({ address: HOST, dataDir: hub.dataDir });
  owner = hub.info.connectionStrings.iothubowner;
  const next = await deviceCall('GET', 'dev-sdk');
  assert.equal(next.text, 'second', 'the first is still locked');
  assert.equal((await deviceCall('DELETE', 'dev-sdk', `/${lockOf(locked)}${API}`)).status, 204, 'its lock token still holds');
  assert.equal((await deviceCall('DELETE', 'dev-sdk', `/${lockOf(next)}${API}`)).status, 204);
});
