import type { JetStreamClient, JetStreamManager } from 'nats';
import { BATCH_HEADER, batchLabel, outgoingHeaders, parseBatchLabel, recordsFilter, type OutgoingRecord } from './codec.js';
import type { Ack, Publisher } from './publisher.js';
import { apiErrorCode, lastStoredSequence, NO_MESSAGE_FOUND, scan, type ScanLimits } from './stream.js';

/** JetStream's header for "store only if the stream's last sequence is this" (nats-server, JSExpectedLastSeq). */
const EXPECTED_LAST_SEQUENCE = 'Nats-Expected-Last-Sequence';

/**
 * How a batch of records becomes one all-or-nothing commit on a JetStream 2.9 stream, which has no multi-message
 * transaction (atomic batch publish needs nats-server 2.12).
 *
 * 1. One message per record, so the subject filters a device's records on the server and trims count records.
 *    The port's sequence is the stream sequence: strictly increasing, never reused (the stream keeps last_seq through
 *    purges and deletes), in append order.
 * 2. The records of a commit are published pipelined, each with `Nats-Expected-Last-Sequence` = the sequence before
 *    it. The server stores message i only if message i-1 was the last one stored, so whatever fails, what got stored
 *    is a prefix of the commit, at consecutive sequences known in advance; and a message sent again (after a lost
 *    ack, or sitting in the client's buffer across a reconnect) can never be stored twice or out of place, since its
 *    predecessor is no longer last. That chain is our dedup: no Nats-Msg-Id, which would cost the server memory per
 *    message for its duplicate window and add nothing here.
 * 3. Every message carries `Corral-Batch: <first>-<last>/<writer>`. A commit is complete when its last message is
 *    stored; by (2) that means all of it is. Anyone reading the stream directly can apply that rule.
 * 4. A commit whose acks did not all come back is settled at once: if the stream's last message is the commit's
 *    last, it did commit (only the acks were lost) and the appends resolve; otherwise the part of it that got stored
 *    is deleted and its appends reject. If the server cannot be asked, the appends reject and the writer stays dirty:
 *    the next commit first deletes whatever of the failed one reached the stream meanwhile (it can only ever land at
 *    the tail, by (2)), so a rejected record is never followed by a committed one. The highest message of a commit
 *    is deleted first, so a deletion cut short still leaves the commit incomplete.
 * 5. On open, an incomplete commit at the tail (its writer stopped mid-commit) is deleted the same way.
 *
 * So a stream has one writer, like a SQLite log file: a second writer breaks the first's chain, and the first then
 * refuses to commit (naming the other writer) rather than delete records it did not write. Reads cap at the highest
 * committed sequence this writer knows, so they never see a commit in flight or the remains of a failed one.
 *
 * Known limit: when a commit's acks are lost and the server stays unreachable, its appends reject; should its
 * messages all reach the stream later and this process then stop before its next commit, the next open takes them
 * as committed. The records then exist although their appends failed (at-least-once, as for any retried message).
 */
export class StreamWriter {
  private isDirty = false;

