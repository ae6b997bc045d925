import type Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import type {
  C2dCounts, C2dEnqueueResult, C2dFeedback, C2dMessage, C2dNewMessage, C2dOutcome, C2dSettlement, C2dState, C2dStore,
  C2dSweep, C2dSweepResult,
} from '../c2d.js';
import { identityKeyText, type IdentityKey } from '../index.js';
import {
  C2D_COLUMNS, C2D_INSERT_COLUMNS, FEEDBACK_COLUMNS, FINISHED_RETURNING, PENDING, available, c2dFromRow, c2dValues,
  emptyCounts, feedbackFromRow, feedbackValues, finishedFromRow, type FinishedRow,
} from '../sql/c2d-rows.js';

type Db = Database.Database;
type Row = Record<string, unknown>;

/** Rows a sweep pass moves or deletes in one transaction, so writers never wait long behind it. */
const SWEEP_BATCH = 1000;
const KEY = 'device_id = @deviceId AND module_id = @moduleId';

function prepare(db: Db) {
  const finish = (scope: string, extra: string) => db.prepare(`UPDATE c2d_messages
      SET state = @state, lock_token = NULL, lock_until_ms = NULL, updated_ms = @now
      WHERE seq IN (SELECT seq FROM c2d_messages WHERE ${scope} ${available('@now')} AND ${extra} ORDER BY seq LIMIT @limit)
      ${FINISHED_RETURNING}`);
  return {
    identityCount: db.prepare(`SELECT c2d_count FROM identities WHERE ${KEY}`).pluck(),
    pendingLive: db.prepare(`SELECT COUNT(*) FROM c2d_messages WHERE ${KEY} AND ${PENDING} AND expiry_ms > @now`).pluck(),
    insert: db.prepare(`INSERT INTO c2d_messages (${C2D_INSERT_COLUMNS.join(', ')})
      VALUES (${C2D_INSERT_COLUMNS.map(() => '?').join(', ')})`),
    recount: db.prepare(`UPDATE identities SET c2d_count = (SELECT COUNT(*) FROM c2d_messages m
      WHERE m.device_id = @deviceId AND m.module_id = @moduleId AND m.${PENDING}) WHERE ${KEY}`),
    expireOf: finish(`${KEY} AND`, 'expiry_ms <= @now'),
    deadLetterOf: finish(`${KEY} AND`, 'delivery_count >= @max'),
    expireAll: finish('', `expiry_ms <= @now AND ${PENDING}`),
    deadLetterAll: finish('', `delivery_count >= @max AND ${PENDING}`),
    lockFirst: db.prepare(`UPDATE c2d_messages
      SET state = 'locked', lock_token = @token, lock_until_ms = @lockUntil, delivery_count = delivery_count + 1, updated_ms = @now
      WHERE seq = (SELECT seq FROM c2d_messages WHERE ${KEY} AND ${available('@now')}
        AND expiry_ms > @now AND delivery_count < @max ORDER BY seq LIMIT 1)
      RETURNING ${C2D_COLUMNS.join(', ')}`),
    settle: db.prepare(`UPDATE c2d_messages SET state = @state, lock_token = NULL, lock_until_ms = NULL, updated_ms = @now
      WHERE ${KEY} AND state = 'locked' AND lock_token = @token AND lock_until_ms > @now ${FINISHED_RETURNING}`),
    purge: db.prepare(`DELETE FROM c2d_messages WHERE ${KEY} AND ${PENDING}`),
    deleteFinished: db.prepare(`DELETE FROM c2d_messages WHERE seq IN (SELECT seq FROM c2d_messages
      WHERE state NOT IN ('enqueued', 'locked') AND updated_ms < @before LIMIT @limit)`),
    deleteFeedback: db.prepare(`DELETE FROM c2d_feedback WHERE seq IN (SELECT seq FROM c2d_feedback
      WHERE outcome_ms < @before LIMIT @limit)`),
    addFeedback: db.prepare(`INSERT INTO c2d_feedback (${FEEDBACK_COLUMNS.slice(1).join(', ')}) VALUES (?, ?, ?, ?, ?, ?)`),
    countsOf: db.prepare(`SELECT state, COUNT(*) AS n FROM c2d_messages WHERE ${KEY} GROUP BY state`),
    countsAll: db.prepare('SELECT state, COUNT(*) AS n FROM c2d_messages GROUP BY state'),
    lockFeedback: db.prepare(`UPDATE c2d_feedback SET lock_token = @token, lock_until_ms = @lockUntil
      WHERE seq IN (SELECT seq FROM c2d_feedback WHERE lock_token IS NULL OR lock_until_ms <= @now ORDER BY seq LIMIT @max)
      RETURNING ${FEEDBACK_COLUMNS.join(', ')}`),
    completeFeedback: db.prepare('DELETE FROM c2d_feedback WHERE lock_token = @token AND lock_until_ms > @now'),
    abandonFeedback: db.prepare(`UPDATE c2d_feedback SET lock_token = NULL, lock_until_ms = NULL
      WHERE lock_token = @token AND lock_until_ms > @now`),
  };
}

