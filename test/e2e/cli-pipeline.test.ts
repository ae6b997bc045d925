import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { createDevice, Message, openDevice, type DeviceClient } from '../support/devices.js';
import { eventually } from '../support/eventually.js';
import { CORRAL_BIN, disposeHub, startHub, type RunningHub } from '../support/hub-process.js';
import { WebhookReceiver } from '../support/webhook.js';

// The telemetry pipeline's verbs of the CLI (route, endpoint, enrichment, events, group, device state) against a real
// hub, with a webhook receiver behind a certificate of its own CA (given to the hub by --ca-file).
const HOST = '127.0.0.22';
const SECRET = 'webhook-secret-1';
let hub: RunningHub;
let work: string;
let hook: WebhookReceiver;
let hookUrl: string;
let caFile: string;
/** The webhook's requests, each with its documents. */
const received = () => hook.accepted.map((r) => ({ ...r, body: JSON.parse(r.raw) as { deviceId: string; route: string; body: unknown; enrichments?: Record<string, string> }[] }));

before(async () => {
  hub = await startHub({ address: HOST });
  work = mkdtempSync(join(tmpdir(), 'corral-cli-pipeline-'));
  hook = await WebhookReceiver.start(HOST);
  caFile = hook.caFile;
  hookUrl = hook.url;
});
after(async () => {
  await hook.close();
  await disposeHub(hub);
  rmSync(work, { recursive: true, force: true });
});

function spawnCorral(args: string[]): ChildProcess {
  return spawn(process.execPath, [CORRAL_BIN, ...args, '--data', hub.dataDir], { cwd: work, stdio: ['ignore', 'pipe', 'pipe'] });
}

async function corral(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawnCorral(args);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => { stdout += c; });
  child.stderr!.on('data', (c: Buffer) => { stderr += c; });
  const [code] = await once(child, 'exit') as [number | null];
  return { code, stdout, stderr };
}

async function ok<T = unknown>(args: string[]): Promise<T> {
  const r = await corral(args);
  assert.equal(r.code, 0, `corral ${args.join(' ')}: ${r.stderr}`);
  const text = r.stdout.trim();
  return (text.startsWith('{') || text.startsWith('[') ? JSON.parse(text) : text) as T;
}

async function refused(args: string[], message: RegExp): Promise<void> {
  const r = await corral(args);
  assert.notEqual(r.code, 0, `corral ${args.join(' ')} should fail: ${r.stdout}`);
  assert.match(r.stderr, message);
}

async function withDevice(id: string, use: (client: DeviceClient) => Promise<void>): Promise<void> {
  const client = await openDevice(await createDevice(hub, id), 'mqtt');
  try {
    await use(client);
  } finally {
    await client.close();
  }
}

function send(client: DeviceClient, body: unknown, props: Record<string, string> = {}): Promise<unknown> {
  const m = new Message(JSON.stringify(body));
  for (const [k, v] of Object.entries(props)) m.properties.add(k, v);
  return client.sendEvent(m);
}

interface EventDoc { deviceId: string; source: string; body: unknown; sequenceNumber: number; partition: string }

