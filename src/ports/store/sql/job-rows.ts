import type { JsonObject } from '../index.js';
import type { JobRecord, JobStatistics, JobStatus, JobType } from '../jobs.js';
import type { DeviceJobRecord } from '../query.js';
import { json } from './rows.js';

type Row = Record<string, unknown>;

/** The jobs table's columns, shared by both SQL adapters, in jobValues order. */
export const JOB_COLUMNS = [
  'job_id', 'job_type', 'status', 'query_condition', 'request', 'created_ms', 'start_ms', 'end_ms',
  'max_execution_seconds', 'devices_per_second', 'failure_reason', 'status_message', 'expand_after', 'claimed_count',
  'statistics', 'updated_ms', 'rev',
] as const;

/** Columns a replace writes: all but the key and what only expansion (expand_after) and claims (claimed_count) move. */
export const JOB_REPLACE_COLUMNS = JOB_COLUMNS.filter((c) => c !== 'job_id' && c !== 'claimed_count' && c !== 'expand_after');

export const DEVICE_JOB_COLUMNS = [
  'job_id', 'device_id', 'module_id', 'job_type', 'status', 'created_time', 'start_time', 'end_time', 'updated_time',
  'outcome', 'error',
] as const;

/** Values in JOB_COLUMNS order; JSON as text (PostgreSQL casts it to jsonb). */
export function jobValues(j: JobRecord, rev: number, updatedMs: number): (string | number | null)[] {
  return [
    j.jobId, j.jobType, j.status, j.queryCondition, JSON.stringify(j.request), j.createdMs, j.startMs, j.endMs,
    j.maxExecutionSeconds, j.devicesPerSecond, j.failureReason, j.statusMessage, j.expandAfter, j.claimedCount,
    j.statistics === null ? null : JSON.stringify(j.statistics), updatedMs, rev,
  ];
}

/** Values in JOB_REPLACE_COLUMNS order. */
export function jobReplaceValues(j: JobRecord, rev: number, updatedMs: number): (string | number | null)[] {
  const all = jobValues(j, rev, updatedMs);
  return JOB_REPLACE_COLUMNS.map((c) => all[JOB_COLUMNS.indexOf(c)] ?? null);
}

/** A nullable JSON column (json() of rows.ts keeps NULL as null; an absent column is null too). */
function jsonOrNull<T>(v: unknown): T | null {
  return v === undefined ? null : json<T | null>(v);
}

function num(v: unknown): number {
  return typeof v === 'string' ? Number(v) : (v as number);
}

function numOrNull(v: unknown): number | null {
  return v === null || v === undefined ? null : num(v);
}

export function jobFromRow(r: Row): JobRecord {
  return {
    jobId: r.job_id as string,
    jobType: r.job_type as JobType,
    status: r.status as JobStatus,
    queryCondition: r.query_condition as string,
    request: jsonOrNull<JsonObject>(r.request) ?? {},
    createdMs: num(r.created_ms),
    startMs: num(r.start_ms),
    endMs: numOrNull(r.end_ms),
    maxExecutionSeconds: num(r.max_execution_seconds),
    devicesPerSecond: numOrNull(r.devices_per_second),
    failureReason: (r.failure_reason as string | null) ?? null,
    statusMessage: (r.status_message as string | null) ?? null,
    expandAfter: (r.expand_after as string | null) ?? null,
    claimedCount: num(r.claimed_count),
    statistics: jsonOrNull<JobStatistics>(r.statistics),
    rev: num(r.rev),
  };
}

export function deviceJobFromRow(r: Row): DeviceJobRecord {
  return {
    jobId: r.job_id as string,
    deviceId: r.device_id as string,
    moduleId: r.module_id as string,
    jobType: r.job_type as string,
    status: r.status as DeviceJobRecord['status'],
    createdDateTimeUtc: r.created_time as string,
    startTimeUtc: (r.start_time as string | null) ?? null,
    endTimeUtc: (r.end_time as string | null) ?? null,
    lastUpdatedDateTimeUtc: r.updated_time as string,
    outcome: jsonOrNull<JsonObject>(r.outcome),
    error: jsonOrNull<JsonObject>(r.error),
  };
}

/** Statistics from `status, n` rows: pending and scheduled are pending; canceled rows count only as devices. */
export function statisticsFromCounts(rows: readonly Row[]): JobStatistics {
  const by = new Map(rows.map((r) => [r.status as string, num(r.n)]));
  const n = (s: string): number => by.get(s) ?? 0;
  let deviceCount = 0;
  for (const v of by.values()) deviceCount += v;
  return {
    deviceCount, failedCount: n('failed'), succeededCount: n('completed'), runningCount: n('running'),
    pendingCount: n('pending') + n('scheduled'),
  };
}

/** The ended statuses: a job in one of them never changes again. */
export const ENDED_JOB_STATUSES: readonly JobStatus[] = ['completed', 'failed', 'cancelled'];
