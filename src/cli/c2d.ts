import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { CliError, CONNECTION_OPTIONS, runVerbs, type HubClient } from './client.js';
import { print, type OutputFormat } from './output.js';

const OPTIONS = {
  ...CONNECTION_OPTIONS,
  module: { type: 'string' }, body: { type: 'string' }, ack: { type: 'string' }, property: { type: 'string', multiple: true },
  'ttl-seconds': { type: 'string' }, 'message-id': { type: 'string' }, 'correlation-id': { type: 'string' },
  'content-type': { type: 'string' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

export const C2D_USAGE = `corral c2d send DEVICE [--module M] --body TEXT [--ack none|positive|negative|full] [--property k=v ...]
                [--ttl-seconds N] [--message-id ID] [--correlation-id ID] [--content-type T]
  corral c2d purge DEVICE [--module M]
  corral c2d feedback                      (reads one batch of feedback records and completes it)`;

function pathOf(deviceId: string, moduleId: string | undefined): string {
  return `/devices/${encodeURIComponent(deviceId)}${moduleId ? `/modules/${encodeURIComponent(moduleId)}` : ''}`;
}

/** The `iothub-*` headers of a send, from flags. */
function sendHeaders(v: Values): Record<string, string> {
  const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
  if (v.ack) headers['iothub-ack'] = v.ack;
  if (v['message-id']) headers['iothub-messageid'] = v['message-id'];
  if (v['correlation-id']) headers['iothub-correlationid'] = v['correlation-id'];
  if (v['content-type']) headers['iothub-contenttype'] = v['content-type'];
  if (v['ttl-seconds'] !== undefined) {
    const ttl = Number(v['ttl-seconds']);
    if (!Number.isInteger(ttl) || ttl < 1) throw new CliError(`--ttl-seconds must be a positive integer, got ${v['ttl-seconds']}`);
    headers['iothub-expiry'] = new Date(Date.now() + ttl * 1000).toISOString();
  }
  for (const p of v.property ?? []) {
    const eq = p.indexOf('=');
    if (eq < 1) throw new CliError(`--property must be key=value, got ${p}`);
    headers[`iothub-app-${p.slice(0, eq)}`] = p.slice(eq + 1);
  }
  return headers;
}

async function run(client: HubClient, verb: string, pos: string[], v: Values, out: OutputFormat): Promise<void> {
  switch (verb) {
    case 'send': {
      if (!pos[0]) throw new CliError('c2d send needs a device id');
      if (v.body === undefined) throw new CliError('c2d send needs --body TEXT');
      const stream = Readable.from([Buffer.from(v.body, 'utf8')]);
      const res = await client.call('POST', `${pathOf(pos[0], v.module)}/messages/deviceBound`, { stream, headers: sendHeaders(v) });
      return print(res.body, out, ['messageId']);
    }
    case 'purge': {
      if (!pos[0]) throw new CliError('c2d purge needs a device id');
      return print((await client.call('DELETE', `${pathOf(pos[0], v.module)}/commands`)).body, out, ['deviceId', 'totalMessagesPurged']);
    }
    case 'feedback': {
      const res = await client.call('GET', '/messages/serviceBound/feedback');
      if (res.status === 204) return print([], out, ['originalMessageId', 'statusCode', 'deviceId', 'enqueuedTimeUtc']);
      const lockToken = String(res.headers.etag ?? '').replace(/^"(.*)"$/, '$1');
      await client.call('DELETE', `/messages/serviceBound/feedback/${encodeURIComponent(lockToken)}`);
      return print(res.body, out, ['originalMessageId', 'statusCode', 'deviceId', 'enqueuedTimeUtc']);
    }
    default:
      throw new CliError(`unknown verb 'c2d ${verb}': send, purge, feedback`);
  }
}

/** `corral c2d send|purge|feedback …` over the service REST API. */
export async function c2d(args: string[]): Promise<number> {
  return runVerbs(args, OPTIONS, run);
}