test('endpoint add (webhook with --ca-file, --header, --secret), route add/list/test, delivery, health, remove', async () => {
  const ep = await ok<{ name: string; type: string; url: string; headers: Record<string, string> }>(
    ['endpoint', 'add', 'hook', '--type', 'webhook', '--url', hookUrl, '--header', 'x-team=blue', '--secret', SECRET, '--ca-file', caFile]);
  assert.equal(ep.name, 'hook');
  assert.equal(ep.type, 'webhook');
  // Header values (and the secret) are never shown back, not even to the policy that wrote them.
  assert.deepEqual(ep.headers, { 'x-team': '*****' });
  assert.equal((ep as unknown as { secret: string }).secret, '*****');
  assert.deepEqual((await ok<{ name: string }[]>(['endpoint', 'list'])).map((e) => e.name), ['hook']);
  assert.equal((await ok<{ url: string }>(['endpoint', 'show', 'hook'])).url, hookUrl);

  const route = await ok<{ name: string; source: string; condition: string; endpointNames: string[]; isEnabled: boolean }>(
    ['route', 'add', 'hot', '--source', 'telemetry', '--condition', '$body.temperature > 30', '--endpoint', 'hook']);
  assert.deepEqual([route.name, route.source, route.condition, route.endpointNames, route.isEnabled], ['hot', 'telemetry', '$body.temperature > 30', ['hook'], true]);
  await refused(['route', 'add', 'hot', '--endpoint', 'hook'], /409: .*exists already/);
  const table = await ok<string>(['route', 'list', '--output', 'table']);
  assert.match(table, /^name\s+source\s+condition\s+endpointNames\s+isEnabled/);
  assert.match(table, /\nhot\s+telemetry\s+\$body\.temperature > 30\s+\["hook"\]\s+true/);

  const hit = await ok<{ result: string; endpoint: string; document: { body: unknown; route: string; deviceId: string } }>(
    ['route', 'test', 'hot', '--body', '{"temperature":31}', '--device', 'no-such-device']);
  assert.equal(hit.result, 'true');
  assert.equal(hit.endpoint, 'hook');
  assert.deepEqual(hit.document.body, { temperature: 31 });
  assert.equal(hit.document.route, 'hot');
  assert.equal((await ok<{ result: string }>(['route', 'test', 'hot', '--body', '{"temperature":20}'])).result, 'false');
  const inline = ['route', 'test', '--condition', "level = 'high' AND $contentType = 'application/json'", '--body', 'not json'];
  assert.equal((await ok<{ result: string }>([...inline, '--app-property', 'level=high', '--system-property', 'contentType=application/json'])).result, 'true');
  assert.equal((await ok<{ result: string }>([...inline, '--app-property', 'level=low', '--system-property', 'contentType=application/json'])).result, 'false');
  const otherSource = await ok<{ result: string; reason: string }>(['route', 'test', '--source', 'TwinChangeEvents', '--condition', 'true', '--body', '{}']);
  assert.equal(otherSource.result, 'true', 'an IoT Hub source name is mapped for the sample too');

  await withDevice('pipe-hot', async (client) => {
    await send(client, { temperature: 20 });
    await send(client, { temperature: 35 });
    await eventually(async () => assert.ok(received().length >= 1, 'the webhook got a batch'), 20_000, 100);
  });
  const docs = received().flatMap((r) => r.body);
  assert.deepEqual(docs.map((d) => [d.deviceId, d.route, d.body]), [['pipe-hot', 'hot', { temperature: 35 }]]);
  const first = received()[0];
  assert.equal(first.headers['x-team'], 'blue');
  assert.equal(first.headers['x-corral-route'], 'hot');
  assert.equal(first.headers['x-corral-signature'], `sha256=${createHmac('sha256', SECRET).update(first.raw).digest('hex')}`);

  await eventually(async () => {
    const health = await ok<{ routes: { name: string; delivered: number }[]; endpoints: Record<string, { status: string; delivered: number }> }>(['route', 'health']);
    assert.equal(health.routes.find((r) => r.name === 'hot')?.delivered, 1);
    assert.equal(health.endpoints.hook.status, 'healthy');
  }, 10_000, 200);
  assert.match(await ok<string>(['route', 'health', '--output', 'table']), /\nhot\s+hook\s+true\s+1\s+\d+/);

  await refused(['endpoint', 'remove', 'hook'], /409: .*used by route 'hot'/);
  assert.deepEqual(await ok(['route', 'remove', 'hot']), { name: 'hot', removed: true });
  assert.deepEqual(await ok(['endpoint', 'remove', 'hook']), { name: 'hook', removed: true });
  assert.deepEqual(await ok(['route', 'list']), []);
  await refused(['route', 'show', 'hot'], /404/);
});