/** The C2D inbox on SQLite. better-sqlite3 is synchronous, so each IMMEDIATE transaction is the only writer. */
export class SqliteC2d implements C2dStore {
  private prepared?: ReturnType<typeof prepare>;

  constructor(private readonly db: Db) {}

  /** Prepared on first use: the store is built before migrate() has created the tables. */
  private get s(): ReturnType<typeof prepare> {
    this.prepared ??= prepare(this.db);
    return this.prepared;
  }

  async enqueue(m: C2dNewMessage, maxDepth: number): Promise<C2dEnqueueResult> {
    const key = { deviceId: m.deviceId, moduleId: m.moduleId };
    return this.db.transaction((): C2dEnqueueResult => {
      if (this.s.identityCount.get(key) === undefined) return 'no-identity';
      if ((this.s.pendingLive.get({ ...key, now: m.enqueuedMs }) as number) >= maxDepth) return 'queue-full';
      this.s.insert.run(...c2dValues(m));
      this.s.recount.run(key);
      return 'enqueued';
    }).immediate();
  }

  async lockNext(key: IdentityKey, nowMs: number, lockUntilMs: number, maxDeliveryCount: number): Promise<C2dMessage | undefined> {
    const k = { deviceId: key.deviceId, moduleId: key.moduleId };
    return this.db.transaction((): C2dMessage | undefined => {
      // c2d_count is the pending count: nothing pending, nothing to expire, dead-letter or hand out.
      const pending = this.s.identityCount.get(k) as number | undefined;
      if (!pending) return undefined;
      const limit = Number.MAX_SAFE_INTEGER;
      this.finish(this.s.expireOf.all({ ...k, now: nowMs, state: 'expired', limit }) as Row[], 'expired', nowMs);
      this.finish(this.s.deadLetterOf.all({ ...k, now: nowMs, state: 'deadLettered', max: maxDeliveryCount, limit }) as Row[], 'deadLettered', nowMs);
      const row = this.s.lockFirst.get({ ...k, now: nowMs, token: randomUUID(), lockUntil: lockUntilMs, max: maxDeliveryCount }) as Row | undefined;
      this.s.recount.run(k);
      return row ? c2dFromRow(row) : undefined;
    }).immediate();
  }

  async settle(key: IdentityKey, lockToken: string, settlement: C2dSettlement, nowMs: number): Promise<boolean> {
    const k = { deviceId: key.deviceId, moduleId: key.moduleId };
    const state: C2dState = settlement === 'abandoned' ? 'enqueued' : settlement;
    return this.db.transaction((): boolean => {
      const rows = this.s.settle.all({ ...k, token: lockToken, now: nowMs, state }) as Row[];
      if (rows.length === 0) return false;
      if (settlement !== 'abandoned') {
        this.finish(rows, settlement, nowMs);
        this.s.recount.run(k);
      }
      return true;
    }).immediate();
  }

