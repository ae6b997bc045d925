import { EventLogWriteFailed } from '../index.js';

/** How batches are formed; see Committer. */
export interface BatchLimits {
  /** Records per commit (one append's are never split). */
  readonly maxBatchRecords: number;
  /** Bytes per commit, so a burst of large records does not put hundreds of MB in flight at once. */
  readonly maxBatchBytes: number;
}

/** Counters since open, for metrics, tests and the benchmark. */
export interface CommitterStats {
  readonly commits: number;
  readonly failedCommits: number;
  readonly records: number;
  readonly largestBatch: number;
}

interface Append<Row> {
  readonly rows: readonly Row[];
  readonly bytes: number;
  readonly resolve: (sequences: number[]) => void;
  readonly reject: (err: unknown) => void;
}

/**
 * Group commit over an asynchronous `commit(rows)`, which stores all rows or none and resolves with the sequence of the
 * first (the others follow it, consecutive), or rejects having stored none.
 *
 * One commit is in flight at a time. A submit into an idle committer is committed on the next turn of the event loop,
 * so a lone append waits for one round trip and nothing else; everything submitted while a commit is in flight shares
 * the next one, so batches grow with load by themselves. Submits are committed whole and in the order they were made.
 * A failed commit rejects every submit of its batch (with EventLogWriteFailed) and no other.
 */
export class Committer<Row> {
  private readonly queue: Append<Row>[] = [];
  private running: Promise<void> | undefined;
  private counters = { commits: 0, failedCommits: 0, records: 0, largestBatch: 0 };

  constructor(
    private readonly commit: (rows: readonly Row[]) => Promise<number>,
    private readonly bytesOf: (row: Row) => number,
    private readonly limits: BatchLimits,
  ) {}

  get stats(): CommitterStats {
    return { ...this.counters };
  }

  /** Resolves with one sequence per row once they are committed; rejects with EventLogWriteFailed if not. */
  submit(rows: readonly Row[]): Promise<number[]> {
    return new Promise((resolve, reject) => {
      let bytes = 0;
      for (const row of rows) bytes += this.bytesOf(row);
      this.queue.push({ rows, bytes, resolve, reject });
      this.start();
    });
  }

  /** Resolves once everything queued so far (and whatever it queued meanwhile) has settled. */
  async idle(): Promise<void> {
    while (this.running !== undefined) await this.running;
  }

  private start(): void {
    this.running ??= this.work().finally(() => {
      this.running = undefined;
      if (this.queue.length > 0) this.start();
    });
  }

  private async work(): Promise<void> {
    // One turn of the event loop, so the callers of this tick share the first commit.
    await new Promise((resolve) => setImmediate(resolve));
    while (this.queue.length > 0) await this.commitOneBatch(this.takeBatch());
  }

  /** Whole appends from the front, up to the limits (but always at least one). */
  private takeBatch(): Append<Row>[] {
    let count = 0;
    let rows = 0;
    let bytes = 0;
    while (count < this.queue.length) {
      const next = this.queue[count];
      const fits = rows + next.rows.length <= this.limits.maxBatchRecords && bytes + next.bytes <= this.limits.maxBatchBytes;
      if (count > 0 && !fits) break;
      rows += next.rows.length;
      bytes += next.bytes;
      count++;
    }
    return this.queue.splice(0, count);
  }

  private async commitOneBatch(batch: readonly Append<Row>[]): Promise<void> {
    const rows = batch.length === 1 ? batch[0].rows : batch.flatMap((a) => a.rows);
    let sequence: number;
    try {
      sequence = await this.commit(rows);
    } catch (err) {
      this.counters.failedCommits++;
      const failure = new EventLogWriteFailed(rows.length, { cause: err });
      for (const a of batch) a.reject(failure);
      return;
    }
    this.counters.commits++;
    this.counters.records += rows.length;
    this.counters.largestBatch = Math.max(this.counters.largestBatch, rows.length);
    for (const a of batch) {
      const sequences = new Array<number>(a.rows.length);
      for (let i = 0; i < sequences.length; i++) sequences[i] = sequence++;
      a.resolve(sequences);
    }
  }
}
