import { createReadStream, createWriteStream, statSync } from 'node:fs';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { loadClientConfig } from '../config/index.js';
import { c2d } from './c2d.js';
import { cert } from './cert.js';
import { deviceStateCommand } from './events.js';
import { indexCommand, jobCommand, queryCommand } from './query.js';
import { CliError, HubClient, resolveCredentials } from './client.js';
import { print, type OutputFormat } from './output.js';
import { ProgressBar } from './progress.js';

const DEVICE_COLUMNS = ['deviceId', 'status', 'connectionState', 'lastActivityTime', 'cloudToDeviceMessageCount'];
const TWIN_COLUMNS = ['deviceId', 'moduleId', 'version', 'status', 'connectionState', 'tags'];

const COMMON = {
  'connection-string': { type: 'string' }, data: { type: 'string' }, output: { type: 'string', short: 'o' },
  module: { type: 'string' }, etag: { type: 'string' }, status: { type: 'string' }, 'status-reason': { type: 'string' },
  auth: { type: 'string' }, 'primary-key': { type: 'string' }, 'secondary-key': { type: 'string' },
  'primary-thumbprint': { type: 'string' }, 'secondary-thumbprint': { type: 'string' }, edge: { type: 'boolean' },
  top: { type: 'string' }, keys: { type: 'boolean' }, patch: { type: 'string' }, tags: { type: 'string' }, desired: { type: 'string' },
  replace: { type: 'boolean' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof COMMON; allowPositionals: true }>>['values'];

function enc(id: string): string {
  return encodeURIComponent(id);
}

function pathOf(deviceId: string, moduleId: string | undefined, root = 'devices'): string {
  return `/${root}/${enc(deviceId)}${moduleId ? `/modules/${enc(moduleId)}` : ''}`;
}

function needId(pos: string[], verb: string): string {
  if (!pos[0]) throw new CliError(`${verb} needs a device id`);
  return pos[0];
}

function jsonArg(text: string | undefined, flag: string): unknown {
  if (text === undefined) return undefined;
  try { return JSON.parse(text); } catch { throw new CliError(`--${flag} must be JSON, got ${text}`); }
}

/** The Device/Module body a create or update sends, from flags (over the current one for updates). */
function identityBody(v: Values, base: Record<string, unknown> = {}): Record<string, unknown> {
  const body: Record<string, unknown> = { ...base };
  if (v.status) body.status = v.status;
  if (v['status-reason'] !== undefined) body.statusReason = v['status-reason'];
  if (v.edge !== undefined) body.capabilities = { iotEdge: v.edge };
  const anyAuth = v.auth || v['primary-key'] || v['secondary-key'] || v['primary-thumbprint'] || v['secondary-thumbprint'];
  if (anyAuth) {
    body.authentication = {
      type: v.auth ?? (v['primary-thumbprint'] || v['secondary-thumbprint'] ? 'selfSigned' : 'sas'),
      symmetricKey: { primaryKey: v['primary-key'] ?? '', secondaryKey: v['secondary-key'] ?? '' },
      x509Thumbprint: { primaryThumbprint: v['primary-thumbprint'] ?? null, secondaryThumbprint: v['secondary-thumbprint'] ?? null },
    };
  }
  return body;
}

async function device(client: HubClient, verb: string, pos: string[], v: Values, out: OutputFormat): Promise<void> {
  switch (verb) {
    case 'create': {
      const id = needId(pos, 'device create');
      const body = { ...identityBody(v), deviceId: id, moduleId: v.module };
      return print((await client.call('PUT', pathOf(id, v.module), { body })).body, out, DEVICE_COLUMNS);
    }
    case 'show':
      return print((await client.call('GET', pathOf(needId(pos, 'device show'), v.module))).body, out, DEVICE_COLUMNS);
    case 'update': {
      const id = needId(pos, 'device update');
      const current = (await client.call('GET', pathOf(id, v.module))).body as Record<string, unknown>;
      const body = identityBody(v, current);
      const etag = v.etag ?? '*';
      return print((await client.call('PUT', pathOf(id, v.module), { body, headers: { 'if-match': `"${etag}"` } })).body, out, DEVICE_COLUMNS);
    }
    case 'delete': {
      const id = needId(pos, 'device delete');
      await client.call('DELETE', pathOf(id, v.module), { headers: { 'if-match': `"${v.etag ?? '*'}"` } });
      return print({ deleted: v.module ? `${id}/${v.module}` : id }, out, ['deleted']);
    }
    case 'list':
      return print(await listAll(client, pos[0], v), out, DEVICE_COLUMNS);
    case 'import':
      return importFile(client, pos[0], out);
    case 'export':
      return exportTo(client, pos[0], v.keys === true);
    default:
      throw new CliError(`unknown verb 'device ${verb}': create, show, list, update, delete, import, export, state, telemetry`);
  }
}

async function listAll(client: HubClient, moduleOf: string | undefined, v: Values): Promise<unknown[]> {
  if (moduleOf) return (await client.call('GET', `/devices/${enc(moduleOf)}/modules`)).body as unknown[];
  const limit = v.top ? Number(v.top) : Infinity;
  const all: unknown[] = [];
  let token: string | undefined;
  do {
    const res = await client.call('GET', `/devices/?top=${Math.min(1000, limit - all.length)}`, { headers: token ? { 'x-ms-continuation': token } : {} });
    all.push(...(res.body as unknown[]));
    token = res.headers['x-ms-continuation'] as string | undefined;
  } while (token && all.length < limit);
  return all;
}

async function importFile(client: HubClient, file: string | undefined, out: OutputFormat): Promise<void> {
  if (!file) throw new CliError('device import needs a JSON Lines file');
  const size = statSync(file).size;
  const bar = new ProgressBar('import', size);
  let sent = 0;
  const counter = new Transform({ transform(chunk: Buffer, _e, cb) { sent += chunk.length; bar.update(sent, ' bytes'); cb(null, chunk); } });
  const stream = createReadStream(file).pipe(counter);
  const res = await client.call('POST', '/corral/v1/registry/import', { stream, headers: { 'content-type': 'application/x-ndjson' } });
  bar.finish();
  print(res.body, out, ['ok', 'lines', 'upserted', 'deleted', 'errorCount']);
  if (res.status >= 400) throw new CliError(`import refused: ${(res.body as { errorCount?: number }).errorCount ?? '?'} bad line(s); nothing was written`);
}

async function exportTo(client: HubClient, file: string | undefined, withKeys: boolean): Promise<void> {
  const stats = (await client.call('GET', '/statistics/devices')).body as { totalDeviceCount: number };
  const bar = new ProgressBar('export', stats.totalDeviceCount);
  const res = await client.raw('GET', `/corral/v1/registry/export${withKeys ? '?keys=true' : ''}`);
  if (res.status >= 400) {
    const chunks: Buffer[] = [];
    for await (const c of res.stream) chunks.push(c as Buffer);
    throw new CliError(`${res.status}: ${Buffer.concat(chunks).toString('utf8')}`);
  }
  let lines = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _e, cb) {
      for (const b of chunk) if (b === 10) lines++;
      bar.update(lines, ' devices');
      cb(null, chunk);
    },
  });
  await pipeline(res.stream as Readable, counter, file ? createWriteStream(file) : process.stdout);
  bar.finish();
}

