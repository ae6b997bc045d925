import type Database from 'better-sqlite3';
import type { ClaimOptions, DeviceJobResult, ExpandOptions, JobListOptions, JobRecord, JobStatistics, JobStore } from '../jobs.js';
import type { DeviceJobRecord, QueryExpr } from '../query.js';
import {
  DEVICE_JOB_COLUMNS, ENDED_JOB_STATUSES, JOB_COLUMNS, JOB_REPLACE_COLUMNS, deviceJobFromRow, jobFromRow, jobReplaceValues,
  jobValues, statisticsFromCounts,
} from '../sql/job-rows.js';

type Db = Database.Database;
type Row = Record<string, unknown>;

/** Compiles a devices condition to a WHERE fragment over `identities`, pushing its values onto `params`. */
export type SqliteConditionCompiler = (expr: QueryExpr, params: unknown[]) => string;

const ENDED = ENDED_JOB_STATUSES.map((s) => `'${s}'`).join(', ');
const DJ_COLS = DEVICE_JOB_COLUMNS.join(', ');

function lease(db: Db, which: string) {
  return db.prepare(`UPDATE job_devices SET status = 'running', lease_owner = @owner, lease_until_ms = @until,
      start_time = COALESCE(start_time, @nowIso), updated_time = @nowIso
    WHERE rowid IN (SELECT rowid FROM job_devices WHERE job_id = @jobId AND ${which} LIMIT @limit) RETURNING ${DJ_COLS}`);
}

function prepare(db: Db) {
  return {
    insert: db.prepare(`INSERT INTO jobs (${JOB_COLUMNS.join(', ')}) VALUES (${JOB_COLUMNS.map(() => '?').join(', ')})
      ON CONFLICT (job_id) DO NOTHING`),
    get: db.prepare('SELECT * FROM jobs WHERE job_id = ?'),
    replace: db.prepare(`UPDATE jobs SET ${JOB_REPLACE_COLUMNS.map((c) => `${c} = ?`).join(', ')} WHERE job_id = ? AND rev = ?`),
    active: db.prepare(`SELECT * FROM jobs WHERE status = 'running' OR (status IN ('queued', 'scheduled') AND start_ms <= ?)
      ORDER BY created_ms, job_id`),
    // Pending rows first, then rows whose lease ran out (their worker died): each a range of the (job_id, status) index.
    leasePending: lease(db, `status = 'pending'`),
    leaseExpired: lease(db, `status = 'running' AND lease_until_ms <= @nowMs`),
    addClaimed: db.prepare('UPDATE jobs SET claimed_count = claimed_count + ? WHERE job_id = ?'),
    finish: db.prepare(`UPDATE job_devices SET status = @status, outcome = @outcome, error = @error, end_time = @nowIso,
      updated_time = @nowIso, lease_owner = NULL, lease_until_ms = NULL
      WHERE job_id = @jobId AND device_id = @deviceId AND module_id = @moduleId AND status = 'running' AND lease_owner = @owner`),
    cancelPending: db.prepare(`UPDATE job_devices SET status = 'canceled', updated_time = ?, end_time = ?
      WHERE job_id = ? AND status IN ('pending', 'scheduled')`),
    release: db.prepare(`UPDATE job_devices SET status = 'pending', lease_owner = NULL, lease_until_ms = NULL
      WHERE status = 'running' AND lease_owner = ?`),
    statistics: db.prepare('SELECT status, COUNT(*) AS n FROM job_devices WHERE job_id = ? GROUP BY status'),
    endedBefore: db.prepare(`SELECT job_id FROM jobs WHERE status IN (${ENDED}) AND end_ms < ? LIMIT 100`).pluck(),
    deleteJob: db.prepare('DELETE FROM jobs WHERE job_id = ?'),
    setExpandAfter: db.prepare('UPDATE jobs SET expand_after = ? WHERE job_id = ?'),
  };
}

/** Jobs on SQLite: one writer, so each synchronous transaction is a lease nobody else can interleave with. */
export class SqliteJobs implements JobStore {
  private stmts?: ReturnType<typeof prepare>;

  constructor(private readonly db: Db, private readonly compileCondition: SqliteConditionCompiler) {}

  /** Prepared on first use: the store is built before migrate() has created the tables. */
  private get s(): ReturnType<typeof prepare> {
    this.stmts ??= prepare(this.db);
    return this.stmts;
  }

  async insert(job: JobRecord): Promise<boolean> {
    return this.s.insert.run(...jobValues(job, 1, job.createdMs)).changes === 1;
  }

