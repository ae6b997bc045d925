import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { connect, headers, type NatsConnection } from 'nats';
import { eventually } from '../../../../test/support/eventually.js';
import { natsUrl, requireNats, skipReason } from '../../../../test/support/services.js';
import { eventLogContract, eventRecord } from '../contract.js';
import { EventLogWriteFailed, InvalidEventRecord } from '../index.js';
import { JetStreamEventLog, type JetStreamEventLogOptions } from './index.js';

const url = await requireNats();
const skip = skipReason('NATS');
/** Keeps this run's streams and subjects apart from any other run on the same server. */
const run = randomBytes(4).toString('hex');
let made = 0;

/** A connection for the tests' own look at the streams, and to delete them. */
let admin: NatsConnection | undefined;
before(async () => {
  if (url !== undefined) admin = await connect({ servers: url, name: `corral-eventlog-test-${run}` });
});
after(async () => {
  if (admin === undefined) return;
  const jsm = await admin.jetstreamManager();
  for await (const name of jsm.streams.names()) {
    if (name.startsWith(`CORRAL_TEST_${run}_`)) await jsm.streams.delete(name).catch(() => undefined);
  }
  await admin.close();
});

/** Options for a fresh stream of this run. Only called once the probe found the server, so url is set. */
function freshStream(): JetStreamEventLogOptions & { stream: string; subjectPrefix: string } {
  assert.ok(url !== undefined);
  made++;
  return { natsUrl: url, stream: `CORRAL_TEST_${run}_${made}`, subjectPrefix: `corral-test.${run}.${made}` };
}

async function deleteStream(name: string): Promise<void> {
  assert.ok(admin !== undefined);
  const jsm = await admin.jetstreamManager();
  await jsm.streams.delete(name).catch(() => undefined);
}

describe('contract', () => {
  eventLogContract({
    test,
    skip,
    make: async () => {
      const opts = freshStream();
      const log = await JetStreamEventLog.open(opts);
      return { log, reopen: () => JetStreamEventLog.open(opts), dispose: () => deleteStream(opts.stream) };
    },
  });
});

/** Runs `body` on a fresh log, closing it and deleting its stream afterwards. */
async function withLog(extra: Partial<JetStreamEventLogOptions>,
  body: (log: JetStreamEventLog, opts: ReturnType<typeof freshStream>) => Promise<void>): Promise<void> {
  const opts = { ...freshStream(), ...extra };
  let log: JetStreamEventLog | undefined;
  try {
    log = await JetStreamEventLog.open(opts);
    await body(log, opts);
  } finally {
    await log?.close();
    await deleteStream(opts.stream);
  }
}

test('concurrent appends share commits: 1000 callers in one tick take a handful of commits', { skip }, async () => {
  await withLog({}, async (log) => {
    await Promise.all(Array.from({ length: 1000 }, (_, n) => log.append([eventRecord(`d${n % 10}`, n)])));
    assert.equal(log.stats.records, 1000);
    assert.ok(log.stats.commits <= 2, `${log.stats.commits} commits`);
  });
});

test('maxBatchRecords bounds a commit but never splits one append', { skip }, async () => {
  await withLog({ maxBatchRecords: 100 }, async (log) => {
    await Promise.all(Array.from({ length: 1000 }, (_, n) => log.append([eventRecord('d1', n)])));
    assert.equal(log.stats.largestBatch, 100);
    const seqs = await log.append(Array.from({ length: 250 }, (_, n) => eventRecord('d2', n)));
    assert.equal(log.stats.largestBatch, 250);
    assert.equal(seqs[249] - seqs[0], 249);
  });
});

