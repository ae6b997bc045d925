import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { connect, headers, type NatsConnection } from 'nats';
import { requireNats, skipReason } from '../../../../test/support/services.js';
import { eventRecord } from '../contract.js';
import { EventLogClosed, UnknownPartition } from '../index.js';
import { JetStreamEventLogSet, partitionOf, type JetStreamEventLogSetOptions } from './index.js';

const url = await requireNats();
const skip = skipReason('NATS');
/** Keeps this run's streams and subjects apart from any other run on the same server. */
const run = randomBytes(4).toString('hex');
let made = 0;

/** A connection for the tests' own look at the streams, and to delete them. */
let admin: NatsConnection | undefined;
before(async () => {
  if (url !== undefined) admin = await connect({ servers: url, name: `corral-eventlog-set-test-${run}` });
});
after(async () => {
  if (admin === undefined) return;
  const jsm = await admin.jetstreamManager();
  for await (const name of jsm.streams.names()) {
    if (name.startsWith(`CORRAL_SETTEST_${run}_`)) await jsm.streams.delete(name).catch(() => undefined);
  }
  await admin.close();
});

/** Naming for a fresh cluster of this run; only called once the probe found the server, so url is set. */
function freshCluster(): Required<Pick<JetStreamEventLogSetOptions, 'natsUrl' | 'streamPrefix' | 'subjectPrefix'>> {
  assert.ok(url !== undefined);
  made++;
  return { natsUrl: url, streamPrefix: `CORRAL_SETTEST_${run}_${made}`, subjectPrefix: `corral-settest.${run}.${made}` };
}

const T0 = Date.UTC(2026, 0, 1);

test('a node id becomes a partition name of [A-Za-z0-9_-], the same for the same id and different for different ones', () => {
  assert.equal(partitionOf('node-1'), 'node-1');
  assert.equal(partitionOf('host:4242'), 'host_3A4242');
  assert.notEqual(partitionOf('a.b'), partitionOf('a_b'));
  assert.match(partitionOf('ünï cødé/✓'), /^[A-Za-z0-9_-]+$/);
  assert.throws(() => partitionOf(''), RangeError);
});

test('two nodes each append to their own partition, list both, and read and seek the other\'s', { skip }, async () => {
  const cluster = freshCluster();
  const a = await JetStreamEventLogSet.open({ ...cluster, nodeId: 'node-a' });
  const b = await JetStreamEventLogSet.open({ ...cluster, nodeId: 'node-b', maxAgeMs: 3_600_000 });
  try {
    assert.equal(a.localPartition, 'node-a');
    const fromA = await a.local.append([eventRecord('da', 1, { enqueuedTimeMs: T0 + 10 })]);
    const fromB = await b.local.append([10, 20, 30].map((t, n) => eventRecord(`db${n}`, n, { enqueuedTimeMs: T0 + t })));
    assert.deepEqual(await a.partitions(), ['node-a', 'node-b']);
    assert.deepEqual(await b.partitions(), ['node-a', 'node-b']);
    assert.equal(a.reader('node-a'), a.local);
    const bAtA = a.reader('node-b');
    assert.equal(a.reader('node-b'), bAtA, 'the same reader for the same name');
    assert.deepEqual((await bAtA.read({ after: 0, limit: 10 })).map((e) => e.deviceId), ['db0', 'db1', 'db2']);
    assert.deepEqual((await bAtA.read({ after: 0, limit: 10, deviceId: 'db1' })).map((e) => e.sequence), [fromB[1]]);
    assert.deepEqual((await b.reader('node-a').read({ after: 0, limit: 10 })).map((e) => e.sequence), fromA);
    assert.equal(await bAtA.lastSequence(), fromB[2]);
    assert.equal(await bAtA.seekTime(T0 + 20), fromB[0]);
    assert.equal(await bAtA.seekTime(T0), 0);
    assert.equal(await bAtA.seekTime(T0 + 31), fromB[2]);
    const [later] = await b.local.append([eventRecord('db3', 3, { enqueuedTimeMs: T0 + 40 })]);
    assert.equal(await bAtA.lastSequence(), later, 'a reader follows the writer');
    assert.ok(admin !== undefined);
    const { config } = await (await admin.jetstreamManager()).streams.info(`${cluster.streamPrefix}_node-b`);
    assert.equal(config.max_age, 3_600_000 * 1e6, 'node-a\'s reader left node-b\'s stream as node-b made it');
    assert.deepEqual(config.subjects, [`${cluster.subjectPrefix}.node-b.*.*.*`]);
  } finally {
    await a.close();
    await b.close();
  }
});