test('bad input is refused with a message naming it and a non-zero exit', async () => {
  await refused(['route', 'add', 'broken', '--endpoint', 'events', '--condition', '$body.temperature >'], /400: .*position \d+/);
  await refused(['route', 'test', '--condition', '$body.x = = 1'], /position \d+/);
  await refused(['route', 'add', 'nowhere', '--endpoint', 'ghost'], /no endpoint named 'ghost'/);
  await refused(['route', 'add', 'no-endpoint'], /route add needs --endpoint/);
  await refused(['route', 'test', 'some-route', '--condition', 'true'], /not both/);
  await refused(['endpoint', 'add', 'plain', '--type', 'webhook', '--url', 'http://example.com/'], /400: .*https/);
  await refused(['endpoint', 'add', 'mixed', '--type', 'nats', '--url', 'nats://127.0.0.1:4222', '--subject', 's', '--table', 't'], /--table is not for a nats endpoint/);
  await refused(['endpoint', 'add', 'untyped', '--url', 'https://example.com/'], /needs --type/);
  await refused(['endpoint', 'add', 'badjson', '--json', '{"type":'], /--json must be JSON/);
  await refused(['events', 'tail', '--checkpoint'], /needs --group/);
  await refused(['events', 'tail', '--group', 'no-such-group'], /404: .*no-such-group/);
  await refused(['events', 'tail', '--view', 'some'], /400: .*view must be all or events/);
  await refused(['events', 'read', '--group', 'g', '--start', 'earliest'], /--start is the group's own/);
  await refused(['events', 'read', '--limit', '0'], /400: .*limit must be an integer from 1 to 1000/);
  await refused(['group', 'create', 'g-bad', '--start', 'yesterday-ish'], /--start must be earliest, latest/);
  await refused(['route', 'frobnicate'], /unknown verb 'route frobnicate'/);
});

test('endpoint add --json takes a whole spec (retry policy too); enrichments reach the document route test shows', async () => {
  const spec = { type: 'postgres', url: 'postgres://corral:secret@127.0.0.1:1/none', table: 'telemetry', retry: { maxAttempts: 2 } };
  const ep = await ok<{ table: string; schema: string; retry: { maxAttempts: number } }>(['endpoint', 'add', 'pg', '--json', JSON.stringify(spec), '--schema', 'iot']);
  assert.deepEqual([ep.table, ep.schema, ep.retry.maxAttempts], ['telemetry', 'iot', 2]);
  const shown = await ok<string>(['endpoint', 'list', '--output', 'table']);
  assert.match(shown, /pg\s+postgres\s+postgres:\/\/corral:\*\*\*@127\.0\.0\.1:1\/none\s+iot\.telemetry/, 'a table masks the password');
  await ok(['enrichment', 'add', 'site', '--value', 'lyon', '--endpoint', 'pg']);
  await ok(['enrichment', 'add', 'hub', '--value', '$iothubname', '--endpoint', 'pg']);
  assert.deepEqual((await ok<{ name: string; value: string }[]>(['enrichment', 'list'])).map((e) => [e.name, e.value]), [['hub', '$iothubname'], ['site', 'lyon']]);
  await refused(['enrichment', 'add', 'bad', '--value', '$twin.nowhere', '--endpoint', 'pg'], /400: .*\$twin\.tags/);
  // A disabled route is still tried by `route test`, and sends nothing.
  await ok(['route', 'add', 'archive', '--endpoint', 'pg', '--disabled']);
  const t = await ok<{ result: string; document: { enrichments: Record<string, string> } }>(['route', 'test', 'archive', '--body', '{"v":1}']);
  assert.equal(t.result, 'true');
  assert.deepEqual(t.document.enrichments, { hub: HOST, site: 'lyon' }, "$iothubname is the hub's host name");
  await ok(['route', 'remove', 'archive']);
  await ok(['enrichment', 'remove', 'site']);
  await ok(['enrichment', 'remove', 'hub']);
  await ok(['endpoint', 'remove', 'pg']);
});

test('group create, events read from it, checkpoint, seek, show, remove', async () => {
  const group = await ok<{ name: string; view: string; sources: string[]; checkpoints: Record<string, number> }>(
    ['group', 'create', 'g1', '--start', 'latest', '--view', 'all', '--source', 'telemetry']);
  assert.deepEqual([group.name, group.view, group.sources], ['g1', 'all', ['telemetry']]);
  await withDevice('pipe-group', async (client) => {
    await send(client, { n: 1 });
    await send(client, { n: 2 });
  });
  let page: { events: EventDoc[]; next: string } = { events: [], next: '' };
  await eventually(async () => {
    page = await ok(['events', 'read', '--group', 'g1', '--device', 'pipe-group', '--limit', '10']);
    assert.equal(page.events.length, 2);
  }, 10_000, 100);
  assert.deepEqual(page.events.map((e) => [e.deviceId, e.source, e.body]), [['pipe-group', 'telemetry', { n: 1 }], ['pipe-group', 'telemetry', { n: 2 }]]);
  const again = await ok<{ events: EventDoc[] }>(['events', 'read', '--group', 'g1', '--device', 'pipe-group']);
  assert.equal(again.events.length, 2, 'a read does not move the checkpoints');
  await ok(['group', 'checkpoint', 'g1', '--position', page.next]);
  assert.deepEqual((await ok<{ events: EventDoc[] }>(['events', 'read', '--group', 'g1', '--device', 'pipe-group'])).events, []);
  const shown = await ok<{ checkpoints: Record<string, number>; lag: Record<string, { lag: number }> }>(['group', 'show', 'g1']);
  const last = page.events[1];
  // A read's position covers the records it filtered out too (the device's disconnection, say).
  assert.ok(shown.checkpoints[last.partition] >= last.sequenceNumber, `checkpoint ${shown.checkpoints[last.partition]} is past ${last.sequenceNumber}`);
  assert.equal(typeof shown.lag[last.partition].lag, 'number');

  await ok(['group', 'seek', 'g1', '--start', 'earliest']);
  const replay = await ok<{ events: EventDoc[]; next: string }>(['events', 'read', '--group', 'g1', '--device', 'pipe-group', '--limit', '1', '--checkpoint']);
  assert.deepEqual(replay.events.map((e) => e.body), [{ n: 1 }]);
  const rest = await ok<{ events: EventDoc[] }>(['events', 'read', '--group', 'g1', '--device', 'pipe-group']);
  assert.deepEqual(rest.events.map((e) => e.body), [{ n: 2 }], '--checkpoint stored the first read');

  const plain = await ok<{ events: EventDoc[] }>(['events', 'read', '--start', 'earliest', '--device', 'pipe-group', '--source', 'telemetry']);
  assert.deepEqual(plain.events.map((e) => e.body), [{ n: 1 }, { n: 2 }]);
  assert.deepEqual((await ok<{ name: string }[]>(['group', 'list'])).map((g) => g.name), ['g1']);
  await ok(['group', 'remove', 'g1']);
  await refused(['group', 'show', 'g1'], /404/);
});

/** A running CLI's stdout, line by line; `next` rejects when the process exits first (with its stderr). */
function linesOf(child: ChildProcess): { next(): Promise<string> } {
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => { stderr += c; });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  return {
    next: async () => {
      const r = await lines.next();
      if (r.done) throw new Error(`corral exited with ${String(child.exitCode)} before a line: ${stderr}`);
      return r.value;
    },
  };
}

