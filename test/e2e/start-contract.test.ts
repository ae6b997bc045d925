import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { after, before, test } from 'node:test';
import mqtt from 'mqtt-packet';
import { CORRAL_BIN, disposeHub, startHub, tempDataDir, type RunningHub } from '../support/hub-process.js';
import { serviceCall } from '../support/rest.js';

// The `corral start` contract as the foundation issue states it: ready line, hub.json, the dev CA and its
// certificate, signals, restarts, clear start failures, secrets at rest and out of the logs.
const HOST = '127.0.0.6';
const NAME = 'hub.corral.test';
const API = '?api-version=2021-04-12';
let hub: RunningHub;

before(async () => {
  hub = await startHub({ address: HOST, args: ['--hostname', NAME, '--log-level', 'debug'] });
});
after(async () => { await disposeHub(hub); });

/** Runs the CLI to completion; resolves with its exit code and output. */
function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const started = Date.now();
  const child = spawn(process.execPath, [CORRAL_BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => { stdout += c; });
  child.stderr.on('data', (c: Buffer) => { stderr += c; });
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr, ms: Date.now() - started })));
}

test('the ready line carries hostName, ports, caFile and the five connection strings; hub.json holds the same', () => {
  const info = hub.info;
  assert.equal(info.hostName, NAME);
  assert.deepEqual(info.ports, { https: 443, mqtts: 8883 });
  assert.equal(info.caFile, join(hub.dataDir, 'tls', 'ca.pem'));
  assert.deepEqual(Object.keys(info.connectionStrings).sort(), ['device', 'iothubowner', 'registryRead', 'registryReadWrite', 'service']);
  for (const [name, cs] of Object.entries(info.connectionStrings)) {
    assert.match(cs, new RegExp(`^HostName=${NAME.replace(/\./g, '\\.')};SharedAccessKeyName=${name};SharedAccessKey=[A-Za-z0-9+/]{43}=$`));
  }
  const file = join(hub.dataDir, 'hub.json');
  assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), info);
  assert.equal(statSync(file).mode & 0o777, 0o600);
});

test('the server certificate names the hostname, the bind address, localhost and 127.0.0.1, signed by the dev CA', async () => {
  const cert = new X509Certificate(readFileSync(join(hub.dataDir, 'tls', 'server.pem')));
  const ca = new X509Certificate(readFileSync(hub.info.caFile));
  assert.ok(cert.checkIssued(ca) && cert.verify(ca.publicKey));
  assert.ok(cert.checkHost(NAME) && cert.checkHost('localhost'));
  assert.ok(cert.checkIP(HOST) && cert.checkIP('127.0.0.1'));
  await new Promise<void>((resolve, reject) => {
    const s = connect({ host: HOST, port: 443, servername: NAME, ca: readFileSync(hub.info.caFile) }, () => { s.end(); resolve(); });
    s.on('error', reject);
  });
});

test('the MQTT/TLS port is up behind the same certificate and refuses an unknown device with CONNACK 5', async () => {
  const connack = await new Promise<mqtt.IConnackPacket>((resolve, reject) => {
    const s = connect({ host: HOST, port: 8883, servername: NAME, ca: readFileSync(hub.info.caFile) }, () => {
      s.write(mqtt.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: 'd1', username: `${NAME}/d1/?api-version=2021-04-12`, password: Buffer.from('SharedAccessSignature sr=x&sig=y&se=1'), clean: false, keepalive: 60 }));
    });
    const parser = mqtt.parser();
    parser.on('packet', (p) => { if (p.cmd === 'connack') resolve(p as mqtt.IConnackPacket); });
    s.on('data', (c) => parser.parse(c));
    s.on('error', reject);
  });
  assert.equal(connack.returnCode, 5);
});