  async get(jobId: string): Promise<JobRecord | undefined> {
    const r = this.s.get.get(jobId) as Row | undefined;
    return r ? jobFromRow(r) : undefined;
  }

  async list(o: JobListOptions): Promise<JobRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (o.jobType) { where.push('job_type = ?'); params.push(o.jobType); }
    if (o.status) { where.push('status = ?'); params.push(o.status); }
    if (o.after) { where.push('(created_ms, job_id) > (?, ?)'); params.push(o.after.createdMs, o.after.jobId); }
    const sql = `SELECT * FROM jobs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_ms, job_id LIMIT ?`;
    return (this.db.prepare(sql).all(...params, o.limit) as Row[]).map(jobFromRow);
  }

  async replace(job: JobRecord, expectedRev: number): Promise<boolean> {
    return this.s.replace.run(...jobReplaceValues(job, expectedRev + 1, Date.now()), job.jobId, expectedRev).changes === 1;
  }

  async active(nowMs: number): Promise<JobRecord[]> {
    return (this.s.active.all(nowMs) as Row[]).map(jobFromRow);
  }

  async expand(o: ExpandOptions): Promise<number> {
    return this.db.transaction(() => {
      const job = this.s.get.get(o.jobId) as Row | undefined;
      if (!job || job.status !== 'running' || job.expand_after === null) return 0;
      // Anonymous parameters, in the order they appear in the text (better-sqlite3 binds no ?NNN from an array).
      const params: unknown[] = [o.jobId, job.job_type, o.nowIso, o.nowIso, job.expand_after];
      const condition = o.where ? `AND (${this.compileCondition(o.where, params)})` : '';
      params.push(o.limit);
      const added = this.db.prepare(`INSERT INTO job_devices (job_id, device_id, module_id, job_type, status, created_time, updated_time)
        SELECT ?, device_id, '', ?, 'pending', ?, ? FROM identities
        WHERE module_id = '' AND device_id > ? ${condition} ORDER BY device_id LIMIT ?
        ON CONFLICT DO NOTHING RETURNING device_id`).pluck().all(...params) as string[];
      let last: string | null = null;
      for (const id of added) if (last === null || id > last) last = id;
      this.s.setExpandAfter.run(added.length < o.limit ? null : last, o.jobId);
      return added.length;
    }).immediate();
  }

  async claim(o: ClaimOptions): Promise<DeviceJobRecord[]> {
    return this.db.transaction(() => {
      const job = this.s.get.get(o.jobId) as Row | undefined;
      if (!job || job.status !== 'running') return [];
      const room = o.maxClaimedCount === undefined ? o.limit : Math.min(o.limit, o.maxClaimedCount - Number(job.claimed_count));
      if (room <= 0) return [];
      const args = { jobId: o.jobId, owner: o.owner, until: o.nowMs + o.leaseMs, nowIso: o.nowIso, nowMs: o.nowMs };
      const rows = this.s.leasePending.all({ ...args, limit: room }) as Row[];
      if (rows.length < room) rows.push(...this.s.leaseExpired.all({ ...args, limit: room - rows.length }) as Row[]);
      if (rows.length) this.s.addClaimed.run(rows.length, o.jobId);
      return rows.map(deviceJobFromRow);
    }).immediate();
  }

  async finish(jobId: string, owner: string, results: readonly DeviceJobResult[], nowIso: string): Promise<number> {
    return this.db.transaction(() => {
      let n = 0;
      for (const r of results) {
        n += this.s.finish.run({
          jobId, owner, nowIso, deviceId: r.deviceId, moduleId: r.moduleId, status: r.status,
          outcome: r.outcome === null ? null : JSON.stringify(r.outcome), error: r.error === null ? null : JSON.stringify(r.error),
        }).changes;
      }
      return n;
    }).immediate();
  }

  async cancelPending(jobId: string, nowIso: string): Promise<number> {
    return this.s.cancelPending.run(nowIso, nowIso, jobId).changes;
  }

  async release(owner: string): Promise<number> {
    return this.s.release.run(owner).changes;
  }

  async statistics(jobId: string): Promise<JobStatistics> {
    return statisticsFromCounts(this.s.statistics.all(jobId) as Row[]);
  }

  async deleteEnded(endedBeforeMs: number): Promise<number> {
    let total = 0;
    for (;;) {
      const ids = this.s.endedBefore.all(endedBeforeMs) as string[];
      if (ids.length === 0) return total;
      this.db.transaction(() => { for (const id of ids) this.s.deleteJob.run(id); }).immediate();
      total += ids.length;
    }
  }
}
