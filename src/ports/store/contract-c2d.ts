import assert from 'node:assert/strict';
import type { C2dNewMessage, C2dOutcome, IdentityKey, Store } from './index.js';
import { identityRecord } from './contract.js';

type Case = (name: string, body: (store: Store) => Promise<void>) => void;

const T0 = Date.UTC(2026, 0, 1);
const MIN = 60_000;
const ALL: readonly C2dOutcome[] = ['completed', 'rejected', 'deadLettered', 'expired'];
const D1: IdentityKey = { deviceId: 'd1', moduleId: '' };

/** A message for `key` enqueued at T0, expiring an hour later, asking for every kind of feedback. */
export function c2dMessage(key: IdentityKey, messageId: string, over: Partial<C2dNewMessage> = {}): C2dNewMessage {
  return {
    deviceId: key.deviceId, moduleId: key.moduleId, messageId,
    correlationId: null, userId: null, contentType: null, contentEncoding: null, ack: 'full',
    properties: {}, body: new Uint8Array(Buffer.from(`body of ${messageId}`)), generationId: `gen-${key.deviceId}`,
    enqueuedMs: T0, expiryMs: T0 + 60 * MIN, feedbackOn: ALL, ...over,
  };
}

async function withIdentities(store: Store, ...keys: IdentityKey[]): Promise<void> {
  for (const k of keys) assert.equal(await store.identities.insert(identityRecord(k.deviceId, k.moduleId)), true);
}

async function c2dCount(store: Store, key: IdentityKey): Promise<number | undefined> {
  return (await store.identities.get(key))?.c2dCount;
}

async function enqueueAll(store: Store, messages: readonly C2dNewMessage[], maxDepth = 50): Promise<void> {
  for (const m of messages) assert.equal(await store.c2d.enqueue(m, maxDepth), 'enqueued', m.messageId);
}

/** Drains the feedback as (message id, outcome) pairs, completing each batch. */
async function drainFeedback(store: Store, nowMs: number): Promise<string[]> {
  const out: string[] = [];
  for (;;) {
    const batch = await store.c2d.lockFeedback(nowMs, nowMs + MIN, 100);
    if (!batch) return out;
    out.push(...batch.records.map((r) => `${r.originalMessageId}:${r.outcome}`));
    assert.equal(await store.c2d.completeFeedback(batch.lockToken, nowMs), true);
  }
}

export function presenceCases(it: Case): void {
  it('updatePresence writes only the given fields and keeps etag and rev', async (store) => {
    const r = identityRecord('d1', '', { etag: 'e1' });
    await store.identities.insert(r);
    assert.equal(await store.identities.updatePresence(D1, { connectionState: 'Connected', connectionStateUpdatedTime: '2026-01-01T00:00:00.000Z' }), true);
    assert.equal(await store.identities.updatePresence(D1, { lastActivityTime: '2026-01-01T00:00:05.000Z' }), true);
    assert.deepEqual(await store.identities.get(D1), {
      ...r, rev: 1, connectionState: 'Connected', connectionStateUpdatedTime: '2026-01-01T00:00:00.000Z',
      lastActivityTime: '2026-01-01T00:00:05.000Z',
    });
    assert.equal(await store.identities.updatePresence({ deviceId: 'd1', moduleId: 'm' }, { connectionState: 'Connected' }), false);
    assert.equal(await store.identities.updatePresence({ deviceId: 'nobody', moduleId: '' }, {}), false);
    assert.equal(await store.identities.updatePresence(D1, {}), true);
  });

  it('updatePresence with onlyIfStateUpdatedAt writes only while the stored state time is that one', async (store) => {
    await store.identities.insert(identityRecord('d1'));
    const t1 = '2026-01-01T00:00:01.000Z';
    const t2 = '2026-01-01T00:00:02.000Z';
    assert.equal(await store.identities.updatePresence(D1, { connectionState: 'Connected', connectionStateUpdatedTime: t1 }), true);
    // Another node took the device over at t2; the first node's late Disconnected must not land.
    assert.equal(await store.identities.updatePresence(D1, { connectionState: 'Connected', connectionStateUpdatedTime: t2 }), true);
    assert.equal(await store.identities.updatePresence(D1, { connectionState: 'Disconnected', connectionStateUpdatedTime: '2026-01-01T00:00:03.000Z', onlyIfStateUpdatedAt: t1 }), false);
    assert.equal((await store.identities.get(D1))?.connectionState, 'Connected');
    assert.equal(await store.identities.updatePresence(D1, { connectionState: 'Disconnected', connectionStateUpdatedTime: '2026-01-01T00:00:04.000Z', onlyIfStateUpdatedAt: t2 }), true);
    assert.equal((await store.identities.get(D1))?.connectionState, 'Disconnected');
  });

  it('replace leaves presence and the C2D count as stored', async (store) => {
    const r = identityRecord('d1');
    await store.identities.insert(r);
    await store.identities.updatePresence(D1, { connectionState: 'Connected', lastActivityTime: '2026-01-02T00:00:00.000Z' });
    await store.c2d.enqueue(c2dMessage(D1, 'm1'), 50);
    assert.equal(await store.identities.replace({ ...r, etag: 'new', connectionState: 'Disconnected', c2dCount: 7 }, 1), true);
    const got = await store.identities.get(D1);
    assert.equal(got?.etag, 'new');
    assert.equal(got?.connectionState, 'Connected');
    assert.equal(got?.lastActivityTime, '2026-01-02T00:00:00.000Z');
    assert.equal(got?.c2dCount, 1);
  });
}

