/**
 * Jobs v2 in the Store: the job rows and each device's part in a job (`devices.jobs`). Work is shared between
 * workers (several per node, several nodes) through leases on device rows, claimed atomically (FOR UPDATE SKIP
 * LOCKED on PostgreSQL, the single writer on SQLite): no coordinator.
 */

import type { DeviceJobRecord, QueryExpr } from './query.js';
import type { JsonObject } from './index.js';

export type JobType = 'scheduleUpdateTwin' | 'scheduleDeviceMethod';
export type JobStatus = 'queued' | 'scheduled' | 'running' | 'completed' | 'failed' | 'cancelled';

export interface JobStatistics {
  readonly deviceCount: number;
  readonly failedCount: number;
  readonly succeededCount: number;
  readonly runningCount: number;
  readonly pendingCount: number;
}

export interface JobRecord {
  readonly jobId: string;
  readonly jobType: JobType;
  readonly status: JobStatus;
  /** The WHERE condition as the caller wrote it (parsed again when the job expands). */
  readonly queryCondition: string;
  /** `{updateTwin}` or `{cloudToDeviceMethod}` as checked by core. */
  readonly request: JsonObject;
  readonly createdMs: number;
  readonly startMs: number;
  readonly endMs: number | null;
  readonly maxExecutionSeconds: number;
  /** Corral's per-job rate limit over all nodes; null: as fast as the hub goes. */
  readonly devicesPerSecond: number | null;
  readonly failureReason: string | null;
  readonly statusMessage: string | null;
  /** Devices with ids up to this one have their device rows; '' before the first; null once all have. */
  readonly expandAfter: string | null;
  /** Device rows claimed so far (the rate limit's count). */
  readonly claimedCount: number;
  /** Final statistics, kept once the job has ended. */
  readonly statistics: JobStatistics | null;
  readonly rev: number;
}

export interface JobListOptions {
  readonly jobType?: JobType;
  readonly status?: JobStatus;
  /** Keyset paging in (createdMs, jobId) order. */
  readonly after?: { readonly createdMs: number; readonly jobId: string };
  readonly limit: number;
}

export interface ExpandOptions {
  readonly jobId: string;
  /** The devices the job covers; undefined: all devices. */
  readonly where: QueryExpr | undefined;
  /** At most this many devices per call. */
  readonly limit: number;
  readonly nowIso: string;
}

export interface ClaimOptions {
  readonly jobId: string;
  readonly owner: string;
  readonly limit: number;
  /** The rate limit: claim only while the job's claimedCount stays at or below this. */
  readonly maxClaimedCount?: number;
  readonly nowMs: number;
  readonly nowIso: string;
  readonly leaseMs: number;
}

/** How a device's part ended. */
export interface DeviceJobResult {
  readonly deviceId: string;
  readonly moduleId: string;
  readonly status: 'completed' | 'failed';
  readonly outcome: JsonObject | null;
  readonly error: JsonObject | null;
}

export interface JobStore {
  /** False when a job with that id exists. The stored rev is 1. */
  insert(job: JobRecord): Promise<boolean>;
  get(jobId: string): Promise<JobRecord | undefined>;
  list(options: JobListOptions): Promise<JobRecord[]>;
  /** Compare-and-set on rev (the stored rev becomes expectedRev + 1); false when it moved. */
  replace(job: JobRecord, expectedRev: number): Promise<boolean>;
  /** Jobs a worker may have to act on: queued or scheduled with startMs ≤ nowMs, and running ones. */
  active(nowMs: number): Promise<JobRecord[]>;
  /**
   * Adds the next `limit` matching devices (by device id, after `expandAfter`) as pending rows and moves
   * expandAfter, atomically; sets it to null when no device is left. Concurrent callers serialize on the job row.
   * Returns how many rows were added; 0 and no change unless the job is running with expandAfter not null.
   */
  expand(options: ExpandOptions): Promise<number>;
  /**
   * Leases up to `limit` device rows of a running job that are pending or whose lease expired, marks them running
   * and counts them in claimedCount, in one transaction; nothing for a job that is not running.
   */
  claim(options: ClaimOptions): Promise<DeviceJobRecord[]>;
  /** Records results for rows `owner` still leases; returns how many rows it updated. */
  finish(jobId: string, owner: string, results: readonly DeviceJobResult[], nowIso: string): Promise<number>;
  /** Marks the job's pending rows canceled; returns how many. */
  cancelPending(jobId: string, nowIso: string): Promise<number>;
  /** Hands `owner`'s running rows back as pending (a worker stopping cleanly). */
  release(owner: string): Promise<number>;
  statistics(jobId: string): Promise<JobStatistics>;
  /** Deletes ended jobs (and their device rows) that ended before `endedBeforeMs`; returns how many jobs. */
  deleteEnded(endedBeforeMs: number): Promise<number>;
}
