import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CORRAL_BIN, disposeHub, startHub, type RunningHub } from '../support/hub-process.js';

// The admin verbs of the CLI against a real hub: `--data DIR` (hub.json) and CORRAL_CONNECTION_STRING.
const HOST = '127.0.0.5';
let hub: RunningHub;
let work: string;

before(async () => {
  hub = await startHub({ address: HOST });
  work = mkdtempSync(join(tmpdir(), 'corral-cli-'));
});
after(async () => { await disposeHub(hub); });

function corral(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CORRAL_BIN, ...args], { cwd: work, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => { stdout += c; });
  child.stderr.on('data', (c: Buffer) => { stderr += c; });
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
}

async function ok(args: string[], env?: NodeJS.ProcessEnv): Promise<unknown> {
  const r = await corral([...args, '--data', hub.dataDir], env);
  assert.equal(r.code, 0, `corral ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim().startsWith('{') || r.stdout.trim().startsWith('[') ? JSON.parse(r.stdout) : r.stdout;
}

test('device create, show, update, list and delete work through --data', async () => {
  const created = await ok(['device', 'create', 'cli-1']) as { deviceId: string; authentication: { symmetricKey: { primaryKey: string } } };
  assert.equal(created.deviceId, 'cli-1');
  assert.ok(created.authentication.symmetricKey.primaryKey);
  const shown = await ok(['device', 'show', 'cli-1']) as { deviceId: string };
  assert.equal(shown.deviceId, 'cli-1');
  const updated = await ok(['device', 'update', 'cli-1', '--status', 'disabled', '--status-reason', 'stolen']) as { status: string; statusReason: string; authentication: { symmetricKey: { primaryKey: string } } };
  assert.equal(updated.status, 'disabled');
  assert.equal(updated.statusReason, 'stolen');
  assert.equal(updated.authentication.symmetricKey.primaryKey, created.authentication.symmetricKey.primaryKey);
  await ok(['device', 'create', 'cli-2', '--auth', 'selfSigned', '--primary-thumbprint', 'ab'.repeat(20)]);
  const list = await ok(['device', 'list']) as { deviceId: string }[];
  assert.deepEqual(list.map((d) => d.deviceId).filter((id) => id.startsWith('cli-')), ['cli-1', 'cli-2']);
  await ok(['device', 'delete', 'cli-2']);
  const missing = await corral(['device', 'show', 'cli-2', '--data', hub.dataDir]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /404: ErrorCode:DeviceNotFound;device 'cli-2' not found/);
});

test('--output table prints aligned columns for people', async () => {
  const out = await ok(['device', 'list', '--output', 'table']) as string;
  const lines = out.trimEnd().split('\n');
  assert.match(lines[0], /^deviceId\s+status\s+connectionState\s+lastActivityTime\s+cloudToDeviceMessageCount$/);
  assert.match(lines[1], /^-+\s+-+/);
  assert.ok(lines.some((l) => /^cli-1\s+disabled\s+Disconnected/.test(l)));
});

test('modules are managed with --module', async () => {
  await ok(['device', 'create', 'cli-mod']);
  const m = await ok(['device', 'create', 'cli-mod', '--module', 'edge-agent']) as { moduleId: string };
  assert.equal(m.moduleId, 'edge-agent');
  const mods = await ok(['device', 'list', 'cli-mod']) as { moduleId: string }[];
  assert.deepEqual(mods.map((x) => x.moduleId), ['edge-agent']);
  await ok(['device', 'delete', 'cli-mod', '--module', 'edge-agent']);
});

test('twin show and update (merge, replace, stale etag refused)', async () => {
  await ok(['device', 'create', 'cli-twin']);
  const t1 = await ok(['twin', 'update', 'cli-twin', '--tags', '{"site":"north"}', '--desired', '{"interval":10}']) as { tags: unknown; properties: { desired: { interval: number; $version: number } }; etag: string };
  assert.deepEqual(t1.tags, { site: 'north' });
  assert.equal(t1.properties.desired.interval, 10);
  const t2 = await ok(['twin', 'update', 'cli-twin', '--patch', '{"tags":{"floor":3}}', '--etag', t1.etag]) as { tags: unknown };
  assert.deepEqual(t2.tags, { site: 'north', floor: 3 });
  const stale = await corral(['twin', 'update', 'cli-twin', '--tags', '{"x":1}', '--etag', t1.etag, '--data', hub.dataDir]);
  assert.equal(stale.code, 1);
  assert.match(stale.stderr, /412: ErrorCode:PreconditionFailed/);
  const t3 = await ok(['twin', 'update', 'cli-twin', '--replace', '--tags', '{"replaced":true}']) as { tags: unknown; properties: { desired: Record<string, unknown> } };
  assert.deepEqual(t3.tags, { replaced: true });
  assert.equal(t3.properties.desired.interval, undefined);
  const shown = await ok(['twin', 'show', 'cli-twin']) as { deviceId: string; tags: unknown };
  assert.deepEqual(shown.tags, { replaced: true });
});

test('policy list and stats', async () => {
  const policies = await ok(['policy', 'list']) as { keyName: string; rights: string }[];
  assert.deepEqual(policies.map((p) => p.keyName).sort(), ['device', 'iothubowner', 'registryRead', 'registryReadWrite', 'service']);
  assert.equal(policies.find((p) => p.keyName === 'service')?.rights, 'ServiceConnect');
  const stats = await ok(['stats']) as Record<string, number>;
  assert.equal(typeof stats.totalDeviceCount, 'number');
  assert.equal(stats.connectedDeviceCount, 0);
  assert.equal(stats.enabledDeviceCount + stats.disabledDeviceCount, stats.totalDeviceCount);
});

test('CORRAL_CONNECTION_STRING reaches the hub without a data dir; a weaker policy is refused', async () => {
  const env = { NODE_EXTRA_CA_CERTS: hub.info.caFile, CORRAL_CONNECTION_STRING: hub.info.connectionStrings.registryRead };
  const r = await corral(['device', 'show', 'cli-1'], env);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).deviceId, 'cli-1');
  const denied = await corral(['device', 'create', 'cli-denied'], env);
  assert.equal(denied.code, 1);
  assert.match(denied.stderr, /401: ErrorCode:IotHubUnauthorizedAccess/);
  const none = await corral(['device', 'list'], { CORRAL_CONNECTION_STRING: '' });
  assert.equal(none.code, 1);
  assert.match(none.stderr, /no hub to talk to/);
});

test('export then import round-trips devices, modules, twins and keys', async () => {
  await ok(['twin', 'update', 'cli-1', '--tags', '{"exported":true}']);
  const file = join(work, 'registry.jsonl');
  await ok(['device', 'export', file, '--keys']);
  const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { id: string; tags: unknown; authentication: { symmetricKey: { primaryKey: string } } });
  const one = lines.find((l) => l.id === 'cli-1');
  assert.deepEqual(one?.tags, { exported: true });
  assert.ok(one?.authentication.symmetricKey.primaryKey);

  const second = await startHub({ address: '127.0.0.8' });
  try {
    const r = await corral(['device', 'import', file, '--data', second.dataDir]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { ok: true, lines: lines.length, upserted: lines.length, deleted: 0, errorCount: 0, errors: [] });
    const shown = JSON.parse((await corral(['device', 'show', 'cli-1', '--data', second.dataDir])).stdout) as { authentication: { symmetricKey: { primaryKey: string } }; status: string };
    assert.equal(shown.authentication.symmetricKey.primaryKey, one?.authentication.symmetricKey.primaryKey);
    assert.equal(shown.status, 'disabled');
    const twin = JSON.parse((await corral(['twin', 'show', 'cli-1', '--data', second.dataDir])).stdout) as { tags: unknown };
    assert.deepEqual(twin.tags, { exported: true });
  } finally {
    await disposeHub(second);
  }
});

test('an import with bad lines writes nothing and names each bad line', async () => {
  const file = join(work, 'bad.jsonl');
  writeFileSync(file, [
    JSON.stringify({ id: 'imp-good-1' }),
    '{"id": "imp-broken"',
    JSON.stringify({ id: 'bad+id' }),
    JSON.stringify({ id: 'imp-good-2', tags: { 'no.dots': 1 } }),
    JSON.stringify({ id: 'imp-good-1' }),
    JSON.stringify({ id: 'ghost', moduleId: 'm' }),
    '',
  ].join('\n'));
  const r = await corral(['device', 'import', file, '--data', hub.dataDir]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /import refused: 5 bad line\(s\); nothing was written/);
  const report = JSON.parse(r.stdout) as { ok: boolean; errors: { line: number; errorCode: string; message: string }[] };
  assert.equal(report.ok, false);
  assert.deepEqual(report.errors.map((e) => [e.line, e.errorCode]), [[2, 'ArgumentInvalid'], [3, 'ArgumentInvalid'], [4, 'ArgumentInvalid'], [5, 'ArgumentInvalid'], [6, 'DeviceNotFound']]);
  assert.match(report.errors[0].message, /not valid JSON/);
  assert.match(report.errors[3].message, /more than once/);
  const shown = await corral(['device', 'show', 'imp-good-1', '--data', hub.dataDir]);
  assert.equal(shown.code, 1, 'a good line of a refused import must not be written');
});

test('unknown verbs and flags give a clear error', async () => {
  const r = await corral(['device', 'frobnicate', '--data', hub.dataDir]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /unknown verb 'device frobnicate'/);
  const f = await corral(['device', 'list', '--bogus', '--data', hub.dataDir]);
  assert.equal(f.code, 1);
  assert.match(f.stderr, /Unknown option '--bogus'/);
});

test('query follows every page, index add/list/remove declares paths, job twin/show/list/cancel drive jobs v2', async () => {
  for (const id of ['cliq-1', 'cliq-2', 'cliq-3']) {
    await ok(['device', 'create', id]);
    await ok(['twin', 'update', id, '--tags', JSON.stringify({ ring: id === 'cliq-3' ? 'canary' : 'main' })]);
  }
  const rows = await ok(['query', "SELECT deviceId FROM devices WHERE STARTSWITH(deviceId, 'cliq-') ORDER BY deviceId", '--page-size', '1']) as { deviceId: string }[];
  assert.deepEqual(rows, [{ deviceId: 'cliq-1' }, { deviceId: 'cliq-2' }, { deviceId: 'cliq-3' }]);
  const bad = await corral(['query', 'SELECT * FROM devices WHERE', '--data', hub.dataDir]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /400: .*query error at position \d+/);

  assert.deepEqual(await ok(['index', 'add', 'tags.ring']), { path: 'tags.ring', created: true });
  assert.deepEqual(await ok(['index', 'add', 'tags.ring']), { path: 'tags.ring', created: false });
  assert.deepEqual((await ok(['index', 'list']) as { path: string }[]).map((i) => i.path), ['tags.ring']);
  const notIndexable = await corral(['index', 'add', 'deviceId', '--data', hub.dataDir]);
  assert.match(notIndexable.stderr, /cannot be indexed/);
  await ok(['index', 'remove', 'tags.ring']);
  assert.deepEqual(await ok(['index', 'list']), []);

  const job = await ok(['job', 'twin', 'cli-job', '--where', "tags.ring = 'canary'", '--patch', '{"properties":{"desired":{"fw":"2.0"}}}']) as { jobId: string; type: string };
  assert.equal(job.type, 'scheduleUpdateTwin');
  let shown: { status: string; deviceJobStatistics: { succeededCount: number } } | undefined;
  for (let i = 0; i < 100 && shown?.status !== 'completed'; i++) shown = await ok(['job', 'show', 'cli-job']) as typeof shown;
  assert.equal(shown?.status, 'completed');
  assert.equal(shown?.deviceJobStatistics.succeededCount, 1);
  assert.deepEqual((await ok(['job', 'list', '--type', 'scheduleUpdateTwin']) as { jobId: string }[]).map((j) => j.jobId), ['cli-job']);
  const later = await ok(['job', 'method', 'cli-later', '--where', "deviceId = 'cliq-1'", '--method', 'reboot', '--start-time', new Date(Date.now() + 3600_000).toISOString()]) as { status: string };
  assert.equal(later.status, 'scheduled');
  assert.equal((await ok(['job', 'cancel', 'cli-later']) as { status: string }).status, 'cancelled');
  const twin = await ok(['twin', 'show', 'cliq-3']) as { properties: { desired: { fw: string } } };
  assert.equal(twin.properties.desired.fw, '2.0');
});
