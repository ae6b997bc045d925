import { parseArgs } from 'node:util';
import { CliError, CONNECTION_OPTIONS, runVerbs, type HubClient } from './client.js';
import { print, type OutputFormat } from './output.js';

const QUERY_OPTIONS = { ...CONNECTION_OPTIONS, 'page-size': { type: 'string' }, continuation: { type: 'string' }, 'one-page': { type: 'boolean' } } as const;
const JOB_OPTIONS = {
  ...CONNECTION_OPTIONS, where: { type: 'string' }, patch: { type: 'string' }, method: { type: 'string' }, payload: { type: 'string' },
  'timeout-seconds': { type: 'string' }, 'start-time': { type: 'string' }, 'max-seconds': { type: 'string' },
  'devices-per-second': { type: 'string' }, type: { type: 'string' }, status: { type: 'string' },
} as const;

type QueryValues = ReturnType<typeof parseArgs<{ options: typeof QUERY_OPTIONS; allowPositionals: true }>>['values'];
type JobValues = ReturnType<typeof parseArgs<{ options: typeof JOB_OPTIONS; allowPositionals: true }>>['values'];

export const QUERY_USAGE = `corral query "SELECT … FROM devices …" [--page-size N] [--one-page] [--continuation TOKEN]
  corral index add|remove PATH             (declare or drop a query index: tags.site, properties.reported.fw)
  corral index list
  corral job twin ID --where COND --patch JSON [--start-time ISO] [--max-seconds N] [--devices-per-second R]
  corral job method ID --where COND --method NAME [--payload JSON] [--timeout-seconds N] [--start-time ISO] [--max-seconds N]
                [--devices-per-second R]
  corral job show|cancel ID
  corral job list [--type scheduleUpdateTwin|scheduleDeviceMethod] [--status queued|scheduled|running|completed|failed|cancelled]`;

const TWIN_COLUMNS = ['deviceId', 'moduleId', 'status', 'connectionState', 'lastActivityTime', 'version'];
const JOB_COLUMNS = ['jobId', 'type', 'status', 'startTime', 'endTime', 'deviceJobStatistics'];

function json(flag: string, text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new CliError(`--${flag} must be JSON, got ${text}`);
  }
}

function positiveNumber(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new CliError(`--${flag} must be a positive number, got ${text}`);
  return n;
}

/** Follows continuation tokens until the last page (or one page with --one-page, printing the token to stderr). */
async function query(client: HubClient, text: string, v: QueryValues, out: OutputFormat): Promise<void> {
  const items: unknown[] = [];
  let token = v.continuation;
  let itemType = 'raw';
  do {
    const headers: Record<string, string> = {};
    if (v['page-size']) headers['x-ms-max-item-count'] = String(positiveNumber('page-size', v['page-size']));
    if (token) headers['x-ms-continuation'] = token;
    const res = await client.call('POST', '/devices/query', { body: { query: text }, headers });
    items.push(...(res.body as unknown[]));
    itemType = String(res.headers['x-ms-item-type'] ?? 'raw');
    token = res.headers['x-ms-continuation'] as string | undefined;
    if (v['one-page']) {
      if (token) process.stderr.write(`continuation: ${token}\n`);
      break;
    }
  } while (token);
  const first = items[0];
  const columns = itemType === 'twin' ? TWIN_COLUMNS : itemType === 'deviceJob' ? ['deviceId', 'jobId', 'jobType', 'status', 'outcome', 'error']
    : typeof first === 'object' && first !== null ? Object.keys(first) : ['value'];
  print(items, out, columns);
}

/** `corral query "…"` over `POST /devices/query`, every page unless --one-page. */
export async function queryCommand(args: string[]): Promise<number> {
  return runVerbs(args, QUERY_OPTIONS, async (client, text, pos, v, out) => {
    if (!text) throw new CliError('query needs the query text: corral query "SELECT * FROM devices WHERE …"');
    if (pos.length) throw new CliError('give the query as one argument (quote it)');
    await query(client, text, v, out);
  });
}

