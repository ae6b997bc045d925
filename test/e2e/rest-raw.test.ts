import assert from 'node:assert/strict';
import { connect } from 'node:tls';
import { after, before, test } from 'node:test';
import { buildSasToken } from '../../src/core/access/index.js';
import { disposeHub, startHub, type RunningHub } from '../support/hub-process.js';
import { credentialsOf, rawRequest, serviceCall, serviceToken, type RawResponse } from '../support/rest.js';

// The service REST API as raw HTTPS sees it: auth failures, rights per route, malformed input, IoT Hub's error shape.
const HOST = '127.0.0.4';
const API = '?api-version=2021-04-12';
let hub: RunningHub;
let owner: string;

before(async () => {
  hub = await startHub({ address: HOST, args: ['--max-body-bytes', String(1024 * 1024)] });
  owner = hub.info.connectionStrings.iothubowner;
});
after(async () => { await disposeHub(hub); });

function assertHubError(res: RawResponse, status: number, codeName: string, messagePattern?: RegExp): void {
  assert.equal(res.status, status, res.text);
  assert.equal(res.headers['iothub-errorcode'], codeName);
  assert.match(String(res.headers['content-type']), /application\/json/);
  const body = res.json as { Message: string; ExceptionMessage: string };
  assert.ok(body.Message.startsWith(`ErrorCode:${codeName};`), body.Message);
  assert.match(body.ExceptionMessage, /^Tracking ID:/);
  if (messagePattern) assert.match(body.Message, messagePattern);
}

test('a request without a token is refused with 401 IotHubUnauthorized', async () => {
  assertHubError(await rawRequest(HOST, 'GET', `/devices/x${API}`), 401, 'IotHubUnauthorized', /no Authorization/);
});

test('a token signed with the wrong key is refused', async () => {
  const c = credentialsOf(owner);
  const forged = buildSasToken(c.hostName, Buffer.alloc(32, 1).toString('base64'), Math.ceil(Date.now() / 1000) + 60, c.keyName);
  assertHubError(await rawRequest(HOST, 'GET', `/devices/x${API}`, { headers: { authorization: forged } }), 401, 'IotHubUnauthorized', /signature/);
});

test('an expired token is refused', async () => {
  const expired = serviceToken(owner, Math.floor(Date.now() / 1000) - 5);
  assertHubError(await rawRequest(HOST, 'GET', `/devices/x${API}`, { headers: { authorization: expired } }), 401, 'IotHubUnauthorized', /expired/);
});

test('a token for another hub or an unknown policy is refused', async () => {
  const c = credentialsOf(owner);
  const se = Math.ceil(Date.now() / 1000) + 60;
  const other = buildSasToken('other.example', c.key, se, c.keyName);
  assertHubError(await rawRequest(HOST, 'GET', `/devices/x${API}`, { headers: { authorization: other } }), 401, 'IotHubUnauthorized', /not this hub/);
  const unknown = buildSasToken(c.hostName, c.key, se, 'nobody');
  assertHubError(await rawRequest(HOST, 'GET', `/devices/x${API}`, { headers: { authorization: unknown } }), 401, 'IotHubUnauthorized', /nobody/);
  assertHubError(await rawRequest(HOST, 'GET', `/devices/x${API}`, { headers: { authorization: 'Bearer abc' } }), 401, 'IotHubUnauthorized');
});

test('each policy reaches only the routes its rights allow', async () => {
  const cs = hub.info.connectionStrings;
  assert.equal((await serviceCall(HOST, owner, 'PUT', `/devices/rights-1${API}`, {})).status, 200);
  // service: ServiceConnect only — twins yes, registry no.
  assertHubError(await serviceCall(HOST, cs.service, 'PUT', `/devices/rights-2${API}`, {}), 401, 'IotHubUnauthorizedAccess', /RegistryWrite/);
  assertHubError(await serviceCall(HOST, cs.service, 'GET', `/devices/rights-1${API}`), 401, 'IotHubUnauthorizedAccess');
  assert.equal((await serviceCall(HOST, cs.service, 'GET', `/twins/rights-1${API}`)).status, 200);
  // registryRead: reads only.
  assert.equal((await serviceCall(HOST, cs.registryRead, 'GET', `/devices/rights-1${API}`)).status, 200);
  assertHubError(await serviceCall(HOST, cs.registryRead, 'DELETE', `/devices/rights-1${API}`, undefined, { 'if-match': '"*"' }), 401, 'IotHubUnauthorizedAccess');
  assertHubError(await serviceCall(HOST, cs.registryRead, 'PATCH', `/twins/rights-1${API}`, { tags: { a: 1 } }), 401, 'IotHubUnauthorizedAccess');
  assertHubError(await serviceCall(HOST, cs.registryRead, 'POST', `/corral/v1/registry/import`, ''), 401, 'IotHubUnauthorizedAccess');
  // registryReadWrite: registry writes.
  assert.equal((await serviceCall(HOST, cs.registryReadWrite, 'PUT', `/devices/rights-3${API}`, {})).status, 200);
  // device: DeviceConnect only — nothing on the service API.
  for (const [method, path] of [['GET', '/devices/rights-1'], ['GET', '/twins/rights-1'], ['GET', '/statistics/devices'], ['GET', '/corral/v1/policies'], ['GET', '/corral/v1/registry/export']]) {
    assertHubError(await serviceCall(HOST, cs.device, method, `${path}${API}`), 401, 'IotHubUnauthorizedAccess');
  }
});

