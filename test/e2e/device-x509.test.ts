import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, request } from 'node:https';
import { after, before, describe, test } from 'node:test';
import iothub from 'azure-iothub';
import { CORRAL_BIN, disposeHub, startHub, type RunningHub } from '../support/hub-process.js';
import { createDevice, DeviceClient, Http, Message, Mqtt, MqttWs, openDevice, readEvents } from '../support/devices.js';
import { serviceCall, type RawResponse } from '../support/rest.js';
import { daysFromNow, issueCa, issueCert, type TestCert } from '../support/x509.js';

// X.509 device authentication with the unchanged azure-iot-device SDK: devices whose certificates chain to a CA
// registered and verified through Corral's certificate API, and self-signed devices matched by thumbprint.
const HOST = '127.0.0.17';
const API = '?api-version=2021-04-12';
const CERTS = '/corral/v1/certificates';
let hub: RunningHub;
let registry: iothub.Registry;
let owner: string;

const root = issueCa('X509 E2E Root');
const intermediate = issueCa('X509 E2E Intermediate', root);
const unverified = issueCa('X509 E2E Unverified Root');
const unregistered = issueCa('X509 E2E Unregistered Root');

/** The body the SDK's `setOptions` takes: the leaf and, after it, the intermediates to send. */
function x509Of(leaf: TestCert, ...chain: TestCert[]): { cert: string; key: string } {
  return { cert: [leaf, ...chain].map((c) => c.certPem).join(''), key: leaf.keyPem };
}

const TRANSPORTS = { mqtt: Mqtt, mqttws: MqttWs, http: Http } as const;

/** An SDK client for an X.509 device (`x509=true`), not opened yet. */
async function x509Client(deviceId: string, x509: { cert: string; key: string }, transport: keyof typeof TRANSPORTS): Promise<DeviceClient> {
  const client = DeviceClient.fromConnectionString(`HostName=${HOST};DeviceId=${deviceId};x509=true`, TRANSPORTS[transport]);
  const set = client.setOptions(x509);
  // azure-iot-device-http 1.14.4 Http.setOptions applies cert/key at once but calls back only for receiver options,
  // so its promise never settles; MQTT's does.
  if (transport !== 'http') await set;
  return client;
}

/**
 * A device-API request presenting `x509`, without an Authorization header; over a fresh TLS connection unless an
 * agent is given.
 */
function deviceRequest(method: string, path: string, x509: { cert: string; key: string }, body?: string, agent: Agent | false = false): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: HOST, port: 443, method, path, ...x509, ca: readFileSync(hub.info.caFile, 'utf8'), agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function createX509Device(deviceId: string, authentication: Record<string, unknown>): Promise<void> {
  await registry.create({ deviceId, authentication } as iothub.Registry.DeviceDescription);
}

function etagOf(r: RawResponse): string {
  return (r.json as { etag: string }).etag;
}

/** Registers `ca` under `name` through REST, and proves possession of its key unless `verify` is false. */
async function registerCa(name: string, ca: TestCert, verify = true): Promise<RawResponse> {
  const put = await serviceCall(HOST, owner, 'PUT', `${CERTS}/${name}${API}`, { certificate: ca.certPem });
  assert.equal(put.status, 200, put.text);
  if (!verify) return put;
  const code = await serviceCall(HOST, owner, 'POST', `${CERTS}/${name}/generateVerificationCode${API}`, undefined, { 'if-match': `"${etagOf(put)}"` });
  assert.equal(code.status, 200, code.text);
  const verificationCode = (code.json as { properties: { verificationCode: string } }).properties.verificationCode;
  const proof = issueCert({ cn: verificationCode, issuer: ca });
  const verified = await serviceCall(HOST, owner, 'POST', `${CERTS}/${name}/verify${API}`, { certificate: proof.certPem });
  assert.equal(verified.status, 200, verified.text);
  return verified;
}

