import type { SystemEvents } from '../events/index.js';
import { jobEventBody } from './view.js';
import { randomUUID } from 'node:crypto';
import { CorralError } from '../errors/index.js';
import type { Methods } from '../methods/index.js';
import { parseCondition } from '../query/index.js';
import { parseTwinChange, type TwinChange, type TwinLimits, type Twins } from '../twins/index.js';
import { isoTime, type Clock } from '../../ports/clock/index.js';
import { identityKeyText, type JsonObject, type Store } from '../../ports/store/index.js';
import type { DeviceJobResult, JobRecord } from '../../ports/store/jobs.js';
import type { DeviceJobRecord, QueryExpr } from '../../ports/store/query.js';

/** Device rows a twin job patches per batch: one read and one write transaction each. */
const TWIN_BATCH = 1000;
/** Devices added to a job per expansion step. */
const EXPAND_CHUNK = 10_000;
/** Method calls a node keeps in flight per job. */
const METHOD_IN_FLIGHT = 256;
/** Twin batches a node keeps in flight per job: the database (PostgreSQL's processes) works on several at once. */
const TWIN_BATCHES_IN_FLIGHT = 3;
const TWIN_LEASE_MS = 60_000;
/** Ended jobs are kept 30 days, as IoT Hub keeps job history. */
const HISTORY_MS = 30 * 24 * 3600_000;
const RETENTION_EVERY_MS = 3600_000;

export interface JobRunnerDeps {
  readonly store: Store;
  readonly twins: Twins;
  readonly methods: Methods;
  readonly clock: Clock;
  readonly limits: TwinLimits;
  /** This node's name; leases carry it with a per-process suffix. */
  readonly nodeId: string;
  /** Where job life-cycle events go (the EventLog). */
  readonly events?: SystemEvents;
  /** How often idle workers look for due jobs. */
  readonly pollMs?: number;
  readonly onError?: (err: unknown, jobId: string) => void;
}