test('policy keys are shown only to a policy holding every right', async () => {
  const asOwner = (await serviceCall(HOST, owner, 'GET', `/corral/v1/policies${API}`)).json as { keyName: string; primaryKey?: string }[];
  assert.deepEqual(asOwner.map((p) => p.keyName).sort(), ['device', 'iothubowner', 'registryRead', 'registryReadWrite', 'service']);
  assert.ok(asOwner.every((p) => p.primaryKey));
  const asReader = (await serviceCall(HOST, hub.info.connectionStrings.registryRead, 'GET', `/corral/v1/policies${API}`)).json as { primaryKey?: string }[];
  assert.ok(asReader.every((p) => p.primaryKey === undefined));
});

test('malformed JSON, a wrong body type and an oversized body get clear 4xx errors', async () => {
  assertHubError(await serviceCall(HOST, owner, 'PUT', `/devices/bad-json${API}`, '{"status": '), 400, 'ArgumentInvalid', /JSON/);
  assertHubError(await serviceCall(HOST, owner, 'PUT', `/devices/bad-json${API}`, '[1,2]'), 400, 'ArgumentInvalid', /object/);
  assertHubError(await serviceCall(HOST, owner, 'PUT', `/devices/bad-json${API}`, { status: 'sleeping' }), 400, 'ArgumentInvalid', /status/);
  assertHubError(await serviceCall(HOST, owner, 'PUT', `/devices/bad-json${API}`, { authentication: { symmetricKey: { primaryKey: 'short' } } }), 400, 'ArgumentInvalid', /primaryKey/);
  const big = JSON.stringify({ tags: { blob: 'x'.repeat(1024 * 1024) } });
  assertHubError(await serviceCall(HOST, owner, 'PATCH', `/twins/rights-1${API}`, big), 413, 'MessageTooLarge');
});

test('device ids outside IoT Hub rules are refused with a 400 naming the rule', async () => {
  assertHubError(await serviceCall(HOST, owner, 'PUT', `/devices/a+b${API}`, {}), 400, 'ArgumentInvalid', /characters outside/);
  assertHubError(await serviceCall(HOST, owner, 'PUT', `/devices/${'x'.repeat(129)}${API}`, {}), 400, 'ArgumentInvalid', /129 characters/);
  assertHubError(await serviceCall(HOST, owner, 'PUT', `/devices/a%2Fb${API}`, {}), 400, 'ArgumentInvalid');
  assertHubError(await serviceCall(HOST, owner, 'PUT', `/devices/body-mismatch${API}`, { deviceId: 'other' }), 400, 'ArgumentInvalid', /does not match/);
  const ok = await serviceCall(HOST, owner, 'PUT', `/devices/${encodeURIComponent("dev(1)*:=@$'!,%_")}${API}`, {});
  assert.equal(ok.status, 200, ok.text);
  assert.equal((ok.json as { deviceId: string }).deviceId, "dev(1)*:=@$'!,%_");
});

test('unknown routes get a 404 in IoT Hub error form', async () => {
  assertHubError(await serviceCall(HOST, owner, 'GET', `/nothing/here${API}`), 404, 'NotFound', /GET \/nothing\/here/);
});

test('paths match case-insensitively and with a trailing slash', async () => {
  assert.equal((await serviceCall(HOST, owner, 'GET', `/Devices/rights-1${API}`)).status, 200);
  assert.equal((await serviceCall(HOST, owner, 'GET', `/devices/${API}`)).status, 200);
});