test('a reader stops before a commit that is not complete', { skip }, async () => {
  const cluster = freshCluster();
  const a = await JetStreamEventLogSet.open({ ...cluster, nodeId: 'node-a' });
  const b = await JetStreamEventLogSet.open({ ...cluster, nodeId: 'node-b' });
  try {
    const [committed] = await b.local.append([eventRecord('d1', 1, { enqueuedTimeMs: T0 })]);
    assert.ok(admin !== undefined);
    // What node-b's stream holds midway through a commit of two records.
    const h = headers();
    h.set('Corral-Time', String(T0 + 100));
    h.set('Corral-Batch', `${committed + 1}-${committed + 2}/deadbeef`);
    await admin.jetstream().publish(`${cluster.subjectPrefix}.node-b.telemetry.d1._`, new Uint8Array(1), { headers: h });
    const reader = a.reader('node-b');
    assert.equal(await reader.lastSequence(), committed);
    assert.deepEqual((await reader.read({ after: 0, limit: 10 })).map((e) => e.sequence), [committed]);
    assert.equal(await reader.seekTime(T0 + 50), committed);
  } finally {
    await a.close();
    await b.close();
  }
});

test('a partition without a stream, a malformed name, and another cluster\'s stream are unknown partitions', { skip }, async () => {
  const cluster = freshCluster();
  const a = await JetStreamEventLogSet.open({ ...cluster, nodeId: 'node-a' });
  // Another cluster whose prefix extends this one's: its stream name starts with ours, but it is not ours.
  const other = await JetStreamEventLogSet.open({ ...cluster, streamPrefix: `${cluster.streamPrefix}_x`, subjectPrefix: `${cluster.subjectPrefix}.x`, nodeId: 'n' });
  try {
    assert.deepEqual(await a.partitions(), ['node-a']);
    await assert.rejects(a.reader('nobody').read({ after: 0, limit: 1 }), (err: unknown) =>
      err instanceof UnknownPartition && /'nobody'.*does not exist/.test(err.message));
    assert.ok(admin !== undefined);
    const jsm = await admin.jetstreamManager();
    await assert.rejects(jsm.streams.info(`${cluster.streamPrefix}_nobody`), /stream not found/, 'the reader created no stream');
    assert.throws(() => a.reader('a.b'), UnknownPartition);
    await assert.rejects(a.reader('x_n').lastSequence(), (err: unknown) => err instanceof UnknownPartition && /is not its stream/.test(err.message));
  } finally {
    await a.close();
    await other.close();
  }
});

test('close closes the readers and the local log, and leaves a connection the caller gave open', { skip }, async () => {
  const cluster = freshCluster();
  const nc = await connect({ servers: cluster.natsUrl });
  try {
    const { natsUrl: _natsUrl, ...naming } = cluster;
    const a = await JetStreamEventLogSet.open({ ...naming, connection: nc, nodeId: 'node-a' });
    const b = await JetStreamEventLogSet.open({ ...naming, connection: nc, nodeId: 'node-b' });
    const reader = a.reader('node-b');
    await b.local.append([eventRecord('d1', 1)]);
    assert.equal((await reader.read({ after: 0, limit: 10 })).length, 1);
    await a.close();
    await a.close();
    await assert.rejects(reader.read({ after: 0, limit: 1 }), EventLogClosed);
    await assert.rejects(a.local.append([eventRecord('d1', 2)]), EventLogClosed);
    assert.throws(() => a.reader('node-b'), EventLogClosed);
    assert.equal(nc.isClosed(), false);
    await b.close();
  } finally {
    await nc.close();
  }
});

test('open rejects bad options with RangeError', async () => {
  await assert.rejects(JetStreamEventLogSet.open({ nodeId: 'n' }), RangeError);
  await assert.rejects(JetStreamEventLogSet.open({ natsUrl: 'nats://127.0.0.1:1', nodeId: '' }), /nodeId/);
  await assert.rejects(JetStreamEventLogSet.open({ natsUrl: 'nats://127.0.0.1:1', nodeId: 'n', streamPrefix: 'a.b' }), /streamPrefix/);
});
