import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type {
  C2dCounts, C2dEnqueueResult, C2dFeedback, C2dMessage, C2dNewMessage, C2dOutcome, C2dSettlement, C2dState, C2dStore,
  C2dSweep, C2dSweepResult,
} from '../c2d.js';
import type { IdentityKey } from '../index.js';
import {
  C2D_COLUMNS, C2D_INSERT_COLUMNS, FEEDBACK_COLUMNS, FINISHED_RETURNING, PENDING, available, c2dFromRow, c2dValues,
  emptyCounts, feedbackFromRow, feedbackValues, finishedFromRow,
} from '../sql/c2d-rows.js';
import { inTransaction } from './tx.js';

type Row = Record<string, unknown>;

/** Identities a sweep pass locks and settles in one transaction. */
const SWEEP_KEYS = 500;
/** Rows a delete pass removes in one statement. */
const DELETE_BATCH = 5000;
const KEY = 'device_id = $1 AND module_id = $2';
/** The identities named by two parallel text arrays. */
const KEYS_IN = (first: number): string =>
  `(device_id, module_id) IN (SELECT * FROM unnest($${first}::text[], $${first + 1}::text[]))`;
const FINISH = `SET state = $3, lock_token = NULL, lock_until_ms = NULL, updated_ms = $4`;

const SQL = {
  // Every write to one identity's inbox first takes its identity row: writers of one inbox take turns, so the depth
  // check and the recount see every committed message. NO KEY UPDATE leaves foreign-key checks unblocked.
  lockIdentity: `SELECT c2d_count FROM identities WHERE ${KEY} FOR NO KEY UPDATE`,
  pendingLive: `SELECT count(*)::integer AS n FROM c2d_messages WHERE ${KEY} AND ${PENDING} AND expiry_ms > $3`,
  insert: `INSERT INTO c2d_messages (${C2D_INSERT_COLUMNS.join(', ')})
    VALUES (${C2D_INSERT_COLUMNS.map((_, i) => `$${i + 1}`).join(', ')})`,
  recount: `UPDATE identities i SET c2d_count = (SELECT count(*) FROM c2d_messages m
    WHERE m.device_id = i.device_id AND m.module_id = i.module_id AND m.${PENDING})`,
  expireOf: `UPDATE c2d_messages ${FINISH} WHERE ${KEY} AND ${available('$4')} AND expiry_ms <= $4 ${FINISHED_RETURNING}`,
  deadLetterOf: `UPDATE c2d_messages ${FINISH} WHERE ${KEY} AND ${available('$4')} AND delivery_count >= $5 ${FINISHED_RETURNING}`,
  lockFirst: `UPDATE c2d_messages
    SET state = 'locked', lock_token = $3, lock_until_ms = $4, delivery_count = delivery_count + 1, updated_ms = $5
    WHERE seq = (SELECT seq FROM c2d_messages WHERE ${KEY} AND ${available('$5')} AND expiry_ms > $5 AND delivery_count < $6
      ORDER BY seq LIMIT 1)
    RETURNING ${C2D_COLUMNS.join(', ')}`,
  settle: `UPDATE c2d_messages SET state = $3, lock_token = NULL, lock_until_ms = NULL, updated_ms = $4
    WHERE ${KEY} AND state = 'locked' AND lock_token = $5 AND lock_until_ms > $4 ${FINISHED_RETURNING}`,
  purge: `DELETE FROM c2d_messages WHERE ${KEY} AND ${PENDING}`,
  sweepKeys: `SELECT device_id, module_id FROM identities WHERE (device_id, module_id) IN (
      SELECT device_id, module_id FROM c2d_messages WHERE ${PENDING} AND ${available('$1')} AND (expiry_ms <= $1 OR delivery_count >= $2)
      LIMIT $3)
    ORDER BY device_id, module_id FOR NO KEY UPDATE`,
  expireIn: `UPDATE c2d_messages ${FINISH} WHERE ${KEYS_IN(1)} AND ${available('$4')} AND expiry_ms <= $4 ${FINISHED_RETURNING}`,
  deadLetterIn: `UPDATE c2d_messages ${FINISH} WHERE ${KEYS_IN(1)} AND ${available('$4')} AND delivery_count >= $5 ${FINISHED_RETURNING}`,
  deleteFinished: `DELETE FROM c2d_messages WHERE seq IN (SELECT seq FROM c2d_messages
    WHERE state NOT IN ('enqueued', 'locked') AND updated_ms < $1 LIMIT $2)`,
  deleteFeedback: 'DELETE FROM c2d_feedback WHERE seq IN (SELECT seq FROM c2d_feedback WHERE outcome_ms < $1 LIMIT $2)',
  countsOf: `SELECT state, count(*)::integer AS n FROM c2d_messages WHERE ${KEY} GROUP BY state`,
  countsAll: 'SELECT state, count(*)::integer AS n FROM c2d_messages GROUP BY state',
  // SKIP LOCKED: two nodes reading feedback at once each take a different batch instead of waiting.
  lockFeedback: `UPDATE c2d_feedback SET lock_token = $1, lock_until_ms = $2
    WHERE seq IN (SELECT seq FROM c2d_feedback WHERE lock_token IS NULL OR lock_until_ms <= $3 ORDER BY seq LIMIT $4
      FOR UPDATE SKIP LOCKED)
    RETURNING ${FEEDBACK_COLUMNS.join(', ')}`,
  completeFeedback: 'DELETE FROM c2d_feedback WHERE lock_token = $1 AND lock_until_ms > $2',
  abandonFeedback: 'UPDATE c2d_feedback SET lock_token = NULL, lock_until_ms = NULL WHERE lock_token = $1 AND lock_until_ms > $2',
} as const;