function enqueueCases(it: Case): void {
  it('c2d lockNext hands out the first message with every field as enqueued, locked once', async (store) => {
    await withIdentities(store, D1);
    const body = new Uint8Array([0, 1, 2, 255, 0, 10]);
    const sent = c2dMessage(D1, 'm1', {
      correlationId: 'c-1', userId: 'u', contentType: 'application/json', contentEncoding: 'utf-8', ack: 'positive',
      properties: { color: 'red', 'ünï': 'ç ö' }, body, feedbackOn: ['completed'],
    });
    await enqueueAll(store, [sent, c2dMessage(D1, 'm2', { body: new Uint8Array(0) })]);
    const got = await store.c2d.lockNext(D1, T0 + 1, T0 + MIN, 10);
    assert.ok(got);
    const { seq, lockToken, ...rest } = got;
    assert.equal(typeof seq, 'number');
    assert.ok(lockToken && lockToken.length >= 16);
    assert.deepEqual(rest, { ...sent, state: 'locked', deliveryCount: 1, lockUntilMs: T0 + MIN, updatedMs: T0 + 1 });
    const second = await store.c2d.lockNext(D1, T0 + 2, T0 + MIN, 10);
    assert.equal(second?.messageId, 'm2');
    assert.deepEqual(second?.body, new Uint8Array(0));
    assert.ok(second.seq > seq);
    assert.notEqual(second.lockToken, lockToken);
    assert.equal(await store.c2d.lockNext(D1, T0 + 3, T0 + MIN, 10), undefined);
  });

  it('c2d enqueue keeps the identity c2dCount as its pending messages without changing etag or rev', async (store) => {
    await withIdentities(store, D1, { deviceId: 'd1', moduleId: 'm' });
    await enqueueAll(store, [c2dMessage(D1, 'a'), c2dMessage(D1, 'b'), c2dMessage({ deviceId: 'd1', moduleId: 'm' }, 'c')]);
    assert.equal(await c2dCount(store, D1), 2);
    assert.equal(await c2dCount(store, { deviceId: 'd1', moduleId: 'm' }), 1);
    const r = await store.identities.get(D1);
    assert.equal(r?.rev, 1);
    assert.equal(r?.etag, identityRecord('d1').etag);
    const locked = await store.c2d.lockNext(D1, T0, T0 + MIN, 10);
    assert.equal(await c2dCount(store, D1), 2, 'a locked message is still pending');
    assert.equal(await store.c2d.settle(D1, locked?.lockToken ?? '', 'completed', T0), true);
    assert.equal(await c2dCount(store, D1), 1);
  });

  it('c2d enqueue refuses an absent identity and a full inbox; expired messages do not count', async (store) => {
    await withIdentities(store, D1);
    assert.equal(await store.c2d.enqueue(c2dMessage({ deviceId: 'nobody', moduleId: '' }, 'x'), 50), 'no-identity');
    assert.equal(await store.c2d.enqueue(c2dMessage({ deviceId: 'd1', moduleId: 'nomod' }, 'x'), 50), 'no-identity');
    await enqueueAll(store, [c2dMessage(D1, 'short', { expiryMs: T0 + MIN }), c2dMessage(D1, 'b'), c2dMessage(D1, 'c')], 3);
    assert.equal(await store.c2d.enqueue(c2dMessage(D1, 'd'), 3), 'queue-full');
    assert.equal(await store.c2d.enqueue(c2dMessage(D1, 'd', { enqueuedMs: T0 + MIN }), 3), 'enqueued');
    assert.equal(await store.c2d.enqueue(c2dMessage(D1, 'e', { enqueuedMs: T0 + MIN }), 3), 'queue-full');
    assert.deepEqual((await store.c2d.counts(D1)).enqueued, 4);
  });

  it('c2d enqueues to one inbox at once never pass the depth', async (store) => {
    await withIdentities(store, D1);
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => store.c2d.enqueue(c2dMessage(D1, `m${i}`), 5)));
    assert.equal(results.filter((r) => r === 'enqueued').length, 5);
    assert.equal(results.filter((r) => r === 'queue-full').length, 7);
    assert.equal(await c2dCount(store, D1), 5);
  });
}