test('the stream is created with file storage, the retention options and the record subjects', { skip }, async () => {
  await withLog({ maxAgeMs: 3_600_000, maxBytes: 1 << 30 }, async (log, opts) => {
    assert.ok(admin !== undefined);
    const { config } = await (await admin.jetstreamManager()).streams.info(opts.stream);
    assert.equal(config.storage, 'file');
    assert.equal(config.retention, 'limits');
    assert.equal(config.discard, 'old');
    assert.equal(config.max_age, 3_600_000 * 1e6);
    assert.equal(config.max_bytes, 1 << 30);
    assert.deepEqual(config.subjects, [`${opts.subjectPrefix}.*.*.*`]);
    const [seq] = await log.append([eventRecord('dev.with*odd>chars', 1, { moduleId: 'm 1' })]);
    const msg = await (await admin.jetstreamManager()).streams.getMessage(opts.stream, { seq });
    assert.equal(msg.subject, `${opts.subjectPrefix}.telemetry.dev_2Ewith_2Aodd_3Echars.m_201`);
  });
});

test('reopening with other retention options updates the stream and keeps every record', { skip }, async () => {
  await withLog({}, async (log, opts) => {
    const seqs = await log.append([eventRecord('d1', 1), eventRecord('d2', 2)]);
    await log.close();
    const again = await JetStreamEventLog.open({ ...opts, maxAgeMs: 60_000 });
    try {
      assert.ok(admin !== undefined);
      const { config } = await (await admin.jetstreamManager()).streams.info(opts.stream);
      assert.equal(config.max_age, 60_000 * 1e6);
      assert.deepEqual((await again.read({ after: 0, limit: 10 })).map((e) => e.sequence), seqs);
    } finally {
      await again.close();
    }
  });
});

test('open refuses a stream that holds other subjects, naming it', { skip }, async () => {
  await withLog({}, async (_log, opts) => {
    await assert.rejects(JetStreamEventLog.open({ ...opts, subjectPrefix: `${opts.subjectPrefix}-other` }),
      new RegExp(`stream '${opts.stream}' exists with subjects`));
  });
});

