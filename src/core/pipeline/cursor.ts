/**
 * A consumer's cursor over one partition: read a batch after the checkpoint, hand it to the consumer, move the
 * checkpoint past it, repeat; when caught up, wait for new records (a local append wakes it at once, other partitions
 * are polled). Reading is pull-only, so a slow consumer falls behind but never slows ingestion; a failed batch is
 * retried after a growing back-off, so nothing is skipped (at-least-once: a crash between handling and
 * checkpointing hands the batch over again).
 */

import type { Clock } from '../../ports/clock/index.js';
import type { EventLog, EventLogReader } from '../../ports/eventlog/index.js';
import type { PipelineStore } from '../../ports/store/pipeline.js';
import { PipelineMessage } from './message.js';

/** A consumer of the log: routes, the device-state stage, the rules engine. */
export interface PipelineConsumer {
  /** Its checkpoint's name in the Store. */
  readonly name: string;
  /** Handles records read from `partition`, in order. Throwing retries the same batch after a back-off. */
  handle(partition: string, messages: readonly PipelineMessage[]): Promise<void>;
}


/** Resolves waiters when records are appended to this node's partition. */
export class AppendSignal {
  private waiters = new Set<() => void>();

  notify(): void {
    const ws = this.waiters;
    this.waiters = new Set();
    for (const w of ws) w();
  }

  /** Resolves on the next notify, or after `ms`. */
  wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => { clearTimeout(timer); this.waiters.delete(done); resolve(); };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
    });
  }
}

/** Records per read while a cursor keeps up, and while it is behind (one delivery per read, so bigger catches up). */
export const SMALL_BATCH = 1000;
export const LARGE_BATCH = 10_000;

/**
 * One partition's reads, shared by its cursors: the routes, the device state and the rules usually stand at the same
 * place, so a read made for one serves the others (in flight or just done), and each record is decoded once. Only
 * full batches are kept (8 of them): a short one was the tail, which grows.
 */
export class SharedReads {
  private readonly recent: { readonly after: number; readonly messages: readonly PipelineMessage[] }[] = [];
  private readonly inFlight = new Map<string, Promise<readonly PipelineMessage[]>>();

  constructor(readonly reader: EventLogReader, private readonly partition: string) {}

  read(after: number, limit: number): Promise<readonly PipelineMessage[]> {
    const hit = this.recent.find((e) => e.after === after && e.messages.length >= limit);
    if (hit) return Promise.resolve(hit.messages.length === limit ? hit.messages : hit.messages.slice(0, limit));
    const key = `${after}:${limit}`;
    let pending = this.inFlight.get(key);
    if (!pending) {
      pending = this.reader.read({ after, limit }).then((events) => {
        const messages = events.map((e) => new PipelineMessage(this.partition, e));
        if (messages.length === limit) {
          this.recent.push({ after, messages });
          if (this.recent.length > 8) this.recent.shift();
        }
        return messages;
      }).finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, pending);
    }
    return pending;
  }
}

export interface CursorOptions {
  readonly store: PipelineStore;
  readonly reads: SharedReads;
  readonly partition: string;
  readonly consumer: PipelineConsumer;
  readonly clock: Clock;
  readonly signal: AppendSignal;
  /** How long a caught-up cursor waits before it looks again without a signal (default 250 ms). */
  readonly idleMs?: number;
  /** Where to start with no checkpoint: 'latest' (the default) or 'earliest'. */
  readonly startAt?: 'latest' | 'earliest';
  readonly onError: (err: unknown) => void;
}

const MAX_BACKOFF_MS = 30_000;

export class PartitionCursor {
  private stopped = false;
  private running: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  /** The sequence handled and checkpointed last. */
  position = 0;
  /** When the last batch was handled (ms), and the enqueued time of the newest record handled. */
  lastHandledMs = 0;
  lastEnqueuedMs = 0;

  constructor(private readonly opts: CursorOptions) {}

  start(): void {
    this.running ??= this.loop();
  }

  /** Stops after the batch in hand; resolves when the loop has ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.running;
  }

  private async loop(): Promise<void> {
    const o = this.opts;
    let backoffMs = 100;
    let batch = SMALL_BATCH;
    try {
      this.position = await this.initialPosition();
    } catch (err) {
      o.onError(err);
      if (!this.stopped) { await this.pause(1000); this.running = undefined; if (!this.stopped) this.start(); }
      return;
    }
    while (!this.stopped) {
      try {
        const messages = await o.reads.read(this.position, batch);
        // A full read means the cursor is behind: read more at a time until it has caught up.
        batch = messages.length === batch ? LARGE_BATCH : SMALL_BATCH;
        if (messages.length === 0) {
          await Promise.race([o.signal.wait(o.idleMs ?? 250), this.pause(o.idleMs ?? 250)]);
          continue;
        }
        await o.consumer.handle(o.partition, messages);
        const last = messages[messages.length - 1].event;
        await o.store.writeCheckpoint(o.consumer.name, o.partition, last.sequence, o.clock.now(), true);
        this.position = last.sequence;
        this.lastHandledMs = o.clock.now();
        this.lastEnqueuedMs = last.enqueuedTimeMs;
        backoffMs = 100;
      } catch (err) {
        if (this.stopped) break;
        o.onError(err);
        await this.pause(backoffMs);
        backoffMs = Math.min(MAX_BACKOFF_MS, backoffMs * 2);
      }
    }
  }

  private async initialPosition(): Promise<number> {
    const o = this.opts;
    const saved = (await o.store.readCheckpoints(o.consumer.name))[o.partition];
    if (saved !== undefined) return saved;
    const start = o.startAt === 'earliest' ? 0 : await o.reads.reader.lastSequence();
    await o.store.writeCheckpoint(o.consumer.name, o.partition, start, o.clock.now(), true);
    return start;
  }

  /** Sleeps, or less when stop() is called. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.wake = undefined; resolve(); }, ms);
      this.wake = () => { clearTimeout(timer); this.wake = undefined; resolve(); };
    });
  }
}

/** The log with every resolved append also waking the cursors waiting on `signal`. */
export function signalAppends(log: EventLog, signal: AppendSignal): EventLog {
  return {
    append: async (records) => {
      const seqs = await log.append(records);
      signal.notify();
      return seqs;
    },
    read: (opts) => log.read(opts),
    lastSequence: () => log.lastSequence(),
    seekTime: (t) => log.seekTime(t),
    trim: (opts) => log.trim(opts),
    close: () => log.close(),
  };
}
