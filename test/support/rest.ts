import { request } from 'node:https';
import { buildSasToken } from '../../src/core/access/index.js';

export interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
  readonly json: unknown;
}

/** The parts of a service connection string. */
export function credentialsOf(connectionString: string): { hostName: string; keyName: string; key: string } {
  const m = new Map(connectionString.split(';').map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]));
  return { hostName: m.get('HostName')!, keyName: m.get('SharedAccessKeyName')!, key: m.get('SharedAccessKey')! }; // the hub writes all three
}

/** A service SAS token as the SDK makes it; `expiry` in Unix seconds (default: in an hour). */
export function serviceToken(connectionString: string, expiry = Math.ceil(Date.now() / 1000) + 3600): string {
  const c = credentialsOf(connectionString);
  return buildSasToken(c.hostName, c.key, expiry, c.keyName);
}

/** One raw HTTPS request to a hub on 443 of `host`. */
export function rawRequest(host: string, method: string, path: string, opts: { headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port: 443, method, path, headers: opts.headers, servername: undefined }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** A signed JSON call with the given connection string's policy. */
export function serviceCall(host: string, connectionString: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<RawResponse> {
  const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  return rawRequest(host, method, path, {
    headers: {
      authorization: serviceToken(connectionString),
      ...(payload !== undefined ? { 'content-type': 'application/json; charset=utf-8' } : {}),
      ...headers,
    },
    body: payload,
  });
}