test('events tail follows the stream and exits 0 on Ctrl-C; with --group --checkpoint it moves the checkpoints', async () => {
  const since = new Date(Date.now() - 1000).toISOString();
  await ok(['group', 'create', 'g-tail']);
  const tail = spawnCorral(['events', 'tail', '--device', 'pipe-tail', '--source', 'telemetry', '--start', since]);
  const grouped = spawnCorral(['events', 'tail', '--group', 'g-tail', '--device', 'pipe-tail', '--checkpoint', '--output', 'table']);
  try {
    const tailLines = linesOf(tail);
    const groupedLines = linesOf(grouped);
    // The group starts at the end of the log: the header says its stream is open before the device sends.
    assert.equal(await groupedLines.next(), 'time  device  source  body');
    await withDevice('pipe-tail', async (client) => { await send(client, { temperature: 22 }, { kind: 'reading' }); });
    const event = JSON.parse(await tailLines.next()) as EventDoc & { properties: Record<string, string>; systemProperties: Record<string, string> };
    assert.deepEqual([event.deviceId, event.source, event.body, event.properties.kind], ['pipe-tail', 'telemetry', { temperature: 22 }, 'reading']);
    assert.equal(event.systemProperties['iothub-connection-device-id'], 'pipe-tail');
    assert.match(await groupedLines.next(), /^\d{4}-\d\d-\d\dT\S+Z {2}pipe-tail {2}telemetry {2}\{"temperature":22\}$/);
    const exits = [once(tail, 'exit'), once(grouped, 'exit')];
    tail.kill('SIGINT');
    grouped.kill('SIGINT');
    assert.deepEqual(await Promise.all(exits), [[0, null], [0, null]], 'Ctrl-C ends a tail with exit code 0');
  } finally {
    tail.kill('SIGKILL');
    grouped.kill('SIGKILL');
  }
  const later = await ok<{ events: EventDoc[] }>(['events', 'read', '--group', 'g-tail', '--device', 'pipe-tail']);
  assert.deepEqual(later.events, [], "--checkpoint stored the tail's position");
  await ok(['group', 'remove', 'g-tail']);
});

test('device state and device telemetry show what the device sent', async () => {
  await withDevice('pipe-state', async (client) => {
    await send(client, { temperature: 30.5, humidity: 40 });
    await send(client, { temperature: 31 });
  });
  await eventually(async () => {
    const state = await ok<{ deviceId: string; telemetry: Record<string, unknown>; $metadata: Record<string, { $lastUpdated: string }>; lastSeenTime: string }>(['device', 'state', 'pipe-state']);
    assert.deepEqual(state.telemetry, { temperature: 31, humidity: 40 });
    assert.ok(state.$metadata.temperature.$lastUpdated);
    assert.ok(state.lastSeenTime);
  }, 10_000, 200);
  assert.match(await ok<string>(['device', 'state', 'pipe-state', '--output', 'table']), /\ntemperature\s+31\s+\d{4}-/);
  const recent = await ok<{ events: EventDoc[] }>(['device', 'telemetry', 'pipe-state', '--limit', '10']);
  assert.deepEqual(recent.events.map((e) => e.body), [{ temperature: 30.5, humidity: 40 }, { temperature: 31 }]);
  const none = await ok<{ events: EventDoc[] }>(['device', 'telemetry', 'pipe-state', '--from', '2000-01-01T00:00:00Z', '--to', '2000-01-02T00:00:00Z']);
  assert.deepEqual(none.events, []);
  await refused(['device', 'state', 'ghost-device'], /404/);
  await refused(['device', 'telemetry', 'pipe-state', '--from', 'soon'], /400: .*ISO 8601/);
});
