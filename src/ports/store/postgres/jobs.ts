import type pg from 'pg';
import type { ClaimOptions, DeviceJobResult, ExpandOptions, JobListOptions, JobRecord, JobStatistics, JobStore } from '../jobs.js';
import type { DeviceJobRecord, QueryExpr } from '../query.js';
import {
  DEVICE_JOB_COLUMNS, ENDED_JOB_STATUSES, JOB_COLUMNS, JOB_REPLACE_COLUMNS, deviceJobFromRow, jobFromRow, jobReplaceValues,
  jobValues, statisticsFromCounts,
} from '../sql/job-rows.js';
import { inTransaction } from './tx.js';

type Row = Record<string, unknown>;

/** Compiles a devices condition to a WHERE fragment over `identities`, pushing its values onto `params` ($n). */
export type PostgresConditionCompiler = (expr: QueryExpr, params: unknown[]) => string;

const ENDED = ENDED_JOB_STATUSES.map((s) => `'${s}'`).join(', ');
const JSON_COLUMNS = new Set(['request', 'statistics']);
const cast = (c: string, i: number): string => (JSON_COLUMNS.has(c) ? `$${i}::jsonb` : `$${i}`);

const SQL = {
  insert: `INSERT INTO jobs (${JOB_COLUMNS.join(', ')}) VALUES (${JOB_COLUMNS.map((c, i) => cast(c, i + 1)).join(', ')})
    ON CONFLICT (job_id) DO NOTHING`,
  get: 'SELECT * FROM jobs WHERE job_id = $1',
  lockJob: 'SELECT * FROM jobs WHERE job_id = $1 FOR UPDATE',
  replace: `UPDATE jobs SET ${JOB_REPLACE_COLUMNS.map((c, i) => `${c} = ${cast(c, i + 1)}`).join(', ')}
    WHERE job_id = $${JOB_REPLACE_COLUMNS.length + 1} AND rev = $${JOB_REPLACE_COLUMNS.length + 2}`,
  active: `SELECT * FROM jobs WHERE status = 'running' OR (status IN ('queued', 'scheduled') AND start_ms <= $1)
    ORDER BY created_ms, job_id`,
  // SKIP LOCKED: workers on other nodes claiming the same job at once each take different rows instead of waiting.
  claim: `UPDATE job_devices d SET status = 'running', lease_owner = $2, lease_until_ms = $3,
      start_time = COALESCE(d.start_time, $4), updated_time = $4
    WHERE (d.job_id, d.device_id, d.module_id) IN (
      SELECT job_id, device_id, module_id FROM job_devices WHERE job_id = $1
        AND (status = 'pending' OR (status = 'running' AND lease_until_ms <= $5)) LIMIT $6 FOR UPDATE SKIP LOCKED)
    RETURNING ${DEVICE_JOB_COLUMNS.map((c) => `d.${c}`).join(', ')}`,
  addClaimed: 'UPDATE jobs SET claimed_count = claimed_count + $1 WHERE job_id = $2',
  finish: `UPDATE job_devices d SET status = r.status, outcome = r.outcome::jsonb, error = r.error::jsonb, end_time = $3,
      updated_time = $3, lease_owner = NULL, lease_until_ms = NULL
    FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::text[]) AS r(device_id, module_id, status, outcome, error)
    WHERE d.job_id = $1 AND d.device_id = r.device_id AND d.module_id = r.module_id AND d.status = 'running' AND d.lease_owner = $2`,
  cancelPending: `UPDATE job_devices SET status = 'canceled', updated_time = $2, end_time = $2
    WHERE job_id = $1 AND status IN ('pending', 'scheduled')`,
  release: `UPDATE job_devices SET status = 'pending', lease_owner = NULL, lease_until_ms = NULL
    WHERE status = 'running' AND lease_owner = $1`,
  statistics: 'SELECT status, count(*)::bigint AS n FROM job_devices WHERE job_id = $1 GROUP BY status',
  deleteEnded: `DELETE FROM jobs WHERE job_id IN (SELECT job_id FROM jobs WHERE status IN (${ENDED}) AND end_ms < $1 LIMIT 100)`,
  setExpandAfter: 'UPDATE jobs SET expand_after = $1 WHERE job_id = $2',
};

/** Jobs on PostgreSQL: claims lease rows with FOR UPDATE SKIP LOCKED; expansion serializes on the job row. */
export class PostgresJobs implements JobStore {
  constructor(private readonly pool: pg.Pool, private readonly compileCondition: PostgresConditionCompiler) {}

  async insert(job: JobRecord): Promise<boolean> {
    return ((await this.pool.query(SQL.insert, jobValues(job, 1, job.createdMs))).rowCount ?? 0) === 1;
  }

