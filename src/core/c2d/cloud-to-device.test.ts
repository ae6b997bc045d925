import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { Registry, parseIdentitySpec } from '../identity/index.js';
import { InProcessBus } from '../../ports/bus/in-process/index.js';
import { ManualClock } from '../../ports/clock/index.js';
import { AesGcmKeyRing } from '../../ports/keyring/index.js';
import type { IdentityKey } from '../../ports/store/index.js';
import { SqliteStore } from '../../ports/store/sqlite/index.js';
import { CloudToDevice, IOT_HUB_C2D_LIMITS, c2dSubject, startC2dSweeper, type C2dLimits, type OutgoingMessage } from './index.js';
import { rejectsWith } from '../../../test/support/assertions.js';

const D1: IdentityKey = { deviceId: 'd1', moduleId: '' };
const M1: IdentityKey = { deviceId: 'd1', moduleId: 'm1' };
const SECOND = 1000;
const HOUR = 3600 * SECOND;

const text = (s: string): OutgoingMessage => ({ body: new Uint8Array(Buffer.from(s)) });
const bodyText = (b: Uint8Array | undefined): string => Buffer.from(b ?? new Uint8Array()).toString('utf8');

async function setup(t: TestContext, limits: Partial<C2dLimits> = {}, file = ':memory:') {
  const store = SqliteStore.open(file);
  await store.migrate();
  t.after(() => store.close());
  const clock = new ManualClock();
  const bus = new InProcessBus();
  t.after(() => bus.close());
  const registry = new Registry({ store, keyring: new AesGcmKeyRing(randomBytes(32)), clock });
  const c2d = new CloudToDevice({ store, clock, bus, limits: { ...IOT_HUB_C2D_LIMITS, ...limits } });
  return { store, clock, bus, registry, c2d };
}

async function withDevices(registry: Registry, ...keys: IdentityKey[]): Promise<void> {
  for (const k of keys) await registry.create(k, parseIdentitySpec({}));
}

test('send queues a message that receive hands out locked, with its properties, and publishes a wake-up', async (t) => {
  const { c2d, registry, bus, clock } = await setup(t);
  await withDevices(registry, D1, M1);
  const woken = new Promise<string>((resolve) => {
    void bus.subscribe(c2dSubject('d1', ''), (data) => resolve(Buffer.from(data).toString('utf8')));
  });
  await new Promise((r) => setImmediate(r));
  const { messageId } = await c2d.send(D1, {
    body: new Uint8Array([1, 2, 3]), messageId: 'mid-1', correlationId: 'cid', userId: 'svc', ack: 'full',
    contentType: 'application/octet-stream', contentEncoding: 'binary', properties: { color: 'red' },
  });
  assert.equal(messageId, 'mid-1');
  assert.equal(await woken, 'mid-1');
  const m = await c2d.receive(D1);
  assert.ok(m);
  assert.deepEqual({ ...m, lockToken: undefined }, {
    lockToken: undefined, messageId: 'mid-1', to: '/devices/d1/messages/deviceBound', correlationId: 'cid', userId: 'svc',
    ack: 'full', contentType: 'application/octet-stream', contentEncoding: 'binary',
    enqueuedTimeUtc: new Date(clock.now()).toISOString(), expiryTimeUtc: new Date(clock.now() + HOUR).toISOString(),
    deliveryCount: 1, properties: { color: 'red' }, body: new Uint8Array([1, 2, 3]),
  });
  assert.equal(await c2d.receive(D1), undefined, 'the only message is locked');
  assert.equal(await c2d.receive(M1), undefined, 'the module has its own inbox');
  await c2d.complete(D1, m.lockToken);
  assert.equal((await c2d.counts(D1)).completed, 1);
});

test('the wake-up subject is the device c2d subject, ids encoded into tokens', () => {
  assert.equal(c2dSubject('d.1', ''), 'corral.device.d_2E1._.c2d');
  assert.equal(c2dSubject('d1', 'm*1'), 'corral.device.d1.m_2A1.c2d');
});

test('a module gets its own messages, addressed to its path', async (t) => {
  const { c2d, registry } = await setup(t);
  await withDevices(registry, D1, M1);
  await c2d.send(M1, text('for the module'));
  const m = await c2d.receive(M1);
  assert.equal(m?.to, '/devices/d1/modules/m1/messages/deviceBound');
  assert.equal(bodyText(m?.body), 'for the module');
  assert.equal(await c2d.receive(D1), undefined);
});

