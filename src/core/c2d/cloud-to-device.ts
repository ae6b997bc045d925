import { randomUUID } from 'node:crypto';
import { DeviceNotFound, LockLost, ModuleNotFound, QueueDepthExceeded } from '../errors/index.js';
import { deviceSubject } from '../devices/index.js';
import { checkKey } from '../identity/index.js';
import type { Bus } from '../../ports/bus/index.js';
import type { Clock } from '../../ports/clock/index.js';
import type { C2dCounts, C2dSettlement, C2dSweepResult, IdentityKey, Store } from '../../ports/store/index.js';
import { feedbackRecord, type FeedbackBatch } from './feedback.js';
import {
  checkOutgoing, deviceBoundView, expiryOf, feedbackOn, parseAck, type C2dLimits, type DeviceBoundMessage, type OutgoingMessage,
} from './message.js';

export interface CloudToDeviceDeps {
  readonly store: Store;
  readonly clock: Clock;
  readonly bus: Bus;
  readonly limits: C2dLimits;
  /** Told when a wake-up could not be published; the message is stored all the same. */
  readonly onWakeUpError?: (err: unknown, key: IdentityKey) => void;
}

/**
 * The Bus subject on which a node holding `deviceId`'s (or its module's) connection hears that a message waits in its
 * inbox: the device's 'c2d' subject, the one the MQTT gateway subscribes. The data is the message id (UTF-8), for
 * logs only: the gateway reads the inbox itself.
 */
export function c2dSubject(deviceId: string, moduleId: string): string {
  return deviceSubject({ deviceId, moduleId }, 'c2d');
}

function what(key: IdentityKey): string {
  return key.moduleId ? `module '${key.deviceId}/${key.moduleId}'` : `device '${key.deviceId}'`;
}

function notFound(key: IdentityKey): Error {
  return key.moduleId === '' ? new DeviceNotFound(key.deviceId) : new ModuleNotFound(key.deviceId, key.moduleId);
}

/**
 * Cloud-to-device messaging: each device's (and module's) inbox in the Store, with IoT Hub's depth, time to live,
 * lock and delivery-count rules, and the feedback a service reads back.
 */
export class CloudToDevice {
  constructor(private readonly deps: CloudToDeviceDeps) {}

  get limits(): C2dLimits {
    return this.deps.limits;
  }

  /**
   * Queues a message for a device or module and wakes the node holding its connection. Throws 400004 (bad id, ack,
   * expiry or property), 413001 (too large), 404001 (no such identity), 403004 (inbox full).
   */
  async send(key: IdentityKey, message: OutgoingMessage): Promise<{ messageId: string }> {
    checkKey(key);
    const { store, clock, limits } = this.deps;
    checkOutgoing(message, limits);
    const nowMs = clock.now();
    const expiryMs = expiryOf(message.expiryTimeUtc, nowMs, limits);
    const ack = parseAck(message.ack);
    const identity = await store.identities.get(key);
    if (!identity) throw notFound(key);
    const messageId = message.messageId ?? randomUUID();
    const result = await store.c2d.enqueue({
      deviceId: key.deviceId, moduleId: key.moduleId, messageId,
      correlationId: message.correlationId ?? null, userId: message.userId ?? null,
      contentType: message.contentType ?? null, contentEncoding: message.contentEncoding ?? null,
      ack, properties: { ...message.properties }, body: message.body, generationId: identity.generationId,
      enqueuedMs: nowMs, expiryMs, feedbackOn: feedbackOn(ack),
    }, limits.maxQueueDepth);
    if (result === 'no-identity') throw notFound(key);
    if (result === 'queue-full') throw new QueueDepthExceeded(what(key), limits.maxQueueDepth);
    await this.wakeUp(key, messageId);
    return { messageId };
  }

  /** The next message for the identity, locked for `lockSeconds`; undefined when none waits. */
  async receive(key: IdentityKey): Promise<DeviceBoundMessage | undefined> {
    const { store, clock, limits } = this.deps;
    const nowMs = clock.now();
    const m = await store.c2d.lockNext(key, nowMs, nowMs + limits.lockSeconds * 1000, limits.maxDeliveryCount);
    return m && deviceBoundView(m);
  }