before(async () => {
  hub = await startHub({ address: HOST });
  owner = hub.info.connectionStrings.iothubowner;
  registry = iothub.Registry.fromConnectionString(owner);
  await registerCa('root', root);
  await registerCa('pending', unverified, false);
  await createX509Device('ca-dev', { type: 'certificateAuthority' });
  await createX509Device('ca-http', { type: 'certificateAuthority' });
});
after(async () => { await disposeHub(hub); });

describe('certificate API', () => {
  test('register, read, list, prove possession, delete, in Azure\'s ARM shape', async () => {
    const put = await serviceCall(HOST, owner, 'PUT', `${CERTS}/api-ca${API}`, { properties: { certificate: intermediate.der.toString('base64') } });
    assert.equal(put.status, 200, put.text);
    const body = put.json as { name: string; etag: string; properties: Record<string, unknown> };
    assert.equal(body.name, 'api-ca');
    assert.equal(body.properties.subject, 'CN=X509 E2E Intermediate, O=Corral tests');
    assert.equal(body.properties.thumbprint, intermediate.sha256);
    assert.equal(body.properties.isVerified, false);
    for (const k of ['created', 'updated', 'expiry']) assert.ok(Number.isFinite(Date.parse(String(body.properties[k]))), k);
    const again = await serviceCall(HOST, owner, 'PUT', `${CERTS}/api-ca${API}`, { certificate: intermediate.certPem });
    assert.equal(again.status, 412);
    const read = hub.info.connectionStrings.registryRead;
    assert.equal((await serviceCall(HOST, read, 'GET', `${CERTS}/api-ca${API}`)).status, 200);
    const list = await serviceCall(HOST, read, 'GET', `${CERTS}${API}`);
    assert.deepEqual((list.json as { value: { name: string }[] }).value.map((c) => c.name), ['api-ca', 'pending', 'root']);
    assert.equal((await serviceCall(HOST, read, 'DELETE', `${CERTS}/api-ca${API}`)).status, 401);
    assert.equal((await serviceCall(HOST, hub.info.connectionStrings.service, 'GET', `${CERTS}${API}`)).status, 401);
    const code = await serviceCall(HOST, owner, 'POST', `${CERTS}/api-ca/generateVerificationCode${API}`);
    const verificationCode = (code.json as { properties: { verificationCode: string } }).properties.verificationCode;
    const wrong = await serviceCall(HOST, owner, 'POST', `${CERTS}/api-ca/verify${API}`, { certificate: issueCert({ cn: verificationCode, issuer: root }).certPem });
    assert.equal(wrong.status, 400);
    assert.match(wrong.text, /not signed by the private key/);
    const right = await serviceCall(HOST, owner, 'POST', `${CERTS}/api-ca/verify${API}`, { certificate: issueCert({ cn: verificationCode, issuer: intermediate }).certPem });
    assert.equal((right.json as { properties: { isVerified: boolean } }).properties.isVerified, true);
    assert.equal((await serviceCall(HOST, owner, 'DELETE', `${CERTS}/api-ca${API}`, undefined, { 'if-match': '"stale"' })).status, 412);
    assert.equal((await serviceCall(HOST, owner, 'DELETE', `${CERTS}/api-ca${API}`, undefined, { 'if-match': `"${etagOf(right)}"` })).status, 204);
    assert.equal((await serviceCall(HOST, owner, 'GET', `${CERTS}/api-ca${API}`)).status, 404);
  });

  test('a leaf certificate, an expired CA or garbage cannot be registered (400 naming why)', async () => {
    const leaf = await serviceCall(HOST, owner, 'PUT', `${CERTS}/leaf${API}`, { certificate: issueCert({ cn: 'x', issuer: root }).certPem });
    assert.equal(leaf.status, 400);
    assert.match(leaf.text, /not a CA certificate/);
    const old = issueCa('Old', undefined, { notBefore: daysFromNow(-9), notAfter: daysFromNow(-1) });
    assert.match((await serviceCall(HOST, owner, 'PUT', `${CERTS}/old${API}`, { certificate: old.certPem })).text, /expired on/);
    assert.equal((await serviceCall(HOST, owner, 'PUT', `${CERTS}/junk${API}`, { certificate: '<junk>' })).status, 400);
    assert.equal((await serviceCall(HOST, owner, 'PUT', `${CERTS}/junk${API}`, {})).status, 400);
  });
});