/** Appends the feedback the finished messages ask for, inside the caller's transaction. */
async function appendFeedback(c: pg.PoolClient, rows: readonly Row[], outcome: C2dOutcome, nowMs: number): Promise<void> {
  const values = feedbackValues(rows.map(finishedFromRow), outcome, nowMs);
  if (values.length === 0) return;
  const width = FEEDBACK_COLUMNS.length - 1;
  const tuples = values.map((_, r) => `(${Array.from({ length: width }, (_v, i) => `$${r * width + i + 1}`).join(', ')})`);
  await c.query(`INSERT INTO c2d_feedback (${FEEDBACK_COLUMNS.slice(1).join(', ')}) VALUES ${tuples.join(', ')}`, values.flat());
}

async function recountOne(c: pg.PoolClient, key: IdentityKey): Promise<void> {
  await c.query(`${SQL.recount} WHERE i.device_id = $1 AND i.module_id = $2`, [key.deviceId, key.moduleId]);
}

/** The C2D inbox on PostgreSQL; safe with several hub nodes on one database. */
export class PostgresC2d implements C2dStore {
  constructor(private readonly pool: pg.Pool) {}

  async enqueue(m: C2dNewMessage, maxDepth: number): Promise<C2dEnqueueResult> {
    return inTransaction(this.pool, async (c): Promise<C2dEnqueueResult> => {
      const key = [m.deviceId, m.moduleId];
      if ((await c.query(SQL.lockIdentity, key)).rowCount === 0) return 'no-identity';
      const { rows } = await c.query<{ n: number }>(SQL.pendingLive, [...key, m.enqueuedMs]);
      if (rows[0].n >= maxDepth) return 'queue-full';
      await c.query(SQL.insert, c2dValues(m));
      await recountOne(c, m);
      return 'enqueued';
    });
  }

  async lockNext(key: IdentityKey, nowMs: number, lockUntilMs: number, maxDeliveryCount: number): Promise<C2dMessage | undefined> {
    const k = [key.deviceId, key.moduleId];
    return inTransaction(this.pool, async (c) => {
      // c2d_count is the pending count: nothing pending, nothing to expire, dead-letter or hand out.
      const { rows: ids } = await c.query<{ c2d_count: number }>(SQL.lockIdentity, k);
      if (!ids[0]?.c2d_count) return undefined;
      await appendFeedback(c, (await c.query<Row>(SQL.expireOf, [...k, 'expired', nowMs])).rows, 'expired', nowMs);
      const dead = await c.query<Row>(SQL.deadLetterOf, [...k, 'deadLettered', nowMs, maxDeliveryCount]);
      await appendFeedback(c, dead.rows, 'deadLettered', nowMs);
      const { rows } = await c.query<Row>(SQL.lockFirst, [...k, randomUUID(), lockUntilMs, nowMs, maxDeliveryCount]);
      await recountOne(c, key);
      return rows.length ? c2dFromRow(rows[0]) : undefined;
    });
  }