function lockCases(it: Case): void {
  it('c2d a locked message is skipped until its lock runs out, then handed out again with a new token', async (store) => {
    await withIdentities(store, D1);
    await enqueueAll(store, [c2dMessage(D1, 'a'), c2dMessage(D1, 'b')]);
    const a1 = await store.c2d.lockNext(D1, T0, T0 + MIN, 10);
    assert.equal((await store.c2d.lockNext(D1, T0 + 1, T0 + MIN, 10))?.messageId, 'b');
    assert.equal(await store.c2d.lockNext(D1, T0 + 2, T0 + MIN, 10), undefined);
    const a2 = await store.c2d.lockNext(D1, T0 + MIN, T0 + 2 * MIN, 10);
    assert.equal(a2?.messageId, 'a');
    assert.equal(a2?.deliveryCount, 2);
    assert.notEqual(a2?.lockToken, a1?.lockToken);
    assert.equal(await store.c2d.settle(D1, a1?.lockToken ?? '', 'completed', T0 + MIN), false, 'the first lock is gone');
    assert.equal(await store.c2d.settle(D1, a2?.lockToken ?? '', 'completed', T0 + MIN), true);
  });

  it('c2d settle refuses an unknown token, another identity, a settled lock and a lock that ran out', async (store) => {
    const other: IdentityKey = { deviceId: 'd2', moduleId: '' };
    await withIdentities(store, D1, other);
    await enqueueAll(store, [c2dMessage(D1, 'a'), c2dMessage(D1, 'b')]);
    const a = await store.c2d.lockNext(D1, T0, T0 + MIN, 10);
    const token = a?.lockToken ?? '';
    assert.equal(await store.c2d.settle(D1, 'not-a-token', 'completed', T0), false);
    assert.equal(await store.c2d.settle(other, token, 'completed', T0), false);
    assert.equal(await store.c2d.settle(D1, token, 'completed', T0 + MIN), false, 'lock ran out');
    const again = await store.c2d.lockNext(D1, T0 + MIN, T0 + 2 * MIN, 10);
    assert.equal(await store.c2d.settle(D1, again?.lockToken ?? '', 'rejected', T0 + MIN), true);
    assert.equal(await store.c2d.settle(D1, again?.lockToken ?? '', 'rejected', T0 + MIN), false, 'already settled');
  });

  it('c2d abandon makes the message available at once; its next lock counts another delivery', async (store) => {
    await withIdentities(store, D1);
    await enqueueAll(store, [c2dMessage(D1, 'a'), c2dMessage(D1, 'b')]);
    const a = await store.c2d.lockNext(D1, T0, T0 + MIN, 10);
    assert.equal(await store.c2d.settle(D1, a?.lockToken ?? '', 'abandoned', T0 + 1), true);
    const again = await store.c2d.lockNext(D1, T0 + 2, T0 + MIN, 10);
    assert.equal(again?.messageId, 'a');
    assert.equal(again?.deliveryCount, 2);
    assert.equal(await c2dCount(store, D1), 2);
    assert.deepEqual(await drainFeedback(store, T0 + 3), []);
  });

  it('c2d lockNext expires and dead-letters what it passes, with the feedback each message lists', async (store) => {
    await withIdentities(store, D1);
    await enqueueAll(store, [
      c2dMessage(D1, 'old', { expiryMs: T0 + MIN }),
      c2dMessage(D1, 'old-quiet', { expiryMs: T0 + MIN, feedbackOn: ['completed'] }),
      c2dMessage(D1, 'tired'),
      c2dMessage(D1, 'fresh'),
    ]);
    assert.equal((await store.c2d.lockNext(D1, T0, T0 + 1, 1))?.messageId, 'old');
    // 'old' ran out of both its lock and its time: expiry goes first. Both old ones are passed over.
    assert.equal((await store.c2d.lockNext(D1, T0 + MIN, T0 + 2 * MIN, 1))?.messageId, 'tired');
    // 'tired' was handed out once, the limit: its lock ran out, so it is dead-lettered.
    assert.equal((await store.c2d.lockNext(D1, T0 + 2 * MIN, T0 + 3 * MIN, 1))?.messageId, 'fresh');
    const counts = await store.c2d.counts(D1);
    assert.deepEqual(counts, { enqueued: 0, locked: 1, completed: 0, rejected: 0, deadLettered: 1, expired: 2 });
    assert.deepEqual(await drainFeedback(store, T0 + 3 * MIN), ['old:expired', 'tired:deadLettered']);
    assert.equal(await c2dCount(store, D1), 1);
  });

  it('c2d settle completed and rejected append feedback only when the message lists them', async (store) => {
    await withIdentities(store, D1);
    await enqueueAll(store, [
      c2dMessage(D1, 'ok'), c2dMessage(D1, 'no', { feedbackOn: ['completed'] }), c2dMessage(D1, 'bad'),
      c2dMessage(D1, 'quiet', { feedbackOn: [] }),
    ]);
    const settle = async (s: 'completed' | 'rejected'): Promise<void> => {
      const m = await store.c2d.lockNext(D1, T0, T0 + MIN, 10);
      assert.equal(await store.c2d.settle(D1, m?.lockToken ?? '', s, T0 + 5), true);
    };
    await settle('completed');
    await settle('rejected');
    await settle('rejected');
    await settle('completed');
    const batch = await store.c2d.lockFeedback(T0 + 6, T0 + MIN, 10);
    assert.deepEqual(batch?.records.map(({ seq: _seq, ...r }) => r), [
      { originalMessageId: 'ok', deviceId: 'd1', moduleId: '', deviceGenerationId: 'gen-d1', outcome: 'completed', outcomeMs: T0 + 5 },
      { originalMessageId: 'bad', deviceId: 'd1', moduleId: '', deviceGenerationId: 'gen-d1', outcome: 'rejected', outcomeMs: T0 + 5 },
    ]);
  });
}