test('device keys are encrypted at rest and no key or token reaches the log', async () => {
  const key = Buffer.from('corral-at-rest-probe-key-32bytes').toString('base64');
  const owner = hub.info.connectionStrings.iothubowner;
  const res = await serviceCall(HOST, owner, 'PUT', `/devices/at-rest${API}`, { authentication: { symmetricKey: { primaryKey: key, secondaryKey: key } } });
  assert.equal(res.status, 200, res.text);
  await serviceCall(HOST, owner, 'GET', `/devices/missing${API}`);
  await serviceCall(HOST, hub.info.connectionStrings.device, 'GET', `/devices/at-rest${API}`);
  for (const f of readdirSync(hub.dataDir).filter((n) => n.startsWith('corral.db'))) {
    const bytes = readFileSync(join(hub.dataDir, f));
    assert.equal(bytes.includes(key), false, `${f} holds the key in the clear`);
    for (const cs of Object.values(hub.info.connectionStrings)) assert.equal(bytes.includes(cs.split('SharedAccessKey=')[1]), false);
  }
  assert.equal(statSync(join(hub.dataDir, 'keys', 'master.key')).mode & 0o777, 0o600);
  const logs = hub.logs.join('\n');
  assert.ok(logs.length > 0);
  assert.equal(logs.includes(key), false);
  assert.equal(/SharedAccessSignature|sig=/.test(logs), false);
  for (const cs of Object.values(hub.info.connectionStrings)) assert.equal(logs.includes(cs.split('SharedAccessKey=')[1]), false);
});

test('SIGTERM stops the hub with exit 0 within 5 s; a restart keeps policies, CA and devices', async () => {
  const before = { info: hub.info, ca: readFileSync(hub.info.caFile, 'utf8') };
  const t0 = Date.now();
  assert.equal(await hub.stop(), 0);
  assert.ok(Date.now() - t0 < 5000, `stop took ${Date.now() - t0} ms`);
  hub = await startHub({ address: HOST, dataDir: hub.dataDir, args: ['--hostname', NAME, '--log-level', 'debug'] });
  assert.deepEqual(hub.info, before.info);
  assert.equal(readFileSync(hub.info.caFile, 'utf8'), before.ca);
  assert.equal((await serviceCall(HOST, hub.info.connectionStrings.iothubowner, 'GET', `/devices/at-rest${API}`)).status, 200);
});

test('SIGINT stops the hub with exit 0 too', async () => {
  const other = await startHub({ address: '127.0.0.7' });
  other.process.kill('SIGINT');
  assert.equal(await other.stop(), 0);
  await disposeHub(other);
});

test('a port already taken stops the start with a message naming the port and the option that moves it', async () => {
  const dir = tempDataDir('clash');
  const r = await runCli(['start', '--data', dir, '--bind', HOST, '--hostname', HOST]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot listen for HTTPS on 127\.0\.0\.6:443 \(EADDRINUSE\).*--https-port/);
  const r2 = await runCli(['start', '--data', dir, '--bind', HOST, '--hostname', HOST, '--https-port', '8443']);
  assert.equal(r2.code, 1);
  assert.match(r2.stderr, /cannot listen for MQTT\/TLS on 127\.0\.0\.6:8883 \(EADDRINUSE\).*--mqtts-port/);
});

test('bad settings stop the start naming the key, the value and what is allowed', async () => {
  const dir = tempDataDir('badcfg');
  const cases: [string[], RegExp][] = [
    [['--store', 'mongo'], /invalid --store: "mongo" \(sqlite or postgres\)/],
    [['--https-port', '70000'], /invalid --https-port: "70000"/],
    [['--bind', 'not-an-ip'], /invalid --bind: "not-an-ip"/],
    [['--twin-desired-bytes', '100'], /invalid --twin-desired-bytes: "100" \(an integer ≥ 32768/],
    [['--store', 'postgres'], /invalid --postgres-url/],
    [['--no-such-flag'], /Unknown option '--no-such-flag'/],
  ];
  for (const [args, pattern] of cases) {
    const r = await runCli(['start', '--data', dir, ...args], { CORRAL_POSTGRES_URL: '' });
    assert.notEqual(r.code, 0, args.join(' '));
    assert.match(r.stderr, pattern);
  }
});