/** A failed device part as IoT Hub reports it: `{code, description}` with IoT Hub's error name. */
function errorOf(err: unknown): JsonObject {
  if (err instanceof CorralError) return { code: err.codeName, description: err.message };
  return { code: 'ServerError', description: err instanceof Error ? err.message : String(err) };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs jobs on this node: every node runs one, and they share each job's devices through leases in the Store, so a
 * job survives restarts and spreads over a cluster without a coordinator. Each active job gets a worker that starts
 * it, expands its condition into device rows, claims rows (under the job's rate limit), does the work, records
 * results, and ends the job when nothing is left. Cancellation stops claims at once: a claim needs a running job.
 */
export class JobRunner {
  readonly owner: string;
  private readonly workers = new Map<string, Promise<void>>();
  private readonly conditions = new Map<string, QueryExpr>();
  private timer?: NodeJS.Timeout;
  private stopping = false;
  private ticking = false;
  private lastRetentionMs = 0;

  constructor(private readonly deps: JobRunnerDeps) {
    this.owner = `${deps.nodeId}:${randomUUID().slice(0, 8)}`;
  }

  start(): void {
    this.timer = setInterval(() => this.wake(), this.deps.pollMs ?? 500);
    this.timer.unref();
    this.wake();
  }

  /** Looks for due jobs now (a job was just scheduled here). */
  wake(): void {
    if (this.stopping || this.ticking) return;
    this.ticking = true;
    this.tick().catch((err: unknown) => this.deps.onError?.(err, '')).finally(() => { this.ticking = false; });
  }

  /** Stops claiming, and hands the rows still in hand back as pending for another node or the next start. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    await Promise.race([Promise.allSettled(this.workers.values()), sleep(2000)]);
    await this.deps.store.jobs.release(this.owner);
  }

  private async tick(): Promise<void> {
    const now = this.deps.clock.now();
    for (const job of await this.deps.store.jobs.active(now)) {
      if (this.workers.has(job.jobId)) continue;
      const worker = this.work(job.jobId)
        .catch((err: unknown) => this.deps.onError?.(err, job.jobId))
        .finally(() => this.workers.delete(job.jobId));
      this.workers.set(job.jobId, worker);
    }
    if (now - this.lastRetentionMs > RETENTION_EVERY_MS) {
      this.lastRetentionMs = now;
      await this.deps.store.jobs.deleteEnded(now - HISTORY_MS);
    }
  }

  /** Changes a job under compare-and-set; `change` returns undefined for "leave it". */
  private async transition(jobId: string, change: (job: JobRecord) => JobRecord | undefined): Promise<JobRecord | undefined> {
    for (;;) {
      const job = await this.deps.store.jobs.get(jobId);
      const next = job && change(job);
      if (!job || !next) return job;
      if (await this.deps.store.jobs.replace(next, job.rev)) return { ...next, rev: job.rev + 1 };
    }
  }

  private async work(jobId: string): Promise<void> {
    let started = false;
    const running = await this.transition(jobId, (j) => (j.status === 'queued' || j.status === 'scheduled') && j.startMs <= this.deps.clock.now()
      ? (started = true, { ...j, status: 'running' }) : undefined);
    if (started && running) void this.deps.events?.job('jobRunning', jobEventBody(running));
    const inFlight = new Set<Promise<void>>();
    const results: DeviceJobResult[] = [];
    try {
      while (!this.stopping) {
        const job = await this.deps.store.jobs.get(jobId);
        if (!job || job.status !== 'running') break;
        const now = this.deps.clock.now();
        if (now > job.startMs + job.maxExecutionSeconds * 1000) { await this.expire(job); break; }
        await this.flush(jobId, results);
        const isTwin = job.jobType === 'scheduleUpdateTwin';
        const room = isTwin ? (inFlight.size < TWIN_BATCHES_IN_FLIGHT ? TWIN_BATCH : 0) : METHOD_IN_FLIGHT - inFlight.size;
        const rows = room > 0 ? await this.claim(job, room, now) : [];
        if (rows.length > 0) {
          if (isTwin) this.track(inFlight, this.updateTwins(job, rows).then((r) => { results.push(...r); }));
          else for (const row of rows) this.callMethod(job, row, inFlight, results);
          continue;
        }
        if (inFlight.size > 0) { await Promise.race(inFlight); continue; }
        if (job.expandAfter !== null) { await this.expand(job); continue; }
        const waitMs = this.rateWaitMs(job);
        if (waitMs > 0 && await this.hasPending(jobId)) { await sleep(waitMs); continue; }
        await this.completeIfDone(jobId);
        break;
      }
    } finally {
      await Promise.allSettled(inFlight);
      await this.flush(jobId, results);
    }
  }

  /** The most rows the job may have claimed by now under its rate, with at most a second's burst. */
  private maxClaimed(job: JobRecord, now: number): number | undefined {
    if (job.devicesPerSecond === null) return undefined;
    const byTime = Math.floor(((now - job.startMs) / 1000) * job.devicesPerSecond) + 1;
    return Math.min(byTime, job.claimedCount + Math.max(1, Math.ceil(job.devicesPerSecond)));
  }

  private rateWaitMs(job: JobRecord): number {
    if (job.devicesPerSecond === null) return 0;
    // Long enough for about one device's token; the claim's cap decides what is really allowed.
    return Math.min(1000, Math.max(10, Math.ceil(1000 / job.devicesPerSecond)));
  }

  private async claim(job: JobRecord, limit: number, now: number): Promise<DeviceJobRecord[]> {
    const leaseMs = job.jobType === 'scheduleUpdateTwin' ? TWIN_LEASE_MS : this.methodLeaseMs(job);
    return this.deps.store.jobs.claim({
      jobId: job.jobId, owner: this.owner, limit, maxClaimedCount: this.maxClaimed(job, now), nowMs: now, nowIso: isoTime(now), leaseMs,
    });
  }

  private methodLeaseMs(job: JobRecord): number {
    const call = job.request.cloudToDeviceMethod as { responseTimeoutInSeconds?: number; connectTimeoutInSeconds?: number } | undefined;
    return ((call?.responseTimeoutInSeconds ?? 30) + (call?.connectTimeoutInSeconds ?? 0) + 30) * 1000;
  }

  private condition(job: JobRecord): QueryExpr {
    let c = this.conditions.get(job.jobId);
    if (!c) { c = parseCondition(job.queryCondition); this.conditions.set(job.jobId, c); }
    return c;
  }

  private async expand(job: JobRecord): Promise<void> {
    await this.deps.store.jobs.expand({ jobId: job.jobId, where: this.condition(job), limit: EXPAND_CHUNK, nowIso: isoTime(this.deps.clock.now()) });
  }

  private async updateTwins(job: JobRecord, rows: readonly DeviceJobRecord[]): Promise<DeviceJobResult[]> {
    const change: TwinChange = parseTwinChange(job.request.updateTwin, this.deps.limits);
    const failures = await this.deps.twins.patchMany(rows.map((r) => ({ deviceId: r.deviceId, moduleId: r.moduleId })), change);
    return rows.map((r) => {
      const err = failures.get(identityKeyText(r));
      return { deviceId: r.deviceId, moduleId: r.moduleId, status: err ? 'failed' : 'completed', outcome: null, error: err ? errorOf(err) : null };
    });
  }

  private callMethod(job: JobRecord, row: DeviceJobRecord, inFlight: Set<Promise<void>>, results: DeviceJobResult[]): void {
    const key = { deviceId: row.deviceId, moduleId: row.moduleId };
    this.track(inFlight, this.deps.methods.invoke(key, job.request.cloudToDeviceMethod).then(
      (answer) => { results.push({ ...key, status: 'completed', outcome: { deviceMethodResponse: { status: answer.status, payload: answer.payload } }, error: null }); },
      (err: unknown) => { results.push({ ...key, status: 'failed', outcome: null, error: errorOf(err) }); },
    ));
  }

  /** Keeps `work` in the set until it settles; a failed batch leaves its rows leased, to be claimed again later. */
  private track(inFlight: Set<Promise<void>>, work: Promise<void>): void {
    const tracked: Promise<void> = work
      .catch((err: unknown) => this.deps.onError?.(err, ''))
      .finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
  }

  private async flush(jobId: string, results: DeviceJobResult[]): Promise<void> {
    if (results.length === 0) return;
    const batch = results.splice(0, results.length);
    await this.deps.store.jobs.finish(jobId, this.owner, batch, isoTime(this.deps.clock.now()));
  }

  private async hasPending(jobId: string): Promise<boolean> {
    return (await this.deps.store.jobs.statistics(jobId)).pendingCount > 0;
  }

  /** Ends the job once every device row is finished (rows leased elsewhere keep it running). */
  private async completeIfDone(jobId: string): Promise<void> {
    const stats = await this.deps.store.jobs.statistics(jobId);
    if (stats.pendingCount > 0 || stats.runningCount > 0) return;
    const now = this.deps.clock.now();
    let ended = false;
    const done = await this.transition(jobId, (j) => j.status === 'running' && j.expandAfter === null
      ? (ended = true, { ...j, status: 'completed', endMs: now, statistics: stats }) : undefined);
    if (ended && done) void this.deps.events?.job('jobCompleted', jobEventBody(done, stats));
    this.conditions.delete(jobId);
  }

  /** maxExecutionTimeInSeconds passed: the job fails and its devices not yet started are canceled. */
  private async expire(job: JobRecord): Promise<void> {
    const now = this.deps.clock.now();
    const ended = await this.transition(job.jobId, (j) => j.status === 'running' ? {
      ...j, status: 'failed', endMs: now,
      failureReason: `the job did not finish within maxExecutionTimeInSeconds (${j.maxExecutionSeconds} s)`,
      statusMessage: 'timed out',
    } : undefined);
    if (ended?.status === 'failed') {
      await this.deps.store.jobs.cancelPending(job.jobId, isoTime(now));
      void this.deps.events?.job('jobFailed', jobEventBody(ended));
    }
    this.conditions.delete(job.jobId);
  }
}