test('a record over the server\'s message size rejects only its own append', { skip }, async () => {
  await withLog({}, async (log) => {
    assert.ok(admin !== undefined);
    const huge = eventRecord('d1', 2, { body: new Uint8Array(admin.info?.max_payload ?? 1 << 20) });
    const results = await Promise.allSettled([
      log.append([eventRecord('d1', 1)]), log.append([huge]), log.append([eventRecord('d1', 3)]),
    ]);
    assert.ok(results[1].status === 'rejected' && results[1].reason instanceof InvalidEventRecord, 'InvalidEventRecord');
    assert.match(String((results[1] as PromiseRejectedResult).reason), /over the server's limit/);
    assert.deepEqual((await log.read({ after: 0, limit: 10 })).map((e) => e.properties.n), ['1', '3']);
  });
});

test('a commit the server refuses midway rejects every append of its batch and leaves none of it', { skip }, async () => {
  await withLog({}, async (log, opts) => {
    assert.ok(admin !== undefined);
    const jsm = await admin.jetstreamManager();
    const [before] = await log.append([eventRecord('d1', 0)]);
    const { config } = await jsm.streams.info(opts.stream);
    await jsm.streams.update(opts.stream, { ...config, max_msg_size: 4096 });
    const big = eventRecord('d1', 2, { body: new Uint8Array(8192) });
    const batch = await Promise.allSettled([
      log.append([eventRecord('d1', 1)]), log.append([big, eventRecord('d1', 3)]), log.append([eventRecord('d1', 4)]),
    ]);
    for (const r of batch) assert.ok(r.status === 'rejected' && r.reason instanceof EventLogWriteFailed, String(r.status));
    assert.equal(log.stats.failedCommits, 1);
    assert.equal(await log.lastSequence(), before);
    assert.deepEqual((await log.read({ after: 0, limit: 10 })).map((e) => e.sequence), [before]);
    const { state } = await jsm.streams.info(opts.stream);
    assert.equal(state.last_seq, before + 1, 'the first record of the failed commit was stored');
    assert.equal(state.messages, 1, 'and then deleted');
    await jsm.streams.update(opts.stream, { ...config, max_msg_size: -1 });
    const [next] = await log.append([eventRecord('d1', 5)]);
    assert.ok(next > before);
    assert.deepEqual((await log.read({ after: 0, limit: 10 })).map((e) => e.sequence), [before, next]);
    await log.close();
    const again = await JetStreamEventLog.open(opts);
    try {
      assert.equal(await again.lastSequence(), next);
      assert.equal(await again.trim({ maxRecords: 1, nowMs: 0 }), 1, 'the gap left by the deletion is not counted');
      assert.deepEqual((await again.read({ after: 0, limit: 10 })).map((e) => e.sequence), [next]);
    } finally {
      await again.close();
    }
  });
});

test('open deletes an incomplete commit a stopped writer left at the tail', { skip }, async () => {
  await withLog({}, async (log, opts) => {
    assert.ok(admin !== undefined);
    const seqs = await log.append([eventRecord('d1', 1), eventRecord('d2', 2)]);
    await log.close();
    // What a writer that stopped after two of a commit's four records leaves behind.
    const js = admin.jetstream();
    const last = seqs[1];
    for (let i = 0; i < 2; i++) {
      const h = headers();
      h.set('Corral-Time', '1');
      h.set('Corral-Batch', `${last + 1}-${last + 4}/deadbeef`);
      await js.publish(`${opts.subjectPrefix}.telemetry.d1._`, new Uint8Array(1), { headers: h, expect: { lastSequence: last + i } });
    }
    const again = await JetStreamEventLog.open(opts);
    try {
      assert.equal(await again.lastSequence(), last);
      assert.deepEqual((await again.read({ after: 0, limit: 10 })).map((e) => e.sequence), seqs);
      const [next] = await again.append([eventRecord('d3', 3)]);
      assert.equal(next, last + 3, 'the deleted sequences are not reused');
      assert.deepEqual((await again.read({ after: 0, limit: 10 })).map((e) => e.sequence), [...seqs, next]);
    } finally {
      await again.close();
    }
  });
});

test('seekTime skips a deleted sequence and ignores a commit in flight at the tail', { skip }, async () => {
  await withLog({}, async (log, opts) => {
    assert.ok(admin !== undefined);
    const t0 = Date.UTC(2026, 0, 1);
    const seqs = await log.append(Array.from({ length: 10 }, (_, n) => eventRecord('d1', n, { enqueuedTimeMs: t0 + n * 10 })));
    await (await admin.jetstreamManager()).streams.deleteMessage(opts.stream, seqs[4], false);
    const firstAfter = async (t: number): Promise<number | undefined> =>
      (await log.read({ after: await log.seekTime(t), limit: 1 }))[0]?.sequence;
    assert.equal(await firstAfter(t0 + 35), seqs[5]);
    assert.equal(await firstAfter(t0 + 40), seqs[5]);
    assert.equal(await log.seekTime(t0 + 50), seqs[3], 'the last record before, not the deleted sequence');
    assert.equal(await log.seekTime(t0 + 30), seqs[2]);
    // A newer record stored by no commit of this writer is past the committed end, so not found.
    const h = headers();
    h.set('Corral-Time', String(t0 + 500));
    h.set('Corral-Batch', `${seqs[9] + 1}-${seqs[9] + 2}/deadbeef`);
    await admin.jetstream().publish(`${opts.subjectPrefix}.telemetry.d1._`, new Uint8Array(1), { headers: h });
    assert.equal(await log.seekTime(t0 + 400), seqs[9]);
  });
});

test('another writer on the stream makes commits fail, naming it, and its records are not deleted', { skip }, async () => {
  await withLog({}, async (log, opts) => {
    assert.ok(admin !== undefined);
    await log.append([eventRecord('d1', 1)]);
    const other = await JetStreamEventLog.open(opts);
    try {
      const [theirs] = await other.append([eventRecord('d2', 2)]);
      await assert.rejects(log.append([eventRecord('d1', 3)]), EventLogWriteFailed);
      await assert.rejects(log.append([eventRecord('d1', 4)]), (err: unknown) => {
        assert.ok(err instanceof EventLogWriteFailed);
        assert.match(String((err.cause as Error).message), /another writer/);
        return true;
      });
      assert.equal((await other.read({ after: 0, limit: 10 })).at(-1)?.sequence, theirs);
    } finally {
      await other.close();
    }
  });
});

/** A TCP relay to the NATS server that can hold what clients send (their acks then never come) and let it go later. */
class HoldingRelay {
  private readonly held = new Set<Socket>();
  private readonly clients = new Set<{ client: Socket; upstream: Socket }>();
  private constructor(private readonly server: Server, readonly url: string) {}

  static async start(): Promise<HoldingRelay> {
    const target = new URL(natsUrl());
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    assert.ok(address !== null && typeof address === 'object');
    const relay = new HoldingRelay(server, `nats://127.0.0.1:${address.port}`);
    server.on('connection', (client) => {
      const upstream = tcpConnect(Number(target.port || 4222), target.hostname);
      const pair = { client, upstream };
      relay.clients.add(pair);
      for (const [a, b] of [[client, upstream], [upstream, client]]) {
        a.on('error', () => b.destroy());
        a.on('close', () => { relay.clients.delete(pair); b.destroy(); });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    return relay;
  }

  /** From now on what clients send waits in the relay. */
  hold(): void {
    for (const { client, upstream } of this.clients) client.unpipe(upstream);
  }

  /** Sends on what was held, and everything after it. */
  release(): void {
    for (const { client, upstream } of this.clients) client.pipe(upstream);
  }

  async stop(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const { client } of this.clients) client.destroy();
    await closed;
  }
}

test('records of a timed-out commit that reach the stream late are never read and are deleted by the next commit', { skip }, async () => {
  const relay = await HoldingRelay.start();
  const opts = freshStream();
  const nc = await connect({ servers: relay.url });
  let log: JetStreamEventLog | undefined;
  try {
    assert.ok(admin !== undefined);
    const jsm = await admin.jetstreamManager();
    log = await JetStreamEventLog.open({ connection: nc, stream: opts.stream, subjectPrefix: opts.subjectPrefix, commitTimeoutMs: 300 });
    const [first] = await log.append([eventRecord('d1', 1)]);
    relay.hold();
    await assert.rejects(log.append([eventRecord('d1', 2), eventRecord('d1', 3)]), EventLogWriteFailed);
    relay.release();
    await eventually(async () => assert.equal((await jsm.streams.info(opts.stream)).state.last_seq, first + 2));
    assert.deepEqual((await log.read({ after: 0, limit: 10 })).map((e) => e.properties.n), ['1']);
    assert.equal(await log.lastSequence(), first);
    const [next] = await log.append([eventRecord('d1', 4)]);
    assert.equal(next, first + 3);
    assert.deepEqual((await log.read({ after: 0, limit: 10 })).map((e) => e.properties.n), ['1', '4']);
    assert.equal((await jsm.streams.info(opts.stream)).state.messages, 2);
  } finally {
    await log?.close();
    await nc.close();
    await relay.stop();
    await deleteStream(opts.stream);
  }
});

test('open rejects bad options with RangeError', async () => {
  await assert.rejects(JetStreamEventLog.open({ subjectPrefix: 'a' }), RangeError);
  await assert.rejects(JetStreamEventLog.open({ natsUrl: 'nats://127.0.0.1:1', subjectPrefix: 'a.*' }), /subjectPrefix/);
  await assert.rejects(JetStreamEventLog.open({ natsUrl: 'nats://127.0.0.1:1', subjectPrefix: 'a', stream: 'a.b' }), /stream/);
  await assert.rejects(JetStreamEventLog.open({ natsUrl: 'nats://127.0.0.1:1', subjectPrefix: 'a', maxAgeMs: 10 }), /maxAgeMs/);
});

test('open against an unreachable server rejects without the password in the message', async () => {
  await assert.rejects(JetStreamEventLog.open({ natsUrl: 'nats://corral:s3cret@127.0.0.1:1', subjectPrefix: 'a' }), (err: unknown) => {
    assert.ok(err instanceof Error);
    assert.doesNotMatch(err.message, /s3cret/);
    assert.match(err.message, /cannot connect to NATS/);
    return true;
  });
});
