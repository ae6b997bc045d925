import { ArgumentInvalid } from '../errors/index.js';
import { parseMethodCall } from '../methods/index.js';
import { parseCondition } from '../query/index.js';
import { parseTwinChange, type TwinLimits } from '../twins/index.js';
import type { JsonObject, JsonValue } from '../../ports/store/index.js';
import type { JobRecord, JobType } from '../../ports/store/jobs.js';

/** IoT Hub's default when the caller gives no maxExecutionTimeInSeconds (job_client.js). */
export const DEFAULT_MAX_EXECUTION_SECONDS = 3600;
// IoT Hub lets a job run for at most 2 days' worth of seconds in practice; Corral allows up to 7 days.
const MAX_EXECUTION_SECONDS = 7 * 24 * 3600;
// Job ids follow the registry's id rules: ≤ 128 ASCII letters, digits and - . % _ * ? ! ( ) , : = @ $ '
const JOB_ID = /^[A-Za-z0-9\-.%_*?!(),:=@$']{1,128}$/;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function validateJobId(id: unknown): string {
  if (typeof id !== 'string' || !JOB_ID.test(id)) {
    throw new ArgumentInvalid(`job id ${JSON.stringify(id)} must be 1 to 128 ASCII letters, digits or - . % _ * ? ! ( ) , : = @ $ '`);
  }
  return id;
}

function startMsOf(v: unknown, nowMs: number): number {
  if (v === undefined || v === null) return nowMs;
  const ms = typeof v === 'string' ? Date.parse(v) : NaN;
  if (Number.isNaN(ms)) throw new ArgumentInvalid(`startTime must be an ISO 8601 time or null, got ${JSON.stringify(v)}`);
  return ms;
}

function maxSecondsOf(v: unknown): number {
  if (v === undefined || v === null) return DEFAULT_MAX_EXECUTION_SECONDS;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_EXECUTION_SECONDS) {
    throw new ArgumentInvalid(`maxExecutionTimeInSeconds must be an integer from 1 to ${MAX_EXECUTION_SECONDS}, got ${JSON.stringify(v)}`);
  }
  return v;
}

/** Corral's extension `corral: {devicesPerSecond}`: a job-wide rate over all nodes. */
function rateOf(v: unknown): number | null {
  if (v === undefined || v === null) return null;
  if (!isObject(v)) throw new ArgumentInvalid('corral must be an object such as {"devicesPerSecond": 100}');
  const r = v.devicesPerSecond;
  if (r === undefined || r === null) return null;
  if (typeof r !== 'number' || !Number.isFinite(r) || r <= 0 || r > 1_000_000) {
    throw new ArgumentInvalid(`corral.devicesPerSecond must be a number above 0 and at most 1000000, got ${JSON.stringify(r)}`);
  }
  return r;
}

/** The request part of a job: the twin patch or the method call, checked as the single-device APIs check them. */
function requestOf(type: JobType, b: Record<string, unknown>, limits: TwinLimits): JsonObject {
  if (type === 'scheduleUpdateTwin') {
    if (!isObject(b.updateTwin)) throw new ArgumentInvalid('updateTwin must be an object with tags and/or properties.desired');
    // The patch's etag is not a precondition in IoT Hub's jobs; it is kept as given.
    const change = parseTwinChange(b.updateTwin, limits);
    if (!change.tags && !change.desired) throw new ArgumentInvalid('updateTwin changes nothing: give tags or properties.desired');
    return { updateTwin: b.updateTwin as JsonObject };
  }
  const call = parseMethodCall(b.cloudToDeviceMethod);
  return {
    cloudToDeviceMethod: {
      methodName: call.methodName, payload: call.payload as JsonValue,
      responseTimeoutInSeconds: call.responseTimeoutInSeconds, connectTimeoutInSeconds: call.connectTimeoutInSeconds,
    },
  };
}

/**
 * Checks a `PUT /jobs/v2/{id}` body (IoT Hub's JobRequest) and gives the job to store: queued when it starts now,
 * scheduled when its startTime is ahead. Throws ArgumentInvalid (400004) naming the field, or QuerySyntaxError for
 * the queryCondition.
 */
export function parseJobRequest(pathJobId: string, body: unknown, nowMs: number, limits: TwinLimits): JobRecord {
  const jobId = validateJobId(pathJobId);
  if (!isObject(body)) throw new ArgumentInvalid('the job body must be a JSON object');
  if (body.jobId !== undefined && body.jobId !== jobId) {
    throw new ArgumentInvalid(`the body's jobId ${JSON.stringify(body.jobId)} differs from the path's '${jobId}'`);
  }
  const type = body.type;
  if (type !== 'scheduleUpdateTwin' && type !== 'scheduleDeviceMethod') {
    throw new ArgumentInvalid(`type must be scheduleUpdateTwin or scheduleDeviceMethod, got ${JSON.stringify(type)}`);
  }
  if (typeof body.queryCondition !== 'string' || body.queryCondition.trim() === '') {
    throw new ArgumentInvalid('queryCondition must be a WHERE condition over devices, such as "deviceId IN [\'d1\']"');
  }
  parseCondition(body.queryCondition);
  const startMs = startMsOf(body.startTime, nowMs);
  return {
    jobId, jobType: type, status: startMs > nowMs ? 'scheduled' : 'queued', queryCondition: body.queryCondition,
    request: requestOf(type, body, limits), createdMs: nowMs, startMs, endMs: null,
    maxExecutionSeconds: maxSecondsOf(body.maxExecutionTimeInSeconds), devicesPerSecond: rateOf(body.corral),
    failureReason: null, statusMessage: null, expandAfter: '', claimedCount: 0, statistics: null, rev: 1,
  };
}