test('send generates a message id when none is given', async (t) => {
  const { c2d, registry } = await setup(t);
  await withDevices(registry, D1);
  const { messageId } = await c2d.send(D1, text('x'));
  assert.match(messageId, /^[0-9a-f-]{36}$/);
});

test('send to an unknown device or module fails with 404001, to a bad id with 400004', async (t) => {
  const { c2d, registry } = await setup(t);
  await withDevices(registry, D1);
  await rejectsWith(c2d.send({ deviceId: 'ghost', moduleId: '' }, text('x')), 404001, /ghost/);
  await rejectsWith(c2d.send({ deviceId: 'd1', moduleId: 'ghost' }, text('x')), 404001, /ghost/);
  await rejectsWith(c2d.send({ deviceId: 'bad/id', moduleId: '' }, text('x')), 400004);
  await rejectsWith(c2d.purge({ deviceId: 'ghost', moduleId: '' }), 404001);
});

test('the inbox holds maxQueueDepth pending messages; the next send fails with 403004', async (t) => {
  const { c2d, registry } = await setup(t, { maxQueueDepth: 3 });
  await withDevices(registry, D1);
  for (let i = 0; i < 3; i++) await c2d.send(D1, text(`m${i}`));
  await rejectsWith(c2d.send(D1, text('one too many')), 403004, /3 pending/);
  const m = await c2d.receive(D1);
  await rejectsWith(c2d.send(D1, text('a locked message is still pending')), 403004);
  await c2d.complete(D1, m?.lockToken ?? '');
  await c2d.send(D1, text('room again'));
});

test('a message over maxMessageBytes, counting its properties, fails with 413001', async (t) => {
  const { c2d, registry } = await setup(t, { maxMessageBytes: 100 });
  await withDevices(registry, D1);
  await c2d.send(D1, { body: new Uint8Array(100) });
  await rejectsWith(c2d.send(D1, { body: new Uint8Array(101) }), 413001, /100 bytes/);
  await rejectsWith(c2d.send(D1, { body: new Uint8Array(90), properties: { key: 'a longer value' } }), 413001);
});

test('bad expiry, ack, message id or property fail with 400004', async (t) => {
  const { c2d, registry, clock } = await setup(t);
  await withDevices(registry, D1);
  const iso = (ms: number): string => new Date(ms).toISOString();
  await rejectsWith(c2d.send(D1, { ...text('x'), expiryTimeUtc: 'tomorrow' }), 400004, /ISO 8601/);
  await rejectsWith(c2d.send(D1, { ...text('x'), expiryTimeUtc: iso(clock.now() - 1) }), 400004, /passed/);
  await rejectsWith(c2d.send(D1, { ...text('x'), expiryTimeUtc: iso(clock.now() + 48 * HOUR + 1) }), 400004, /172800/);
  await rejectsWith(c2d.send(D1, { ...text('x'), ack: 'sometimes' }), 400004, /iothub-ack/);
  await rejectsWith(c2d.send(D1, { ...text('x'), messageId: 'has space' }), 400004, /message id/);
  await rejectsWith(c2d.send(D1, { ...text('x'), messageId: 'x'.repeat(129) }), 400004);
  await rejectsWith(c2d.send(D1, { ...text('x'), properties: { k: 'line\nbreak' } }), 400004, /control/);
  await c2d.send(D1, { ...text('x'), expiryTimeUtc: iso(clock.now() + 48 * HOUR), ack: 'FULL' });
});

test('a message past its time to live expires: the sweep dead-letters it with Expired feedback', async (t) => {
  const { c2d, registry, clock } = await setup(t);
  await withDevices(registry, D1);
  const device = await registry.get(D1);
  await c2d.send(D1, { ...text('late'), messageId: 'late', ack: 'full' });
  await c2d.send(D1, { ...text('quiet'), messageId: 'quiet', ack: 'positive' });
  clock.advance(HOUR);
  assert.deepEqual(await c2d.sweep(), { expired: 2, deadLettered: 0, messagesDeleted: 0, feedbackDeleted: 0 });
  assert.equal(await c2d.receive(D1), undefined);
  assert.equal((await registry.get(D1)).c2dCount, 0);
  const batch = await c2d.receiveFeedback();
  assert.deepEqual(batch?.records, [{
    originalMessageId: 'late', enqueuedTimeUtc: new Date(clock.now()).toISOString(), statusCode: 'Expired',
    description: 'Message expired', deviceId: 'd1', deviceGenerationId: device.generationId,
  }]);
});

