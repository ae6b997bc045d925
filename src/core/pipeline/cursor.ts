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
  /**
   * Once caught up, how long to let records gather before reading again (default 0: at the next append). Each read
   * costs a few calls and each handled batch at least one write, so a consumer that need not be immediate (device
   * state) takes its records in fewer, larger batches.
   */
  readonly readIntervalMs?: number;
  /**
   * True while it has nothing to do (a rules engine without rules): the cursor then reads nothing and keeps its place
   * at the end of the log, so it starts with what comes after it has work again.
   */
  isIdle?(): Promise<boolean>;
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
 * One partition's reads, shared by its cursors (routes, device state, rules): the records read last are kept in a
 * window, in order, so a cursor a little behind another is served from memory and every record is read from the log
 * and decoded once. The window holds every record with a sequence in (startAfter, lastSequence]: it only grows by
 * reading on from its end, and drops its oldest records beyond WINDOW_RECORDS. A cursor behind the window reads the
 * log itself.
 */
export class SharedReads {
  private window: PipelineMessage[] = [];
  private startAfter = -1;
  private endSequence = -1;
  private extending: Promise<void> | undefined;

  constructor(readonly reader: EventLogReader, private readonly partition: string) {}

  async read(after: number, limit: number): Promise<readonly PipelineMessage[]> {
    if (this.startAfter < 0 || after < this.startAfter || after > this.endSequence) {
      // Outside the window: start a new one here if the cursor is ahead of it (a new cursor at the tail, say).
      if (this.startAfter >= 0 && after < this.startAfter) return this.readLog(after, limit);
      this.window = [];
      this.startAfter = after;
      this.endSequence = after;
    }
    let served = this.serve(after, limit);
    if (served.length < limit) {
      // Read on from the window's end, once for all cursors waiting there.
      await (this.extending ??= this.extend(limit).finally(() => { this.extending = undefined; }));
      served = this.serve(after, limit);
    }
    return served;
  }

  private serve(after: number, limit: number): PipelineMessage[] {
    let lo = 0;
    let hi = this.window.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.window[mid].event.sequence <= after) lo = mid + 1; else hi = mid;
    }
    return this.window.slice(lo, lo + limit);
  }

  private async extend(limit: number): Promise<void> {
    const from = this.endSequence;
    const events = await this.reader.read({ after: from, limit: Math.max(limit, SMALL_BATCH) });
    if (from !== this.endSequence) return; // the window moved meanwhile (a reset)
    for (const e of events) this.window.push(new PipelineMessage(this.partition, e));
    if (events.length > 0) this.endSequence = events[events.length - 1].sequence;
    if (this.window.length > WINDOW_RECORDS) {
      const drop = this.window.length - WINDOW_RECORDS;
      this.startAfter = this.window[drop - 1].event.sequence;
      this.window = this.window.slice(drop);
    }
  }

  private async readLog(after: number, limit: number): Promise<PipelineMessage[]> {
    return (await this.reader.read({ after, limit })).map((e) => new PipelineMessage(this.partition, e));
  }
}

/** Records a partition's shared window keeps. */
const WINDOW_RECORDS = 50_000;

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
/** How often an idle consumer looks whether it has work again, and how often it checkpoints its place. */
const IDLE_CONSUMER_MS = 500;
const IDLE_CHECKPOINT_MS = 5000;

export class PartitionCursor {
  private stopped = false;
  private running: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  /** The sequence handled and checkpointed last. */
  position = 0;
  /** When the checkpoint was last written (ms). */
  private lastCheckpointMs = 0;

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
        if (await o.consumer.isIdle?.()) {
          await this.skipToEnd();
          await Promise.race([o.signal.wait(IDLE_CONSUMER_MS), this.pause(IDLE_CONSUMER_MS)]);
          continue;
        }
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
        this.lastCheckpointMs = o.clock.now();
        backoffMs = 100;
        if (batch === SMALL_BATCH && o.consumer.readIntervalMs) await this.pause(o.consumer.readIntervalMs);
      } catch (err) {
        if (this.stopped) break;
        o.onError(err);
        await this.pause(backoffMs);
        backoffMs = Math.min(MAX_BACKOFF_MS, backoffMs * 2);
      }
    }
  }

  /** An idle consumer's place follows the end of the log; its checkpoint, at most every few seconds. */
  private async skipToEnd(): Promise<void> {
    const o = this.opts;
    this.position = Math.max(this.position, await o.reads.reader.lastSequence());
    const now = o.clock.now();
    if (now - this.lastCheckpointMs < IDLE_CHECKPOINT_MS) return;
    await o.store.writeCheckpoint(o.consumer.name, o.partition, this.position, now, true);
    this.lastCheckpointMs = now;
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