  /** Removes the message held by `lockToken` (Success feedback if asked). 412002 when the lock is not current. */
  async complete(key: IdentityKey, lockToken: string): Promise<void> {
    await this.settle(key, lockToken, 'completed');
  }

  /** Puts the message back for the next receive. 412002 when the lock is not current. */
  async abandon(key: IdentityKey, lockToken: string): Promise<void> {
    await this.settle(key, lockToken, 'abandoned');
  }

  /** Drops the message (Rejected feedback if asked). 412002 when the lock is not current. */
  async reject(key: IdentityKey, lockToken: string): Promise<void> {
    await this.settle(key, lockToken, 'rejected');
  }

  /** Deletes the identity's pending messages; 404001 if it does not exist. */
  async purge(key: IdentityKey): Promise<{ totalMessagesPurged: number }> {
    checkKey(key);
    if (!(await this.deps.store.identities.get(key))) throw notFound(key);
    return { totalMessagesPurged: await this.deps.store.c2d.purge(key) };
  }

  /** Messages per state, of one identity or of the hub. */
  async counts(key?: IdentityKey): Promise<C2dCounts> {
    return this.deps.store.c2d.counts(key);
  }

  /** Up to `feedbackBatchSize` feedback records, locked for `lockSeconds`; undefined when there are none. */
  async receiveFeedback(): Promise<FeedbackBatch | undefined> {
    const { store, clock, limits } = this.deps;
    const nowMs = clock.now();
    const batch = await store.c2d.lockFeedback(nowMs, nowMs + limits.lockSeconds * 1000, limits.feedbackBatchSize);
    return batch && { lockToken: batch.lockToken, records: batch.records.map(feedbackRecord) };
  }

  /** Deletes the feedback read under `lockToken`; 412002 when that lock is not current. */
  async completeFeedback(lockToken: string): Promise<void> {
    if (!(await this.deps.store.c2d.completeFeedback(lockToken, this.deps.clock.now()))) throw new LockLost('any feedback', lockToken);
  }

  /** Returns the feedback read under `lockToken` for the next read; 412002 when that lock is not current. */
  async abandonFeedback(lockToken: string): Promise<void> {
    if (!(await this.deps.store.c2d.abandonFeedback(lockToken, this.deps.clock.now()))) throw new LockLost('any feedback', lockToken);
  }

  /**
   * Housekeeping the hub runs on a timer: expires and dead-letters what is due (with feedback), deletes messages
   * finished longer than `finishedRetentionSeconds` ago and feedback older than `feedbackTtlSeconds`.
   */
  async sweep(): Promise<C2dSweepResult> {
    const { store, clock, limits } = this.deps;
    const nowMs = clock.now();
    return store.c2d.sweep({
      nowMs,
      maxDeliveryCount: limits.maxDeliveryCount,
      finishedBeforeMs: nowMs - limits.finishedRetentionSeconds * 1000,
      feedbackBeforeMs: nowMs - limits.feedbackTtlSeconds * 1000,
    });
  }

  private async settle(key: IdentityKey, lockToken: string, settlement: C2dSettlement): Promise<void> {
    if (!(await this.deps.store.c2d.settle(key, lockToken, settlement, this.deps.clock.now()))) {
      throw new LockLost(`a message of ${what(key)}`, lockToken);
    }
  }

  private async wakeUp(key: IdentityKey, messageId: string): Promise<void> {
    try {
      await this.deps.bus.publish(c2dSubject(key.deviceId, key.moduleId), new TextEncoder().encode(messageId));
    } catch (err) {
      // The message is stored: the device gets it on its next receive or reconnect. Failing the send would make the
      // service send it again, twice.
      this.deps.onWakeUpError?.(err, key);
    }
  }
}

/**
 * Runs `c2d.sweep()` every `intervalMs` (never two at once) on an unref'd timer. Errors go to `onError`; the next tick
 * tries again. The returned function stops the timer and resolves once a sweep in flight has ended.
 */
export function startC2dSweeper(c2d: CloudToDevice, opts: { intervalMs: number; onError: (err: unknown) => void }): () => Promise<void> {
  let running: Promise<void> | undefined;
  const timer = setInterval(() => {
    if (running) return;
    running = c2d.sweep().then(() => undefined, opts.onError).finally(() => { running = undefined; });
  }, opts.intervalMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}