test('a lock that runs out hands the message out again with the next delivery count; the old token is stale (412002)', async (t) => {
  const { c2d, registry, clock } = await setup(t);
  await withDevices(registry, D1);
  await c2d.send(D1, text('again'));
  const first = await c2d.receive(D1);
  clock.advance(59 * SECOND);
  assert.equal(await c2d.receive(D1), undefined);
  clock.advance(SECOND);
  const second = await c2d.receive(D1);
  assert.equal(second?.deliveryCount, 2);
  assert.notEqual(second?.lockToken, first?.lockToken);
  await rejectsWith(c2d.complete(D1, first?.lockToken ?? ''), 412002, /lock token/);
  await rejectsWith(c2d.abandon(D1, 'made-up'), 412002);
  await c2d.complete(D1, second?.lockToken ?? '');
});

test('after maxDeliveryCount deliveries the message is dead-lettered with DeliveryCountExceeded feedback', async (t) => {
  const { c2d, registry, clock } = await setup(t, { maxDeliveryCount: 3 });
  await withDevices(registry, D1);
  await c2d.send(D1, { ...text('tired'), messageId: 'tired', ack: 'negative' });
  for (let n = 1; n <= 3; n++) {
    const m = await c2d.receive(D1);
    assert.equal(m?.deliveryCount, n);
    if (n === 2) await c2d.abandon(D1, m?.lockToken ?? '');
    else clock.advance(60 * SECOND);
  }
  assert.equal(await c2d.receive(D1), undefined);
  assert.equal((await c2d.counts(D1)).deadLettered, 1);
  const batch = await c2d.receiveFeedback();
  assert.deepEqual(batch?.records.map((r) => [r.originalMessageId, r.statusCode, r.description]),
    [['tired', 'DeliveryCountExceeded', 'Message delivery count exceeded']]);
});

test('the sweep dead-letters a message whose last lock ran out, without a receive', async (t) => {
  const { c2d, registry, clock } = await setup(t, { maxDeliveryCount: 1 });
  await withDevices(registry, D1);
  await c2d.send(D1, { ...text('once'), ack: 'full' });
  await c2d.receive(D1);
  clock.advance(60 * SECOND);
  assert.equal((await c2d.sweep()).deadLettered, 1);
  assert.equal((await c2d.receiveFeedback())?.records[0].statusCode, 'DeliveryCountExceeded');
});

test('feedback follows the ack: reject gives Rejected, complete gives Success only for positive and full', async (t) => {
  const { c2d, registry } = await setup(t);
  await withDevices(registry, D1);
  const cases: [string, string, 'complete' | 'reject'][] = [
    ['full-ok', 'full', 'complete'], ['full-bad', 'full', 'reject'], ['pos-ok', 'positive', 'complete'],
    ['pos-bad', 'positive', 'reject'], ['neg-ok', 'negative', 'complete'], ['neg-bad', 'negative', 'reject'],
    ['none-ok', 'none', 'complete'], ['none-bad', 'none', 'reject'],
  ];
  for (const [messageId, ack] of cases) await c2d.send(D1, { ...text(messageId), messageId, ack });
  for (const [messageId, , how] of cases) {
    const m = await c2d.receive(D1);
    assert.equal(m?.messageId, messageId);
    await c2d[how](D1, m.lockToken);
  }
  const batch = await c2d.receiveFeedback();
  assert.deepEqual(batch?.records.map((r) => `${r.originalMessageId}:${r.statusCode}`),
    ['full-ok:Success', 'full-bad:Rejected', 'pos-ok:Success', 'neg-bad:Rejected']);
  assert.equal(batch?.records[1].description, 'Message rejected');
  assert.equal(await c2d.receiveFeedback(), undefined, 'the batch is locked');
  await c2d.completeFeedback(batch?.lockToken ?? '');
  await rejectsWith(c2d.completeFeedback(batch?.lockToken ?? ''), 412002);
  await rejectsWith(c2d.abandonFeedback('made-up'), 412002);
});

