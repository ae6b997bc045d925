import { performance } from 'node:perf_hooks';
import { EventLogWriteFailed } from '../index.js';

/** How batches are formed; see GroupCommit. */
export interface GroupCommitOptions {
  /** A commit starts no sooner than this after the previous one started, unless a full batch is waiting. */
  readonly maxBatchDelayMs: number;
  /** Records per commit, so one synchronous commit blocks the event loop for a few ms at most. */
  readonly maxBatchRecords: number;
}

/** Counters since open, for metrics and tests. */
export interface GroupCommitStats {
  readonly commits: number;
  readonly failedCommits: number;
  readonly records: number;
  readonly largestBatch: number;
}

/** One append call waiting for the commit of its rows. */
interface Waiter<Row> {
  readonly rows: readonly Row[];
  readonly resolve: (sequences: number[]) => void;
  readonly reject: (err: unknown) => void;
}

/**
 * Group commit over a synchronous `commit(rows)`, which stores all rows in one transaction and returns the sequence
 * of the first (the others follow it, consecutive), or throws having stored none.
 *
 * A submit into an idle committer is committed on the next turn of the event loop, so a lone append waits for one
 * fsync and nothing else. Under load a commit starts at most every `maxBatchDelayMs` (or at once when a full batch is
 * waiting), and everything submitted meanwhile (including what arrived while the previous commit blocked the loop)
 * shares it: one fsync per batch, not per record. One submit's rows are never split across commits, and submits are
 * committed in the order they were made. A failed commit rejects every submit of its batch and no other.
 */
export class GroupCommit<Row> {
  private queue: Waiter<Row>[] = [];
  private queuedRows = 0;
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private lastCommitStartMs = Number.NEGATIVE_INFINITY;
  private counters = { commits: 0, failedCommits: 0, records: 0, largestBatch: 0 };

  constructor(private readonly commit: (rows: readonly Row[]) => number, private readonly opts: GroupCommitOptions) {}

  get stats(): GroupCommitStats {
    return { ...this.counters };
  }

  /** Resolves with one sequence per row once they are committed; rejects with EventLogWriteFailed if not. */
  submit(rows: readonly Row[]): Promise<number[]> {
    return new Promise((resolve, reject) => {
      this.queue.push({ rows, resolve, reject });
      this.queuedRows += rows.length;
      this.schedule();
    });
  }

  /** Commits everything queued now, synchronously, in bounded batches; for close. */
  drain(): void {
    this.cancel();
    while (this.queue.length > 0) this.commitOneBatch();
  }

  private schedule(): void {
    if (this.immediate !== undefined || this.queue.length === 0) return;
    if (this.queuedRows >= this.opts.maxBatchRecords) {
      this.cancel();
      this.immediate = setImmediate(this.onDue);
      return;
    }
    if (this.timer !== undefined) return;
    const waitMs = this.lastCommitStartMs + this.opts.maxBatchDelayMs - performance.now();
    if (waitMs <= 0) this.immediate = setImmediate(this.onDue);
    else this.timer = setTimeout(this.onDue, Math.ceil(waitMs));
  }

  private cancel(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
  }

  private readonly onDue = (): void => {
    this.timer = undefined;
    this.immediate = undefined;
    this.commitOneBatch();
    this.schedule();
  };

  /** Whole submits, oldest first, up to maxBatchRecords rows (but always at least one submit). */
  private takeBatch(): Waiter<Row>[] {
    let count = 0;
    let rows = 0;
    while (count < this.queue.length) {
      const next = this.queue[count].rows.length;
      if (count > 0 && rows + next > this.opts.maxBatchRecords) break;
      rows += next;
      count++;
    }
    this.queuedRows -= rows;
    return this.queue.splice(0, count);
  }

  private commitOneBatch(): void {
    const batch = this.takeBatch();
    const rows = batch.length === 1 ? batch[0].rows : batch.flatMap((w) => w.rows);
    this.lastCommitStartMs = performance.now();
    let sequence: number;
    try {
      sequence = this.commit(rows);
    } catch (err) {
      this.counters.failedCommits++;
      const failure = new EventLogWriteFailed(rows.length, { cause: err });
      for (const w of batch) w.reject(failure);
      return;
    }
    this.counters.commits++;
    this.counters.records += rows.length;
    this.counters.largestBatch = Math.max(this.counters.largestBatch, rows.length);
    for (const w of batch) {
      const sequences = new Array<number>(w.rows.length);
      for (let i = 0; i < sequences.length; i++) sequences[i] = sequence++;
      w.resolve(sequences);
    }
  }
}
