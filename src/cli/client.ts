import { existsSync, readFileSync } from 'node:fs';
import { request, Agent } from 'node:https';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { buildSasToken } from '../core/access/index.js';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { loadClientConfig, type ClientConfig } from '../config/index.js';
import type { OutputFormat } from './output.js';

/** A service connection string's parts; `HostName` may carry `:port` for the CLI (the Azure SDKs cannot). */
export interface ServiceCredentials {
  readonly host: string;
  readonly port: number;
  readonly hostName: string;
  readonly keyName: string;
  readonly key: string;
  readonly ca?: string;
}

export class CliError extends Error {}

/** Parses `HostName=…;SharedAccessKeyName=…;SharedAccessKey=…`. */
export function parseConnectionString(cs: string): { hostName: string; keyName: string; key: string } {
  const parts = new Map<string, string>();
  for (const seg of cs.split(';')) {
    const eq = seg.indexOf('=');
    if (eq > 0) parts.set(seg.slice(0, eq).trim(), seg.slice(eq + 1).trim());
  }
  const hostName = parts.get('HostName');
  const keyName = parts.get('SharedAccessKeyName');
  const key = parts.get('SharedAccessKey');
  if (!hostName || !keyName || !key) throw new CliError('the connection string needs HostName, SharedAccessKeyName and SharedAccessKey');
  return { hostName, keyName, key };
}

/** Credentials from --connection-string / CORRAL_CONNECTION_STRING, else from DIR/hub.json (iothubowner). */
export function resolveCredentials(config: ClientConfig): ServiceCredentials {
  const hubFile = join(config.dataDir, 'hub.json');
  const hub = existsSync(hubFile) ? JSON.parse(readFileSync(hubFile, 'utf8')) as { hostName: string; ports: { https: number }; caFile: string; connectionStrings: Record<string, string> } : undefined;
  const cs = config.connectionString ?? hub?.connectionStrings.iothubowner;
  if (!cs) throw new CliError(`no hub to talk to: give --connection-string, set CORRAL_CONNECTION_STRING, or --data DIR with a hub.json (looked in ${hubFile})`);
  const { hostName, keyName, key } = parseConnectionString(cs);
  const [host, portText] = hostName.split(':');
  const port = portText ? Number(portText) : hub && hub.hostName === hostName ? hub.ports.https : 443;
  const ca = hub && existsSync(hub.caFile) ? readFileSync(hub.caFile, 'utf8') : undefined;
  return { host, port, hostName: host, keyName, key, ca };
}

export interface HubResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: unknown;
}

/** A small HTTPS client for the hub's service API, signing each request with a fresh SAS token. */
export class HubClient {
  private readonly agent: Agent;

  constructor(private readonly creds: ServiceCredentials) {
    this.agent = new Agent({ keepAlive: true, ca: creds.ca ? [creds.ca] : undefined });
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    const se = Math.ceil(Date.now() / 1000) + 3600;
    return { authorization: buildSasToken(this.creds.hostName, this.creds.key, se, this.creds.keyName), ...extra };
  }

  /** Sends JSON (or a stream) and returns the parsed reply; throws CliError with IoT Hub's message on ≥ 400. */
  async call(method: string, path: string, opts: { body?: unknown; stream?: Readable; headers?: Record<string, string> } = {}): Promise<HubResponse> {
    const res = await this.raw(method, path, opts);
    const chunks: Buffer[] = [];
    for await (const c of res.stream) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const body = text && String(res.headers['content-type'] ?? '').includes('json') ? JSON.parse(text) : text;
    if (res.status >= 400) {
      const msg = typeof body === 'object' && body && 'Message' in body ? String((body as { Message: string }).Message) : text;
      if (!(typeof body === 'object' && body && 'errors' in body)) throw new CliError(`${res.status}: ${msg}`);
    }
    return { status: res.status, headers: res.headers, body };
  }

  /** The reply as a stream, for exports. */
  raw(method: string, path: string, opts: { body?: unknown; stream?: Readable; headers?: Record<string, string> } = {}):
    Promise<{ status: number; headers: Record<string, string | string[] | undefined>; stream: Readable }> {
    const sep = path.includes('?') ? '&' : '?';
    const headers = this.headers(opts.headers);
    const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
    if (payload) { headers['content-type'] = 'application/json; charset=utf-8'; headers['content-length'] = String(payload.length); }
    return new Promise((resolve, reject) => {
      const req = request({
        host: this.creds.host, port: this.creds.port, method, path: `${path}${sep}api-version=2021-04-12`,
        headers, agent: this.agent, ...(isIP(this.creds.host) === 0 ? { servername: this.creds.host } : {}),
      }, (res) => resolve({ status: res.statusCode ?? 0, headers: res.headers, stream: res }));
      req.on('error', (err) => reject(new CliError(`cannot reach the hub at ${this.creds.host}:${this.creds.port}: ${err.message}`)));
      if (opts.stream) opts.stream.pipe(req);
      else req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** The flags every admin verb takes: how to reach the hub, and the output format. */
export const CONNECTION_OPTIONS = {
  'connection-string': { type: 'string' }, data: { type: 'string' }, output: { type: 'string', short: 'o' },
} as const;

type ParseArgsOptionsConfig = NonNullable<ParseArgsConfig['options']>;
type ParsedValues<O extends ParseArgsOptionsConfig> = ReturnType<typeof parseArgs<{ options: O; allowPositionals: true }>>['values'];

/**
 * Parses a noun's arguments, opens a client to the hub (connection string, env or data dir) and runs `verbs` with
 * the verb, its positionals, the flags and the output format; the client is closed however it ends.
 */
export async function runVerbs<O extends ParseArgsOptionsConfig>(
  args: string[], options: O,
  verbs: (client: HubClient, verb: string, positionals: string[], values: ParsedValues<O>, out: OutputFormat) => Promise<void>,
): Promise<number> {
  const { values, positionals } = parseArgs({ args, options, allowPositionals: true, strict: true });
  const v = values as ParsedValues<O> & { output?: string; 'connection-string'?: string; data?: string };
  if (v.output && v.output !== 'table' && v.output !== 'json') throw new CliError(`--output must be json or table, got ${v.output}`);
  const client = new HubClient(resolveCredentials(loadClientConfig(v)));
  try {
    const [verb = '', ...rest] = positionals;
    await verbs(client, verb, rest, v, v.output === 'table' ? 'table' : 'json');
    return 0;
  } finally {
    client.close();
  }
}
