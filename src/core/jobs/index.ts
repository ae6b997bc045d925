import { JobAlreadyExists, JobNotFound } from '../errors/index.js';
import type { TwinLimits } from '../twins/index.js';
import { isoTime, type Clock } from '../../ports/clock/index.js';
import type { Store } from '../../ports/store/index.js';
import type { JobRecord, JobStatistics, JobStatus, JobType } from '../../ports/store/jobs.js';
import { parseJobRequest } from './request.js';
import { jobEventBody, jobView } from './view.js';
import type { SystemEvents } from '../events/index.js';

export { JobRunner, type JobRunnerDeps } from './runner.js';
export { deviceJobView, jobView } from './view.js';
export { DEFAULT_MAX_EXECUTION_SECONDS, parseJobRequest, validateJobId } from './request.js';
export type { JobRecord, JobStatus, JobType } from '../../ports/store/jobs.js';

export type JobView = ReturnType<typeof jobView>;

export interface JobsDeps {
  readonly store: Store;
  readonly clock: Clock;
  readonly limits: TwinLimits;
  /** Told when a job is scheduled, so this node starts it without waiting for its next look. */
  readonly onScheduled?: () => void;
  /** Where job life-cycle events go (the EventLog). */
  readonly events?: SystemEvents;
}

export const JOB_STATUSES: readonly JobStatus[] = ['queued', 'scheduled', 'running', 'completed', 'failed', 'cancelled'];
export const JOB_TYPES: readonly JobType[] = ['scheduleUpdateTwin', 'scheduleDeviceMethod'];
const ACTIVE: readonly JobStatus[] = ['queued', 'scheduled', 'running'];
/**
 * How long a running job's statistics are reused: counting a million device rows takes tens of milliseconds, and
 * a caller polling a job should not slow the job down. Ended jobs keep their final statistics in the job row.
 */
const STATISTICS_TTL_MS = 1000;

/** Jobs v2: schedule, read, cancel and list jobs; JobRunner does the work. */
export class Jobs {
  private readonly statistics = new Map<string, { atMs: number; value: JobStatistics }>();

  constructor(private readonly deps: JobsDeps) {}

  /** Stores a new job (400004 for a bad request, 409005 for an id in use) and returns its JobResponse. */
  async schedule(jobId: string, body: unknown): Promise<JobView> {
    const job = parseJobRequest(jobId, body, this.deps.clock.now(), this.deps.limits);
    if (!(await this.deps.store.jobs.insert(job))) throw new JobAlreadyExists(job.jobId);
    this.deps.onScheduled?.();
    void this.deps.events?.job('jobCreated', jobEventBody(job));
    return this.view(job);
  }

  /** The job with its device statistics; 404002 when unknown. */
  async get(jobId: string): Promise<JobView> {
    const job = await this.deps.store.jobs.get(jobId);
    if (!job) throw new JobNotFound(jobId);
    return this.view(job);
  }

  /**
   * Cancels a job that has not ended: no device starts after this returns; devices already running finish. A job
   * that has ended is returned as it is.
   */
  async cancel(jobId: string): Promise<JobView> {
    for (;;) {
      const job = await this.deps.store.jobs.get(jobId);
      if (!job) throw new JobNotFound(jobId);
      if (!ACTIVE.includes(job.status)) return this.view(job);
      const now = this.deps.clock.now();
      const cancelled: JobRecord = { ...job, status: 'cancelled', endMs: now };
      if (await this.deps.store.jobs.replace(cancelled, job.rev)) {
        await this.deps.store.jobs.cancelPending(jobId, isoTime(now));
        void this.deps.events?.job('jobCancelled', jobEventBody(cancelled));
        return this.view({ ...cancelled, rev: job.rev + 1 });
      }
    }
  }

  /** A page of jobs in creation order, optionally of one type and status; `after` continues a listing. */
  async list(o: { jobType?: JobType; status?: JobStatus; limit: number; after?: { createdMs: number; jobId: string } }):
  Promise<{ items: JobView[]; after?: { createdMs: number; jobId: string } }> {
    const jobs = await this.deps.store.jobs.list(o);
    const items = await Promise.all(jobs.map((j) => this.view(j)));
    const last = jobs[jobs.length - 1];
    return { items, after: last && jobs.length === o.limit ? { createdMs: last.createdMs, jobId: last.jobId } : undefined };
  }

  private async view(job: JobRecord): Promise<JobView> {
    return jobView(job, job.statistics ?? await this.statisticsOf(job));
  }

  private async statisticsOf(job: JobRecord): Promise<JobStatistics> {
    const now = this.deps.clock.now();
    const cached = this.statistics.get(job.jobId);
    if (cached && job.status === 'running' && now - cached.atMs < STATISTICS_TTL_MS) return cached.value;
    const value = await this.deps.store.jobs.statistics(job.jobId);
    if (job.status === 'running') this.statistics.set(job.jobId, { atMs: now, value });
    else this.statistics.delete(job.jobId);
    for (const [id, c] of this.statistics) if (now - c.atMs >= STATISTICS_TTL_MS) this.statistics.delete(id);
    return value;
  }
}