/** `corral index add|remove|list` over `/corral/v1/indexes`. */
export async function indexCommand(args: string[]): Promise<number> {
  return runVerbs(args, CONNECTION_OPTIONS, async (client, verb, pos, _v, out) => {
    const cols = ['path', 'createdTime'];
    if (verb === 'list') return print((await client.call('GET', '/corral/v1/indexes')).body, out, cols);
    if (!pos[0]) throw new CliError(`index ${verb} needs a path such as tags.site`);
    if (verb === 'add') return print((await client.call('POST', '/corral/v1/indexes', { body: { path: pos[0] } })).body, out, ['path', 'created']);
    if (verb === 'remove') {
      await client.call('DELETE', `/corral/v1/indexes/${encodeURIComponent(pos[0])}`);
      return print({ path: pos[0], removed: true }, out, ['path', 'removed']);
    }
    throw new CliError(`unknown verb 'index ${verb}': add, remove, list`);
  });
}

function jobBody(kind: 'twin' | 'method', id: string, v: JobValues): Record<string, unknown> {
  if (!v.where) throw new CliError(`job ${kind} needs --where CONDITION, such as "tags.site = 'x'"`);
  const body: Record<string, unknown> = {
    jobId: id, queryCondition: v.where, startTime: v['start-time'] ?? null,
    maxExecutionTimeInSeconds: positiveNumber('max-seconds', v['max-seconds']),
  };
  const rate = positiveNumber('devices-per-second', v['devices-per-second']);
  if (rate !== undefined) body.corral = { devicesPerSecond: rate };
  if (kind === 'twin') {
    if (!v.patch) throw new CliError('job twin needs --patch JSON, such as {"properties":{"desired":{"x":1}}}');
    return { ...body, type: 'scheduleUpdateTwin', updateTwin: json('patch', v.patch) };
  }
  if (!v.method) throw new CliError('job method needs --method NAME');
  return {
    ...body, type: 'scheduleDeviceMethod',
    cloudToDeviceMethod: { methodName: v.method, payload: json('payload', v.payload) ?? null, responseTimeoutInSeconds: positiveNumber('timeout-seconds', v['timeout-seconds']) ?? 30 },
  };
}

/** `corral job twin|method|show|cancel|list` over jobs v2. */
export async function jobCommand(args: string[]): Promise<number> {
  return runVerbs(args, JOB_OPTIONS, async (client, verb, pos, v, out) => {
    const id = pos[0];
    const path = (jobId: string): string => `/jobs/v2/${encodeURIComponent(jobId)}`;
    switch (verb) {
      case 'twin':
      case 'method':
        if (!id) throw new CliError(`job ${verb} needs a job id`);
        return print((await client.call('PUT', path(id), { body: jobBody(verb, id, v) })).body, out, JOB_COLUMNS);
      case 'show':
        if (!id) throw new CliError('job show needs a job id');
        return print((await client.call('GET', path(id))).body, out, JOB_COLUMNS);
      case 'cancel':
        if (!id) throw new CliError('job cancel needs a job id');
        return print((await client.call('POST', `${path(id)}/cancel`)).body, out, JOB_COLUMNS);
      case 'list': {
        const params = new URLSearchParams();
        if (v.type) params.set('jobType', v.type);
        if (v.status) params.set('jobStatus', v.status);
        const items: unknown[] = [];
        let token: string | undefined;
        do {
          const res = await client.call('GET', `/jobs/v2/query${params.size ? `?${params}` : ''}`, { headers: token ? { 'x-ms-continuation': token } : {} });
          items.push(...(res.body as unknown[]));
          token = res.headers['x-ms-continuation'] as string | undefined;
        } while (token);
        return print(items, out, JOB_COLUMNS);
      }
      default:
        throw new CliError(`unknown verb 'job ${verb}': twin, method, show, cancel, list`);
    }
  });
}