  async settle(key: IdentityKey, lockToken: string, settlement: C2dSettlement, nowMs: number): Promise<boolean> {
    const state: C2dState = settlement === 'abandoned' ? 'enqueued' : settlement;
    return inTransaction(this.pool, async (c) => {
      if ((await c.query(SQL.lockIdentity, [key.deviceId, key.moduleId])).rowCount === 0) return false;
      const { rows } = await c.query<Row>(SQL.settle, [key.deviceId, key.moduleId, state, nowMs, lockToken]);
      if (rows.length === 0) return false;
      if (settlement !== 'abandoned') {
        await appendFeedback(c, rows, settlement, nowMs);
        await recountOne(c, key);
      }
      return true;
    });
  }

  async purge(key: IdentityKey): Promise<number> {
    return inTransaction(this.pool, async (c) => {
      if ((await c.query(SQL.lockIdentity, [key.deviceId, key.moduleId])).rowCount === 0) return 0;
      const r = await c.query(SQL.purge, [key.deviceId, key.moduleId]);
      await recountOne(c, key);
      return r.rowCount ?? 0;
    });
  }

  async sweep(o: C2dSweep): Promise<C2dSweepResult> {
    let expired = 0;
    let deadLettered = 0;
    for (;;) {
      const pass = await inTransaction(this.pool, (c) => this.sweepPass(c, o));
      if (pass === undefined) break;
      expired += pass.expired;
      deadLettered += pass.deadLettered;
    }
    const messagesDeleted = await this.deletePasses(SQL.deleteFinished, o.finishedBeforeMs);
    const feedbackDeleted = await this.deletePasses(SQL.deleteFeedback, o.feedbackBeforeMs);
    return { expired, deadLettered, messagesDeleted, feedbackDeleted };
  }

  /** Locks a batch of identities with messages to expire or dead-letter (in key order), and settles them all. */
  private async sweepPass(c: pg.PoolClient, o: C2dSweep): Promise<{ expired: number; deadLettered: number } | undefined> {
    const { rows: keys } = await c.query<{ device_id: string; module_id: string }>(SQL.sweepKeys, [o.nowMs, o.maxDeliveryCount, SWEEP_KEYS]);
    if (keys.length === 0) return undefined;
    const arrays = [keys.map((k) => k.device_id), keys.map((k) => k.module_id)];
    const expired = await c.query<Row>(SQL.expireIn, [...arrays, 'expired', o.nowMs]);
    await appendFeedback(c, expired.rows, 'expired', o.nowMs);
    const dead = await c.query<Row>(SQL.deadLetterIn, [...arrays, 'deadLettered', o.nowMs, o.maxDeliveryCount]);
    await appendFeedback(c, dead.rows, 'deadLettered', o.nowMs);
    await c.query(`${SQL.recount} WHERE (i.device_id, i.module_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))`, arrays);
    return { expired: expired.rows.length, deadLettered: dead.rows.length };
  }

  private async deletePasses(sql: string, beforeMs: number): Promise<number> {
    let total = 0;
    for (;;) {
      const n = (await this.pool.query(sql, [beforeMs, DELETE_BATCH])).rowCount ?? 0;
      total += n;
      if (n < DELETE_BATCH) return total;
    }
  }

  async counts(key?: IdentityKey): Promise<C2dCounts> {
    const { rows } = key
      ? await this.pool.query<{ state: C2dState; n: number }>(SQL.countsOf, [key.deviceId, key.moduleId])
      : await this.pool.query<{ state: C2dState; n: number }>(SQL.countsAll);
    const out = emptyCounts();
    for (const r of rows) out[r.state] = r.n;
    return out;
  }

  async lockFeedback(nowMs: number, lockUntilMs: number, max: number): Promise<{ lockToken: string; records: C2dFeedback[] } | undefined> {
    const token = randomUUID();
    const { rows } = await this.pool.query<Row>(SQL.lockFeedback, [token, lockUntilMs, nowMs, max]);
    if (rows.length === 0) return undefined;
    return { lockToken: token, records: rows.map(feedbackFromRow).sort((a, b) => a.seq - b.seq) };
  }

  async completeFeedback(lockToken: string, nowMs: number): Promise<boolean> {
    return ((await this.pool.query(SQL.completeFeedback, [lockToken, nowMs])).rowCount ?? 0) > 0;
  }

  async abandonFeedback(lockToken: string, nowMs: number): Promise<boolean> {
    return ((await this.pool.query(SQL.abandonFeedback, [lockToken, nowMs])).rowCount ?? 0) > 0;
  }
}