function housekeepingCases(it: Case): void {
  it('c2d sweep expires and dead-letters across identities, recounts, and deletes old messages and feedback', async (store) => {
    const d2: IdentityKey = { deviceId: 'd2', moduleId: 'm' };
    await withIdentities(store, D1, { deviceId: 'd2', moduleId: '' }, d2);
    await enqueueAll(store, [
      c2dMessage(D1, 'exp1', { expiryMs: T0 + MIN }), c2dMessage(d2, 'exp2', { expiryMs: T0 + MIN }),
      c2dMessage(d2, 'tired'), c2dMessage(D1, 'keep'),
    ]);
    await store.c2d.lockNext(d2, T0, T0 + 1, 1);
    await store.c2d.lockNext(d2, T0 + 2, T0 + 3, 1);
    const r = await store.c2d.sweep({ nowMs: T0 + MIN, maxDeliveryCount: 1, finishedBeforeMs: 0, feedbackBeforeMs: 0 });
    // exp2 was dead-lettered by the second lockNext already; the sweep finds exp1 and tired.
    assert.deepEqual(r, { expired: 1, deadLettered: 1, messagesDeleted: 0, feedbackDeleted: 0 });
    assert.equal(await c2dCount(store, D1), 1);
    assert.equal(await c2dCount(store, d2), 0);
    const again = await store.c2d.sweep({ nowMs: T0 + MIN, maxDeliveryCount: 1, finishedBeforeMs: T0 + MIN + 1, feedbackBeforeMs: T0 + 2 });
    assert.deepEqual(again, { expired: 0, deadLettered: 0, messagesDeleted: 3, feedbackDeleted: 0 });
    assert.deepEqual(await store.c2d.counts(), { enqueued: 1, locked: 0, completed: 0, rejected: 0, deadLettered: 0, expired: 0 });
    const last = await store.c2d.sweep({ nowMs: T0 + MIN, maxDeliveryCount: 1, finishedBeforeMs: 0, feedbackBeforeMs: T0 + MIN + 1 });
    assert.equal(last.feedbackDeleted, 3);
    assert.equal(await store.c2d.lockFeedback(T0 + MIN, T0 + 2 * MIN, 10), undefined);
  });

  it('c2d sweep moves more messages than one pass holds', async (store) => {
    await withIdentities(store, D1, { deviceId: 'd2', moduleId: '' });
    const many = Array.from({ length: 1205 }, (_, i) => c2dMessage(i % 2 ? D1 : { deviceId: 'd2', moduleId: '' }, `m${i}`, { expiryMs: T0 + 1, feedbackOn: [] }));
    await enqueueAll(store, many, 10_000);
    const r = await store.c2d.sweep({ nowMs: T0 + 1, maxDeliveryCount: 10, finishedBeforeMs: 0, feedbackBeforeMs: 0 });
    assert.equal(r.expired, 1205);
    assert.equal(await c2dCount(store, D1), 0);
  });

  it('c2d purge deletes only the identity pending messages, without feedback', async (store) => {
    const mod: IdentityKey = { deviceId: 'd1', moduleId: 'm' };
    await withIdentities(store, D1, mod);
    await enqueueAll(store, [c2dMessage(D1, 'a'), c2dMessage(D1, 'b'), c2dMessage(D1, 'c'), c2dMessage(mod, 'x')]);
    const a = await store.c2d.lockNext(D1, T0, T0 + MIN, 10);
    await store.c2d.settle(D1, a?.lockToken ?? '', 'completed', T0);
    await store.c2d.lockNext(D1, T0, T0 + MIN, 10);
    assert.equal(await store.c2d.purge(D1), 2);
    assert.equal(await c2dCount(store, D1), 0);
    assert.equal(await c2dCount(store, mod), 1);
    assert.equal(await store.c2d.purge({ deviceId: 'nobody', moduleId: '' }), 0);
    assert.deepEqual(await drainFeedback(store, T0), ['a:completed']);
  });

  it('c2d deleting a device deletes its inbox and its modules inboxes', async (store) => {
    const mod: IdentityKey = { deviceId: 'd1', moduleId: 'm' };
    await withIdentities(store, D1, mod, { deviceId: 'd2', moduleId: '' });
    await enqueueAll(store, [c2dMessage(D1, 'a'), c2dMessage(mod, 'b'), c2dMessage({ deviceId: 'd2', moduleId: '' }, 'c')]);
    assert.equal(await store.identities.delete(D1), true);
    assert.equal((await store.c2d.counts()).enqueued, 1);
    assert.equal(await store.c2d.lockNext(D1, T0, T0 + MIN, 10), undefined);
  });
}

