import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { connect, type Msg, type NatsConnection } from 'nats';
import { requireNats, skipReason } from '../../../test/support/services.js';
import { EndpointFailed, openEndpoint, type EndpointBatch, type EndpointMessage } from './index.js';
import { NatsEndpoint, subjectFor } from './nats.js';

const url = await requireNats();
const skip = skipReason('NATS');
/** Keeps this run's subjects and streams apart from any other run on the same server. */
const run = randomBytes(4).toString('hex');
const prefix = `corral-test.${run}`;
const stream = `CORRAL_TEST_ENDPOINT_${run}`;

/** The tests' own connection: subscribers, and the stream's creation and deletion. */
let admin: NatsConnection | undefined;
before(async () => {
  if (url === undefined) return;
  admin = await connect({ servers: url, name: `corral-endpoint-test-${run}` });
  const jsm = await admin.jetstreamManager();
  await jsm.streams.add({ name: stream, subjects: [`${prefix}.js.>`] });
});
after(async () => {
  if (admin === undefined) return;
  const jsm = await admin.jetstreamManager();
  await jsm.streams.delete(stream).catch(() => undefined);
  await admin.close();
});

/** Only called once the probe found the server, so it is set. */
function server(): { url: string; admin: NatsConnection } {
  assert.ok(url !== undefined && admin !== undefined);
  return { url, admin };
}

function message(sequence: number, deviceId = 'dev-1', moduleId = ''): EndpointMessage {
  return { partition: 'p2', sequence, deviceId, moduleId, source: 'telemetry', enqueuedTimeMs: 1_700_000_000_000, json: JSON.stringify({ sequence, deviceId }) };
}

async function failure(work: Promise<unknown>): Promise<EndpointFailed> {
  const err = await work.then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof EndpointFailed, `expected EndpointFailed, got ${String(err)}`);
  return err;
}

test('{deviceId} in the subject becomes the device id with ., space, * and > replaced by _', () => {
  assert.equal(subjectFor('a.{deviceId}.b', 'dev.1 *>x'), 'a.dev_1___x.b');
  assert.equal(subjectFor('a.{deviceId}', ''), 'a._');
  assert.equal(subjectFor('a.b', 'dev.1'), 'a.b');
  assert.equal(subjectFor('t.{deviceId}.{deviceId}', 'd'), 't.d.d');
});

test('core NATS: each record is published on its subject with the corral headers', { skip }, async () => {
  const { url, admin } = server();
  const sub = admin.subscribe(`${prefix}.plain.>`, { max: 3 });
  await admin.flush();
  const endpoint = openEndpoint('bus', { type: 'nats', url, subject: `${prefix}.plain.{deviceId}.events` });
  try {
    const batch: EndpointBatch = { route: 'all', messages: [message(10, 'dev.a'), message(11, 'dev-b', 'mod-1'), message(12, 'dev.a')] };
    await endpoint.deliver(batch);
    const got: Msg[] = [];
    for await (const m of sub) got.push(m);
    assert.deepEqual(got.map((m) => m.subject), [`${prefix}.plain.dev_a.events`, `${prefix}.plain.dev-b.events`, `${prefix}.plain.dev_a.events`]);
    assert.deepEqual(got.map((m) => m.string()), batch.messages.map((m) => m.json));
    const h = got[1].headers;
    assert.ok(h !== undefined);
    assert.equal(h.get('corral-partition'), 'p2');
    assert.equal(h.get('corral-sequence'), '11');
    assert.equal(h.get('corral-device-id'), 'dev-b');
    assert.equal(h.get('corral-module-id'), 'mod-1');
    assert.equal(h.get('corral-source'), 'telemetry');
    assert.equal(h.get('corral-route'), 'all');
  } finally {
    await endpoint.close();
  }
});

test('JetStream: every record is stored once, with Nats-Msg-Id partition:sequence; a redelivery is dropped', { skip }, async () => {
  const { url, admin } = server();
  const jsm = await admin.jetstreamManager();
  const endpoint = openEndpoint('stream', { type: 'nats', url, subject: `${prefix}.js.{deviceId}`, jetstream: true });
  try {
    const before = (await jsm.streams.info(stream)).state.messages;
    const batch: EndpointBatch = { route: 'archive', messages: [message(1), message(2), message(3, 'dev-2')] };
    await endpoint.deliver(batch);
    await endpoint.deliver(batch);
    await endpoint.deliver({ route: 'archive', messages: [message(3, 'dev-2'), message(4)] });
    const { state } = await jsm.streams.info(stream);
    assert.equal(state.messages - before, 4);
    const last = await jsm.streams.getMessage(stream, { seq: state.last_seq });
    assert.equal(last.subject, `${prefix}.js.dev-1`);
    assert.equal(last.header.get('Nats-Msg-Id'), 'p2:4');
    assert.equal(last.header.get('corral-route'), 'archive');
    assert.deepEqual(last.json(), { sequence: 4, deviceId: 'dev-1' });
  } finally {
    await endpoint.close();
  }
});

test('JetStream with no stream on the subject fails, not retryable, naming the subject', { skip }, async () => {
  const { url } = server();
  const subject = `${prefix}.nostream.{deviceId}`;
  const endpoint = openEndpoint('stream', { type: 'nats', url, subject, jetstream: true });
  try {
    const err = await failure(endpoint.deliver({ route: 'r', messages: [message(1)] }));
    assert.equal(err.retryable, false);
    assert.ok(err.message.includes(subject), err.message);
  } finally {
    await endpoint.close();
  }
});

test('JetStream acks that never come are a retryable timeout', { skip }, async () => {
  const { url, admin } = server();
  // A plain subscriber that never answers: the publish has a responder, so it waits for an ack until it times out.
  const silent = admin.subscribe(`${prefix}.silent.>`);
  await admin.flush();
  const endpoint = new NatsEndpoint('stream', { type: 'nats', url, subject: `${prefix}.silent.x`, jetstream: true }, { timeoutMs: 300 });
  try {
    const err = await failure(endpoint.deliver({ route: 'r', messages: [message(1)] }));
    assert.equal(err.retryable, true);
  } finally {
    silent.unsubscribe();
    await endpoint.close();
  }
});

test('an unreachable server is a retryable failure without the password in the message', async () => {
  const endpoint = openEndpoint('bus', { type: 'nats', url: 'nats://corral:s3cret@127.0.0.1:1', subject: 'a.b' });
  try {
    const err = await failure(endpoint.deliver({ route: 'r', messages: [message(1)] }));
    assert.equal(err.retryable, true);
    assert.doesNotMatch(err.message, /s3cret/);
  } finally {
    await endpoint.close();
  }
});

test('a delivery after close fails', { skip }, async () => {
  const { url } = server();
  const endpoint = openEndpoint('bus', { type: 'nats', url, subject: `${prefix}.closed` });
  await endpoint.deliver({ route: 'r', messages: [message(1)] });
  await endpoint.close();
  await failure(endpoint.deliver({ route: 'r', messages: [message(2)] }));
});