test('If-Match: a stale etag is 412, "*" is unconditional, a missing device is 404', async () => {
  const created = (await serviceCall(HOST, owner, 'PUT', `/devices/etag-1${API}`, {})).json as { etag: string };
  assertHubError(await serviceCall(HOST, owner, 'PUT', `/devices/etag-1${API}`, { status: 'disabled' }, { 'if-match': '"stale"' }), 412, 'PreconditionFailed');
  const updated = await serviceCall(HOST, owner, 'PUT', `/devices/etag-1${API}`, { status: 'disabled' }, { 'if-match': `"${created.etag}"` });
  assert.equal(updated.status, 200);
  assertHubError(await serviceCall(HOST, owner, 'DELETE', `/devices/etag-1${API}`, undefined, { 'if-match': `"${created.etag}"` }), 412, 'PreconditionFailed');
  assertHubError(await serviceCall(HOST, owner, 'PUT', `/devices/etag-none${API}`, {}, { 'if-match': '"*"' }), 404, 'DeviceNotFound');
  const twin = (await serviceCall(HOST, owner, 'GET', `/twins/etag-1${API}`)).json as { etag: string };
  assertHubError(await serviceCall(HOST, owner, 'PATCH', `/twins/etag-1${API}`, { tags: { a: 1 } }, { 'if-match': '"AAAAAAAAAAA="' }), 412, 'PreconditionFailed');
  assert.equal((await serviceCall(HOST, owner, 'PATCH', `/twins/etag-1${API}`, { tags: { a: 1 } }, { 'if-match': `"${twin.etag}"` })).status, 200);
  assert.equal((await serviceCall(HOST, owner, 'DELETE', `/devices/etag-1${API}`, undefined, { 'if-match': '*' })).status, 204);
});

test('twin writes that break IoT Hub rules are refused: reported from the service, depth, bad keys', async () => {
  await serviceCall(HOST, owner, 'PUT', `/devices/twin-rules${API}`, {});
  assertHubError(await serviceCall(HOST, owner, 'PATCH', `/twins/twin-rules${API}`, { properties: { reported: { a: 1 } } }), 400, 'ArgumentInvalid', /reported/);
  let deep: Record<string, unknown> = { leaf: 1 };
  for (let i = 0; i < 11; i++) deep = { [`l${i}`]: deep };
  assertHubError(await serviceCall(HOST, owner, 'PATCH', `/twins/twin-rules${API}`, { properties: { desired: deep } }), 400, 'ArgumentInvalid', /deeper/);
  assertHubError(await serviceCall(HOST, owner, 'PATCH', `/twins/twin-rules${API}`, { tags: { 'a.b': 1 } }), 400, 'ArgumentInvalid', /a\.b/);
  const put = await serviceCall(HOST, owner, 'PUT', `/twins/twin-rules${API}`, { tags: { t: 1 }, properties: { desired: { d: 1 } } });
  assert.equal(put.status, 200);
  assert.deepEqual((put.json as { tags: unknown }).tags, { t: 1 });
});

test('device list pages with top and x-ms-continuation', async () => {
  for (const id of ['page-a', 'page-b', 'page-c']) await serviceCall(HOST, owner, 'PUT', `/devices/${id}${API}`, {});
  const seen: string[] = [];
  let token: string | undefined;
  do {
    const res = await serviceCall(HOST, owner, 'GET', `/devices${API}&top=2`, undefined, token ? { 'x-ms-continuation': token } : {});
    seen.push(...(res.json as { deviceId: string }[]).map((d) => d.deviceId));
    token = res.headers['x-ms-continuation'] as string | undefined;
  } while (token);
  assert.ok(['page-a', 'page-b', 'page-c'].every((id) => seen.includes(id)));
  assert.equal(new Set(seen).size, seen.length);
  assertHubError(await serviceCall(HOST, owner, 'GET', `/devices${API}&top=5000`), 400, 'ArgumentInvalid', /top/);
});

test('service statistics report connected devices', async () => {
  const res = await serviceCall(HOST, hub.info.connectionStrings.service, 'GET', `/statistics/service${API}`);
  assert.deepEqual(res.json, { connectedDeviceCount: 0 });
});

test('garbage on the HTTPS port gets a 400 and does not take the hub down', async () => {
  const reply = await new Promise<string>((resolve, reject) => {
    const s = connect({ host: HOST, port: 443, rejectUnauthorized: false }, () => {
      s.write(Buffer.from('GET /\x00\xff\xfe garbage \r\n\r\n\r\n'));
    });
    let got = '';
    s.setTimeout(10_000, () => s.destroy(new Error('no answer to garbage within 10 s')));
    s.on('data', (c: Buffer) => { got += c.toString('latin1'); s.destroy(); });
    s.on('close', () => resolve(got));
    s.on('error', reject);
  });
  assert.match(reply, /^HTTP\/1\.1 400/);
  assert.equal((await serviceCall(HOST, owner, 'GET', `/devices/rights-1${API}`)).status, 200);
});

test('requests over the configured rate are throttled with 429', async () => {
  const throttled = await startHub({ address: '127.0.0.10', args: ['--max-requests-per-second', '3'] });
  try {
    const cs = throttled.info.connectionStrings.iothubowner;
    const results = await Promise.all(Array.from({ length: 10 }, () => serviceCall('127.0.0.10', cs, 'GET', `/statistics/devices${API}`)));
    const limited = results.filter((r) => r.status === 429);
    assert.ok(limited.length >= 5, `expected most of 10 requests throttled, got ${limited.length}`);
    assertHubError(limited[0], 429, 'ThrottlingException', /3 requests per second/);
  } finally {
    await disposeHub(throttled);
  }
});