function feedbackCases(it: Case): void {
  it('c2d feedback is read in batches under a lock, completed by token, and comes back when abandoned or not completed', async (store) => {
    await withIdentities(store, D1);
    await enqueueAll(store, ['a', 'b', 'c', 'd', 'e'].map((id) => c2dMessage(D1, id, { expiryMs: T0 + 1 })));
    await store.c2d.sweep({ nowMs: T0 + 1, maxDeliveryCount: 10, finishedBeforeMs: 0, feedbackBeforeMs: 0 });
    const first = await store.c2d.lockFeedback(T0 + 2, T0 + MIN, 2);
    const second = await store.c2d.lockFeedback(T0 + 2, T0 + MIN, 2);
    const third = await store.c2d.lockFeedback(T0 + 2, T0 + MIN, 2);
    assert.deepEqual(first?.records.map((r) => r.originalMessageId), ['a', 'b']);
    assert.deepEqual(second?.records.map((r) => r.originalMessageId), ['c', 'd']);
    assert.deepEqual(third?.records.map((r) => r.originalMessageId), ['e']);
    assert.equal(await store.c2d.lockFeedback(T0 + 2, T0 + MIN, 2), undefined);
    assert.equal(await store.c2d.completeFeedback(first?.lockToken ?? '', T0 + 3), true);
    assert.equal(await store.c2d.completeFeedback(first?.lockToken ?? '', T0 + 3), false);
    assert.equal(await store.c2d.abandonFeedback(second?.lockToken ?? '', T0 + 3), true);
    assert.deepEqual((await store.c2d.lockFeedback(T0 + 4, T0 + 3 * MIN, 10))?.records.map((r) => r.originalMessageId), ['c', 'd']);
    assert.equal(await store.c2d.completeFeedback(third?.lockToken ?? '', T0 + MIN), false, 'its lock ran out');
    assert.deepEqual((await store.c2d.lockFeedback(T0 + MIN, T0 + 2 * MIN, 10))?.records.map((r) => r.originalMessageId), ['e']);
  });
}

/** The C2D inbox and presence cases of the Store contract. */
export function c2dCases(it: Case): void {
  presenceCases(it);
  enqueueCases(it);
  lockCases(it);
  housekeepingCases(it);
  feedbackCases(it);
}