for (const transport of ['mqtt', 'mqttws', 'http'] as const) {
  test(`over ${transport}: a certificateAuthority device (leaf → intermediate → verified root) sends telemetry`, async () => {
    const id = transport === 'http' ? 'ca-http' : 'ca-dev';
    const client = await x509Client(id, x509Of(issueCert({ cn: id, issuer: intermediate }), intermediate), transport);
    try {
      await client.open();
      const before = (await readEvents(hub, id)).length;
      await client.sendEvent(new Message(`hello over ${transport}`));
      await client.sendEvent(new Message('and again'));
      const events = (await readEvents(hub, id)).slice(before);
      assert.deepEqual(events.map((e) => Buffer.from(e.body).toString()), [`hello over ${transport}`, 'and again']);
      assert.equal(events[0].properties['iothub-connection-auth-method'], 'x509');
    } finally {
      await client.close();
    }
  });

  test(`over ${transport}: a selfSigned device is matched by its SHA-1 or SHA-256 thumbprint`, async () => {
    const primary = issueCert({ cn: 'whatever' });
    const secondary = issueCert({ cn: 'spare' });
    const id = `self-${transport}`;
    await createX509Device(id, { type: 'selfSigned', x509Thumbprint: { primaryThumbprint: primary.sha1, secondaryThumbprint: secondary.sha256 } });
    for (const cert of [primary, secondary]) {
      const client = await x509Client(id, x509Of(cert), transport);
      try {
        await client.open();
        await client.sendEvent(new Message(cert.cn));
      } finally {
        await client.close();
      }
    }
    assert.deepEqual((await readEvents(hub, id)).map((e) => Buffer.from(e.body).toString()), ['whatever', 'spare']);
  });
}

describe('refusals', () => {
  const cases: [string, string, () => { cert: string; key: string }][] = [
    ['a leaf of an unregistered CA', 'ca-dev', () => x509Of(issueCert({ cn: 'ca-dev', issuer: unregistered }))],
    ['a leaf of a registered but unverified CA', 'ca-dev', () => x509Of(issueCert({ cn: 'ca-dev', issuer: unverified }))],
    ['a leaf whose CN is another device', 'ca-dev', () => x509Of(issueCert({ cn: 'ca-http', issuer: root }))],
    ['a leaf of the intermediate without the intermediate', 'ca-dev', () => x509Of(issueCert({ cn: 'ca-dev', issuer: intermediate }))],
    ['an expired leaf', 'ca-dev', () => x509Of(issueCert({ cn: 'ca-dev', issuer: root, notBefore: daysFromNow(-9), notAfter: daysFromNow(-1) }))],
    ['a self-signed device presenting another certificate', 'self-refused', () => x509Of(issueCert({ cn: 'self-refused' }))],
    ['a SAS device presenting only a certificate', 'sas-dev', () => x509Of(issueCert({ cn: 'sas-dev', issuer: root }))],
  ];

  before(async () => {
    await createX509Device('self-refused', { type: 'selfSigned', x509Thumbprint: { primaryThumbprint: issueCert({ cn: 'registered' }).sha256 } });
    await createDevice(hub, 'sas-dev');
  });

  for (const [what, id, x509] of cases) {
    test(`${what}: MQTT open fails with UnauthorizedError, HTTP with 401`, async () => {
      const tls = x509();
      const client = await x509Client(id, tls, 'mqtt');
      await assert.rejects(client.open(), { name: 'UnauthorizedError' });
      await client.close();
      assert.equal(await deviceRequest('POST', `/devices/${id}/messages/events${API}`, tls, 'x'), 401);
      assert.equal(await deviceRequest('GET', `/devices/${id}/messages/devicebound${API}`, tls), 401);
    });
  }

  test('the same device with a good certificate is let in on both APIs, C2D included', async () => {
    const tls = x509Of(issueCert({ cn: 'ca-dev', issuer: root }));
    assert.equal(await deviceRequest('POST', `/devices/ca-dev/messages/events${API}`, tls, 'x'), 204);
    assert.equal(await deviceRequest('GET', `/devices/ca-dev/messages/devicebound${API}`, tls), 204);
    const client = await openDeviceX509('ca-dev', tls);
    await client.close();
  });
});

