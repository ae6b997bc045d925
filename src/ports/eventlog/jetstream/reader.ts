import type { JetStreamManager } from 'nats';
import { EventLogClosed, UnknownPartition, type EventLogReader, type ReadOptions, type StoredEvent } from '../index.js';
import { readTail } from './commit-protocol.js';
import { apiErrorCode, STREAM_NOT_FOUND } from './stream.js';
import type { StreamView } from './view.js';

/**
 * A read-only view of another node's partition. Each call first reads the stream's tail and stops at the last commit
 * found complete there (commit-protocol.ts, rule 3), so a commit in flight or a failed one's remains are never read.
 * It never publishes and never creates or changes the stream (its scans use ephemeral in-memory consumers, as the
 * writer's reads do). Rejects with UnknownPartition when the stream is missing or is not that partition's.
 */
export class JetStreamPartitionReader implements EventLogReader {
  private closing: Promise<void> | undefined;

  constructor(
    private readonly view: StreamView,
    private readonly jsm: JetStreamManager,
    readonly partition: string,
    private readonly description: string,
  ) {}

  async read(opts: ReadOptions): Promise<StoredEvent[]> {
    this.assertOpen();
    return this.view.track('read', async () => this.view.read(opts, await this.committed()));
  }

  async lastSequence(): Promise<number> {
    this.assertOpen();
    return this.view.track('tail read', () => this.committed());
  }

  async seekTime(timeMs: number): Promise<number> {
    this.assertOpen();
    return this.view.track('seek', async () => this.view.seekTime(timeMs, await this.committed()));
  }

  /** Waits for calls in flight; afterwards every call rejects with EventLogClosed. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.view.settled();
    return this.closing;
  }

  private async committed(): Promise<number> {
    const stream = this.view.stream;
    try {
      const tail = await readTail(this.jsm, stream);
      if (tail.description !== this.description) {
        throw new UnknownPartition(this.partition, `stream '${stream}' is not its stream (its description is '${tail.description ?? ''}')`);
      }
      return tail.committed;
    } catch (err) {
      if (apiErrorCode(err) === STREAM_NOT_FOUND) throw new UnknownPartition(this.partition, `its stream '${stream}' does not exist`);
      throw err;
    }
  }

  private assertOpen(): void {
    if (this.closing !== undefined) throw new EventLogClosed();
  }
}