  async get(jobId: string): Promise<JobRecord | undefined> {
    const r = (await this.pool.query<Row>(SQL.get, [jobId])).rows[0];
    return r ? jobFromRow(r) : undefined;
  }

  async list(o: JobListOptions): Promise<JobRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const p = (v: unknown): string => { params.push(v); return `$${params.length}`; };
    if (o.jobType) where.push(`job_type = ${p(o.jobType)}`);
    if (o.status) where.push(`status = ${p(o.status)}`);
    if (o.after) where.push(`(created_ms, job_id) > (${p(o.after.createdMs)}::bigint, ${p(o.after.jobId)}::text)`);
    const sql = `SELECT * FROM jobs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_ms, job_id LIMIT ${p(o.limit)}`;
    return (await this.pool.query<Row>(sql, params)).rows.map(jobFromRow);
  }

  async replace(job: JobRecord, expectedRev: number): Promise<boolean> {
    const values = [...jobReplaceValues(job, expectedRev + 1, Date.now()), job.jobId, expectedRev];
    return ((await this.pool.query(SQL.replace, values)).rowCount ?? 0) === 1;
  }

  async active(nowMs: number): Promise<JobRecord[]> {
    return (await this.pool.query<Row>(SQL.active, [nowMs])).rows.map(jobFromRow);
  }

  async expand(o: ExpandOptions): Promise<number> {
    return inTransaction(this.pool, async (c) => {
      const job = (await c.query<Row>(SQL.lockJob, [o.jobId])).rows[0];
      if (!job || job.status !== 'running' || job.expand_after === null) return 0;
      const params: unknown[] = [o.jobId, job.job_type, o.nowIso, job.expand_after];
      const condition = o.where ? `AND (${this.compileCondition(o.where, params)})` : '';
      params.push(o.limit);
      const added = (await c.query<{ device_id: string }>(`INSERT INTO job_devices
          (job_id, device_id, module_id, job_type, status, created_time, updated_time)
        SELECT $1, device_id, '', $2, 'pending', $3, $3 FROM identities
        WHERE module_id = '' AND device_id > $4 ${condition} ORDER BY device_id LIMIT $${params.length}
        ON CONFLICT DO NOTHING RETURNING device_id`, params)).rows;
      let last: string | null = null;
      for (const r of added) if (last === null || r.device_id > last) last = r.device_id;
      await c.query(SQL.setExpandAfter, [added.length < o.limit ? null : last, o.jobId]);
      return added.length;
    });
  }

  async claim(o: ClaimOptions): Promise<DeviceJobRecord[]> {
    return inTransaction(this.pool, async (c) => {
      // The job row is the rate limit's counter: claims of one job take turns on it, briefly.
      const job = (await c.query<Row>(SQL.lockJob, [o.jobId])).rows[0];
      if (!job || job.status !== 'running') return [];
      const room = o.maxClaimedCount === undefined ? o.limit : Math.min(o.limit, o.maxClaimedCount - Number(job.claimed_count));
      if (room <= 0) return [];
      const rows = (await c.query<Row>(SQL.claim, [o.jobId, o.owner, o.nowMs + o.leaseMs, o.nowIso, o.nowMs, room])).rows;
      if (rows.length) await c.query(SQL.addClaimed, [rows.length, o.jobId]);
      return rows.map(deviceJobFromRow);
    });
  }

  async finish(jobId: string, owner: string, results: readonly DeviceJobResult[], nowIso: string): Promise<number> {
    if (results.length === 0) return 0;
    const text = (v: object | null): string | null => (v === null ? null : JSON.stringify(v));
    const r = await this.pool.query(SQL.finish, [
      jobId, owner, nowIso, results.map((x) => x.deviceId), results.map((x) => x.moduleId), results.map((x) => x.status),
      results.map((x) => text(x.outcome)), results.map((x) => text(x.error)),
    ]);
    return r.rowCount ?? 0;
  }

  async cancelPending(jobId: string, nowIso: string): Promise<number> {
    return (await this.pool.query(SQL.cancelPending, [jobId, nowIso])).rowCount ?? 0;
  }

  async release(owner: string): Promise<number> {
    return (await this.pool.query(SQL.release, [owner])).rowCount ?? 0;
  }

  async statistics(jobId: string): Promise<JobStatistics> {
    return statisticsFromCounts((await this.pool.query<Row>(SQL.statistics, [jobId])).rows);
  }

  async deleteEnded(endedBeforeMs: number): Promise<number> {
    let total = 0;
    for (;;) {
      const n = (await this.pool.query(SQL.deleteEnded, [endedBeforeMs])).rowCount ?? 0;
      if (n === 0) return total;
      total += n;
    }
  }
}
