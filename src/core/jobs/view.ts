import { isoTime } from '../../ports/clock/index.js';
import type { JobRecord, JobStatistics } from '../../ports/store/jobs.js';
import type { DeviceJobRecord } from '../../ports/store/query.js';
import type { JsonObject } from '../../ports/store/index.js';

/** IoT Hub's JobResponse (jobs v2). `corral` carries Corral's extension when the job has one. */
export function jobView(job: JobRecord, statistics: JobStatistics) {
  return {
    jobId: job.jobId,
    queryCondition: job.queryCondition,
    createdTime: isoTime(job.createdMs),
    startTime: isoTime(job.startMs),
    endTime: job.endMs === null ? undefined : isoTime(job.endMs),
    maxExecutionTimeInSeconds: job.maxExecutionSeconds,
    type: job.jobType,
    ...job.request,
    status: job.status,
    failureReason: job.failureReason ?? undefined,
    statusMessage: job.statusMessage ?? undefined,
    deviceJobStatistics: statistics,
    corral: job.devicesPerSecond === null ? undefined : { devicesPerSecond: job.devicesPerSecond },
  };
}

/** A row of `devices.jobs` as IoT Hub returns it (item type `deviceJob`). */
export function deviceJobView(r: DeviceJobRecord) {
  return {
    deviceId: r.deviceId,
    moduleId: r.moduleId === '' ? undefined : r.moduleId,
    jobId: r.jobId,
    jobType: r.jobType,
    status: r.status,
    startTimeUtc: r.startTimeUtc ?? undefined,
    endTimeUtc: r.endTimeUtc ?? undefined,
    createdDateTimeUtc: r.createdDateTimeUtc,
    lastUpdatedDateTimeUtc: r.lastUpdatedDateTimeUtc,
    outcome: r.outcome ?? undefined,
    error: r.error ?? undefined,
  };
}

/** A job as its life-cycle event carries it (statistics when the job has them). */
export function jobEventBody(job: JobRecord, statistics?: JobStatistics): JsonObject {
  return JSON.parse(JSON.stringify(jobView(job, statistics ?? job.statistics ?? {
    deviceCount: 0, failedCount: 0, succeededCount: 0, runningCount: 0, pendingCount: 0,
  }))) as JsonObject;
}