  private constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly publisher: Publisher,
    private readonly stream: string,
    private readonly prefix: string,
    private readonly writer: string,
    private readonly limits: ScanLimits,
    /** The highest committed sequence; reads stop there. */
    private committedSeq: number,
    /** The stream's last_seq as far as this writer knows: the next commit's chain starts after it. */
    private streamLast: number,
  ) {}

  /** Opens the writer on an existing stream, deleting an incomplete commit left at its tail. */
  static async open(js: JetStreamClient, jsm: JetStreamManager, publisher: Publisher, o: {
    stream: string; prefix: string; writer: string; limits: ScanLimits;
  }): Promise<StreamWriter> {
    const make = (committed: number, last: number): StreamWriter =>
      new StreamWriter(js, jsm, publisher, o.stream, o.prefix, o.writer, o.limits, committed, last);
    const probe = make(0, 0);
    // Each round deletes one incomplete commit; only the tail's can be incomplete, so one round is the rule.
    for (let round = 0; round < 3; round++) {
      const tail = await readTail(jsm, o.stream);
      if (tail.incomplete === undefined) return make(tail.committed, tail.lastSeq);
      await probe.deleteCommit(tail.incomplete.first, tail.incomplete.lastStored, tail.incomplete.label);
    }
    throw new Error(`stream '${o.stream}' still ends in an incomplete commit after deleting two: is another writer on it?`);
  }

  /** The highest committed sequence, 0 if none ever was. */
  get committed(): number {
    return this.committedSeq;
  }

  /** Stores all of `rows` at consecutive sequences and resolves with the first, or stores none and rejects. */
  async commit(rows: readonly OutgoingRecord[]): Promise<number> {
    if (this.isDirty) await this.settle(undefined);
    const base = this.streamLast;
    const first = base + 1;
    const last = base + rows.length;
    const label = batchLabel(first, last, this.writer);
    const acks = await this.publisher.publishAll(rows.map((row, i) => {
      const headers = outgoingHeaders(row, label);
      headers.set(EXPECTED_LAST_SEQUENCE, String(base + i));
      return { subject: row.subject, body: row.body, headers };
    }), this.limits.timeoutMs);
    const wrong = acks.findIndex((a, i) => !this.isExpectedAck(a, first + i));
    if (wrong < 0) {
      this.streamLast = last;
      this.committedSeq = last;
      return first;
    }
    this.isDirty = true;
    try {
      if (await this.settle({ last, label })) return first;
    } catch {
      // Stays dirty: the next commit settles first. The append's error is the commit's own failure, below.
    }
    throw new Error(`record ${wrong + 1} of ${rows.length} (sequence ${first + wrong}): ${describeAck(acks[wrong])}`);
  }

  /** Best effort before close: deletes what a failed commit left, if the server can be reached. */
  async tidy(): Promise<void> {
    if (this.isDirty) await this.settle(undefined).catch(() => undefined);
  }

  private isExpectedAck(ack: Ack, seq: number): boolean {
    return ack.ok && ack.stream === this.stream && ack.seq === seq && !ack.duplicate;
  }

  /**
   * Brings the stream's tail in line with what this writer committed. True if `pending` (the commit that just
   * failed) turns out stored whole, which is then committed; otherwise deletes every message after the last known
   * tail (all from failed commits of this writer) and returns false. Throws, staying dirty, when the server cannot be
   * asked or a message there is another writer's.
   */
  private async settle(pending: { last: number; label: string } | undefined): Promise<boolean> {
    const { state } = await this.jsm.streams.info(this.stream);
    const tail = state.last_seq;
    if (tail < this.streamLast) {
      throw new Error(`stream '${this.stream}' went back from sequence ${this.streamLast} to ${tail}: was it deleted and created again?`);
    }
    if (pending !== undefined && tail === pending.last) {
      const msg = await this.jsm.streams.getMessage(this.stream, { seq: tail });
      if (msg.header.get(BATCH_HEADER) === pending.label) {
        this.streamLast = tail;
        this.committedSeq = tail;
        this.isDirty = false;
        return true;
      }
    }
    if (tail > this.streamLast) await this.deleteCommit(this.streamLast + 1, tail, undefined);
    this.streamLast = tail;
    this.isDirty = false;
    return false;
  }

  /**
   * Deletes the messages from..to, which must all be this writer's (and, given `label`, of that commit): the highest of
   * each commit first, so an interrupted deletion leaves every commit it touched incomplete, never a complete commit
   * with a hole.
   */
  private async deleteCommit(from: number, to: number, label: string | undefined): Promise<void> {
    const seqs: number[] = [];
    const tops = new Map<string, number>();
    await scan(this.js, this.jsm, this.stream, {
      from, to, filter: recordsFilter(this.prefix), headersOnly: true, limit: Number.MAX_SAFE_INTEGER, ...this.limits,
    }, (msg) => {
      const seen = msg.headers?.get(BATCH_HEADER) ?? '';
      const batch = parseBatchLabel(seen);
      const isOurs = label === undefined ? batch?.writer === this.writer : seen === label;
      if (batch === undefined || !isOurs) {
        throw new Error(`stream '${this.stream}' has another writer: message ${msg.seq} (${seen || 'no batch header'}) `
          + `is not from this event log (writer ${this.writer}); one event log per stream`);
      }
      seqs.push(msg.seq);
      tops.set(seen, msg.seq);
      return true;
    });
    const firstWave = [...tops.values()];
    for (const seq of firstWave) await this.jsm.streams.deleteMessage(this.stream, seq, false);
    const rest = seqs.filter((s) => !firstWave.includes(s));
    await Promise.all(rest.map((seq) => this.jsm.streams.deleteMessage(this.stream, seq, false)));
  }
}

/** A stream's end as rule 3 judges it: what the writer settles on open, and where a reader of the stream stops. */
export interface Tail {
  /** The highest sequence of a complete commit (or of a message with no batch header); 0 if none ever was. */
  readonly committed: number;
  /** The stream's last_seq. */
  readonly lastSeq: number;
  /** The stream's description (a set's partition is named there). */
  readonly description: string | undefined;
  /** The commit of the last stored message, when incomplete: its writer is mid-commit, or stopped in one. */
  readonly incomplete?: { readonly first: number; readonly lastStored: number; readonly label: string };
}

/**
 * Reads the stream's tail: its last stored message and the commit it belongs to. Two round trips; three when the last
 * sequence was deleted (a failed commit's remains), since finding the last stored one then needs the deleted list.
 */
export async function readTail(jsm: JetStreamManager, stream: string): Promise<Tail> {
  // The first round takes last_seq for the last stored message; if none is there (deleted, or removed since the info
  // by a trim or a settle), the next asks for the deleted list too.
  for (let round = 0; round < 3; round++) {
    const info = await jsm.streams.info(stream, round === 0 ? undefined : { deleted_details: true });
    const { state } = info;
    const found = { lastSeq: state.last_seq, description: info.config.description };
    const last = lastStoredSequence(state);
    if (last === undefined) return { committed: Math.max(0, Math.min(state.last_seq, state.first_seq - 1)), ...found };
    let label: string | undefined;
    try {
      label = (await jsm.streams.getMessage(stream, { seq: last })).header.get(BATCH_HEADER);
    } catch (err) {
      if (apiErrorCode(err) === NO_MESSAGE_FOUND) continue;
      throw err;
    }
    const batch = parseBatchLabel(label);
    if (batch === undefined || batch.last <= last) return { committed: last, ...found };
    return { committed: batch.first - 1, ...found, incomplete: { first: batch.first, lastStored: last, label: label ?? '' } };
  }
  throw new Error(`stream '${stream}': its last message kept disappearing while its tail was read`);
}

function describeAck(ack: Ack): string {
  return ack.ok ? `stored at ${ack.seq} in '${ack.stream}'${ack.duplicate ? ' as a duplicate' : ''}, not where expected` : ack.error;
}