async function twin(client: HubClient, verb: string, pos: string[], v: Values, out: OutputFormat): Promise<void> {
  const id = needId(pos, `twin ${verb}`);
  if (verb === 'show') return print((await client.call('GET', pathOf(id, v.module, 'twins'))).body, out, TWIN_COLUMNS);
  if (verb !== 'update') throw new CliError(`unknown verb 'twin ${verb}': show, update`);
  const patch = (jsonArg(v.patch, 'patch') ?? {}) as Record<string, unknown>;
  const tags = jsonArg(v.tags, 'tags');
  const desired = jsonArg(v.desired, 'desired');
  if (tags !== undefined) patch.tags = tags;
  if (desired !== undefined) patch.properties = { desired };
  if (Object.keys(patch).length === 0) throw new CliError('twin update needs --patch, --tags or --desired (JSON)');
  const res = await client.call(v.replace ? 'PUT' : 'PATCH', pathOf(id, v.module, 'twins'), { body: patch, headers: { 'if-match': `"${v.etag ?? '*'}"` } });
  print(res.body, out, TWIN_COLUMNS);
}

/** The admin verbs (`corral device|twin|c2d|policy|stats …`) over the service REST API. */
export async function admin(noun: string, args: string[]): Promise<number> {
  if (noun === 'c2d') return c2d(args);
  if (noun === 'cert') return cert(args);
  if (noun === 'query') return queryCommand(args);
  if (noun === 'index') return indexCommand(args);
  if (noun === 'job') return jobCommand(args);
  // The pipeline's views of a device take their own flags (--from, --to, --limit).
  if (noun === 'device' && (args[0] === 'state' || args[0] === 'telemetry')) return deviceStateCommand(args);
  const { values: v, positionals } = parseArgs({ args, options: COMMON, allowPositionals: true, strict: true });
  const out: OutputFormat = v.output === 'table' ? 'table' : 'json';
  if (v.output && v.output !== 'table' && v.output !== 'json') throw new CliError(`--output must be json or table, got ${v.output}`);
  const client = new HubClient(resolveCredentials(loadClientConfig(v)));
  try {
    const [verb = '', ...pos] = positionals;
    switch (noun) {
      case 'device': await device(client, verb, pos, v, out); break;
      case 'twin': await twin(client, verb, pos, v, out); break;
      case 'policy':
        if (verb !== 'list') throw new CliError(`unknown verb 'policy ${verb}': list`);
        print((await client.call('GET', '/corral/v1/policies')).body, out, ['keyName', 'rights']);
        break;
      case 'stats': {
        const devices = (await client.call('GET', '/statistics/devices')).body as Record<string, number>;
        const service = (await client.call('GET', '/statistics/service')).body as Record<string, number>;
        print({ ...devices, ...service }, out, ['totalDeviceCount', 'enabledDeviceCount', 'disabledDeviceCount', 'connectedDeviceCount', 'healthyDeviceCount', 'unhealthyDeviceCount']);
        break;
      }
      default: throw new CliError(`unknown command '${noun}'`);
    }
    return 0;
  } finally {
    client.close();
  }
}