  async purge(key: IdentityKey): Promise<number> {
    const k = { deviceId: key.deviceId, moduleId: key.moduleId };
    return this.db.transaction((): number => {
      const n = this.s.purge.run(k).changes;
      this.s.recount.run(k);
      return n;
    }).immediate();
  }

  async sweep(o: C2dSweep): Promise<C2dSweepResult> {
    const expired = this.sweepPasses(() => this.s.expireAll.all({ now: o.nowMs, state: 'expired', limit: SWEEP_BATCH }) as Row[], 'expired', o.nowMs);
    const deadLettered = this.sweepPasses(() => this.s.deadLetterAll.all({
      now: o.nowMs, state: 'deadLettered', max: o.maxDeliveryCount, limit: SWEEP_BATCH,
    }) as Row[], 'deadLettered', o.nowMs);
    const messagesDeleted = this.deletePasses(() => this.s.deleteFinished.run({ before: o.finishedBeforeMs, limit: SWEEP_BATCH }).changes);
    const feedbackDeleted = this.deletePasses(() => this.s.deleteFeedback.run({ before: o.feedbackBeforeMs, limit: SWEEP_BATCH }).changes);
    return { expired, deadLettered, messagesDeleted, feedbackDeleted };
  }

  async counts(key?: IdentityKey): Promise<C2dCounts> {
    const rows = (key ? this.s.countsOf.all({ deviceId: key.deviceId, moduleId: key.moduleId }) : this.s.countsAll.all()) as Row[];
    const out = emptyCounts();
    for (const r of rows) out[r.state as C2dState] = Number(r.n);
    return out;
  }

  async lockFeedback(nowMs: number, lockUntilMs: number, max: number): Promise<{ lockToken: string; records: C2dFeedback[] } | undefined> {
    const token = randomUUID();
    const rows = this.s.lockFeedback.all({ token, lockUntil: lockUntilMs, now: nowMs, max }) as Row[];
    if (rows.length === 0) return undefined;
    return { lockToken: token, records: rows.map(feedbackFromRow).sort((a, b) => a.seq - b.seq) };
  }

  async completeFeedback(lockToken: string, nowMs: number): Promise<boolean> {
    return this.s.completeFeedback.run({ token: lockToken, now: nowMs }).changes > 0;
  }

  async abandonFeedback(lockToken: string, nowMs: number): Promise<boolean> {
    return this.s.abandonFeedback.run({ token: lockToken, now: nowMs }).changes > 0;
  }

  /** Appends the feedback the finished messages ask for. Runs inside the caller's transaction. */
  private finish(rows: readonly Row[], outcome: C2dOutcome, nowMs: number): FinishedRow[] {
    const finished = rows.map(finishedFromRow);
    for (const values of feedbackValues(finished, outcome, nowMs)) this.s.addFeedback.run(...values);
    return finished;
  }

  /** Repeats a batch transition, each batch one transaction with its feedback and recounts; returns rows moved. */
  private sweepPasses(pass: () => Row[], outcome: C2dOutcome, nowMs: number): number {
    let total = 0;
    for (;;) {
      const moved = this.db.transaction((): number => {
        const finished = this.finish(pass(), outcome, nowMs);
        const keys = new Map(finished.map((f) => [identityKeyText(f), { deviceId: f.deviceId, moduleId: f.moduleId }]));
        for (const k of keys.values()) this.s.recount.run(k);
        return finished.length;
      }).immediate();
      total += moved;
      if (moved < SWEEP_BATCH) return total;
    }
  }

  private deletePasses(pass: () => number): number {
    let total = 0;
    for (;;) {
      const n = pass();
      total += n;
      if (n < SWEEP_BATCH) return total;
    }
  }
}