test('abandon hands the message out again at once', async (t) => {
  const { c2d, registry } = await setup(t);
  await withDevices(registry, D1);
  await c2d.send(D1, text('a'));
  await c2d.send(D1, text('b'));
  const a = await c2d.receive(D1);
  await c2d.abandon(D1, a?.lockToken ?? '');
  const again = await c2d.receive(D1);
  assert.equal(bodyText(again?.body), 'a');
  assert.equal(again?.deliveryCount, 2);
});

test('the device record counts its pending messages; purge empties the inbox', async (t) => {
  const { c2d, registry } = await setup(t);
  await withDevices(registry, D1);
  const before = await registry.get(D1);
  for (const s of ['a', 'b', 'c']) await c2d.send(D1, text(s));
  assert.equal((await registry.get(D1)).c2dCount, 3);
  const m = await c2d.receive(D1);
  await c2d.reject(D1, m?.lockToken ?? '');
  const after = await registry.get(D1);
  assert.equal(after.c2dCount, 2);
  assert.equal(after.etag, before.etag, 'C2D traffic is not an identity change');
  assert.deepEqual(await c2d.purge(D1), { totalMessagesPurged: 2 });
  assert.equal((await registry.get(D1)).c2dCount, 0);
  assert.equal(await c2d.receive(D1), undefined);
});

test('a wake-up that cannot be published does not fail the send', async (t) => {
  const { store, clock, registry, bus } = await setup(t);
  await withDevices(registry, D1);
  const errors: unknown[] = [];
  const c2d = new CloudToDevice({ store, clock, bus, limits: IOT_HUB_C2D_LIMITS, onWakeUpError: (err) => errors.push(err) });
  await bus.close();
  await c2d.send(D1, text('stored anyway'));
  assert.equal(errors.length, 1);
  assert.equal(bodyText((await c2d.receive(D1))?.body), 'stored anyway');
});

test('messages, their states and feedback survive reopening a file store', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'corral-c2d-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'corral.db');
  const first = await setup(t, {}, file);
  await withDevices(first.registry, D1);
  await first.c2d.send(D1, { ...text('locked'), ack: 'full' });
  await first.c2d.send(D1, { ...text('done'), ack: 'full', messageId: 'done' });
  await first.c2d.send(D1, text('waiting'));
  const locked = await first.c2d.receive(D1);
  const done = await first.c2d.receive(D1);
  await first.c2d.complete(D1, done?.lockToken ?? '');
  await first.store.close();

  const second = await setup(t, {}, file);
  second.clock.advance(first.clock.now() - second.clock.now());
  assert.deepEqual(await second.c2d.counts(D1), { enqueued: 1, locked: 1, completed: 1, rejected: 0, deadLettered: 0, expired: 0 });
  assert.equal(bodyText((await second.c2d.receive(D1))?.body), 'waiting');
  second.clock.advance(60 * SECOND);
  const again = await second.c2d.receive(D1);
  assert.equal(bodyText(again?.body), 'locked');
  assert.equal(again?.deliveryCount, 2);
  await rejectsWith(second.c2d.complete(D1, locked?.lockToken ?? ''), 412002);
  assert.deepEqual((await second.c2d.receiveFeedback())?.records.map((r) => r.originalMessageId), ['done']);
});

test('the sweeper runs the sweep on its timer and stops', async (t) => {
  const { store, clock, bus } = await setup(t);
  let sweeps = 0;
  let swept: () => void = () => {};
  const twice = new Promise<void>((resolve) => { swept = resolve; });
  class Counting extends CloudToDevice {
    override async sweep() {
      if (++sweeps === 2) swept();
      return super.sweep();
    }
  }
  const stop = startC2dSweeper(new Counting({ store, clock, bus, limits: IOT_HUB_C2D_LIMITS }), {
    intervalMs: 5, onError: (err) => assert.fail(String(err)),
  });
  // The sweeper's timer is unref'd (it never holds a process open); this one keeps the test alive meanwhile.
  const keepAlive = setInterval(() => {}, 1000);
  await twice;
  clearInterval(keepAlive);
  await stop();
  const seen = sweeps;
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(sweeps, seen);
});
