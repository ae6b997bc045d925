import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ArgumentInvalid } from '../../core/errors/index.js';
import { JOB_STATUSES, JOB_TYPES, type Jobs, type JobStatus, type JobType } from '../../core/jobs/index.js';
import { continuationOf, pageSizeOf, sendPage } from './query.js';

// Jobs call devices and write twins: ServiceConnect, as IoT Hub asks; reading them also takes RegistryRead.
const WRITE = { rights: ['ServiceConnect'] } as const;
const READ = { rights: ['ServiceConnect', 'RegistryRead'] } as const;

function jobIdOf(req: FastifyRequest): string {
  return (req.params as { jobId: string }).jobId;
}

function oneOf<T extends string>(name: string, value: string | undefined, allowed: readonly T[]): T | undefined {
  if (value === undefined || value === '') return undefined;
  const found = allowed.find((a) => a.toLowerCase() === value.toLowerCase());
  if (!found) throw new ArgumentInvalid(`${name} must be one of ${allowed.join(', ')}, got '${value}'`);
  return found;
}

/** The listing's keyset position, carried in x-ms-continuation. */
function afterOf(token: string | undefined): { createdMs: number; jobId: string } | undefined {
  if (token === undefined) return undefined;
  try {
    const [createdMs, jobId] = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as [unknown, unknown];
    if (typeof createdMs === 'number' && typeof jobId === 'string') return { createdMs, jobId };
  } catch { /* reported below */ }
  throw new ArgumentInvalid('x-ms-continuation is not a job listing token this hub issued');
}

/** IoT Hub's jobs v2: schedule (PUT), read, cancel and list, with the SDK's paging headers. */
export function registerJobRoutes(app: FastifyInstance, deps: { jobs: Jobs }): void {
  const { jobs } = deps;
  app.get('/jobs/v2/query', { config: READ }, async (req, reply) => {
    const q = req.query as Record<string, string | undefined>;
    const page = await jobs.list({
      jobType: oneOf<JobType>('jobType', q.jobType, JOB_TYPES), status: oneOf<JobStatus>('jobStatus', q.jobStatus, JOB_STATUSES),
      limit: pageSizeOf(req), after: afterOf(continuationOf(req)),
    });
    const next = page.after ? Buffer.from(JSON.stringify([page.after.createdMs, page.after.jobId])).toString('base64url') : undefined;
    return sendPage(reply, page.items, 'jobResponse', next);
  });
  app.put('/jobs/v2/:jobId', { config: WRITE }, async (req) => jobs.schedule(jobIdOf(req), req.body));
  app.get('/jobs/v2/:jobId', { config: READ }, async (req) => jobs.get(jobIdOf(req)));
  app.post('/jobs/v2/:jobId/cancel', { config: WRITE }, async (req) => jobs.cancel(jobIdOf(req)));
}