test('an intermediate-signed device passes on every new connection of a session-caching agent (no resumption)', async () => {
  const tls = x509Of(issueCert({ cn: 'ca-http', issuer: intermediate }), intermediate);
  const agent = new Agent({ keepAlive: false });
  try {
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push(await deviceRequest('POST', `/devices/ca-http/messages/events${API}`, tls, `r${i}`, agent));
    assert.deepEqual(statuses, [204, 204, 204]);
  } finally {
    agent.destroy();
  }
});

async function openDeviceX509(deviceId: string, x509: { cert: string; key: string }): Promise<DeviceClient> {
  const client = await x509Client(deviceId, x509, 'mqtt');
  await client.open();
  return client;
}

test('a SAS device still connects with its key (the certificate path changes nothing for it)', async () => {
  const client = await openDevice(await createDevice(hub, 'sas-still'), 'mqtt');
  await client.close();
});

/** Runs the CLI against the hub through `--data`; resolves with its exit code and output. */
function corral(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CORRAL_BIN, ...args, '--data', hub.dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => { stdout += c; });
  child.stderr.on('data', (c: Buffer) => { stderr += c; });
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
}

test('corral cert add, verification-code, verify, list, show and delete', async () => {
  const ca = issueCa('X509 CLI Root');
  const caFile = join(hub.dataDir, 'cli-ca.der');
  writeFileSync(caFile, ca.der);
  const added = await corral(['cert', 'add', 'cli-ca', caFile]);
  assert.equal(added.code, 0, added.stderr);
  assert.equal((JSON.parse(added.stdout) as { properties: { thumbprint: string } }).properties.thumbprint, ca.sha256);
  const again = await corral(['cert', 'add', 'cli-ca', caFile]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /412.*exists already/);
  const code = await corral(['cert', 'verification-code', 'cli-ca']);
  const verificationCode = (JSON.parse(code.stdout) as { properties: { verificationCode: string } }).properties.verificationCode;
  const proofFile = join(hub.dataDir, 'cli-proof.pem');
  writeFileSync(proofFile, issueCert({ cn: verificationCode, issuer: ca }).certPem);
  const verified = await corral(['cert', 'verify', 'cli-ca', proofFile]);
  assert.equal(verified.code, 0, verified.stderr);
  assert.equal((JSON.parse(verified.stdout) as { properties: { isVerified: boolean } }).properties.isVerified, true);
  const table = await corral(['cert', 'list', '--output', 'table']);
  assert.match(table.stdout, /^name\s+subject\s+thumbprint\s+isVerified/);
  assert.match(table.stdout, /cli-ca\s+CN=X509 CLI Root, O=Corral tests\s+[0-9A-F]{64}\s+true/);
  assert.equal((JSON.parse((await corral(['cert', 'show', 'cli-ca'])).stdout) as { name: string }).name, 'cli-ca');
  assert.equal((await corral(['cert', 'delete', 'cli-ca'])).code, 0);
  const gone = await corral(['cert', 'show', 'cli-ca']);
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /404/);
});
