import { Agent } from 'node:https';
import type { RunningHub } from '../../test/support/hub-process.js';
import { serviceToken } from '../../test/support/rest.js';
import { call, type BenchRequest, type BenchResponse } from './https-load.js';

/**
 * A hub's service REST API as benchmarks call it outside a load: one keep-alive connection, an iothubowner SAS
 * token good for hours, JSON in and out, and any non-2xx answer thrown with the hub's last log lines.
 */

export const API_VERSION = '2021-04-12';

export interface ServiceApi {
  readonly host: string;
  readonly authorization: string;
  /** A JSON call; throws unless the answer is 2xx. */
  json(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<BenchResponse & { readonly json: unknown }>;
  /** `POST /devices/query` page after page (x-ms-continuation) until the last; rows of all pages in order. */
  queryAll(text: string, maxItemCount: number): Promise<{ readonly rows: unknown[]; readonly pages: number; readonly elapsedMs: number }>;
  close(): void;
}

/** The request a query page is: as the service SDK sends it (registry.js executeQueryFunction). */
export function queryRequest(authorization: string, text: string, maxItemCount: number, continuation?: string): BenchRequest {
  return {
    method: 'POST',
    path: `/devices/query?api-version=${API_VERSION}`,
    headers: {
      authorization,
      'content-type': 'application/json; charset=utf-8',
      'x-ms-max-item-count': String(maxItemCount),
      ...(continuation === undefined ? {} : { 'x-ms-continuation': continuation }),
    },
    body: JSON.stringify({ query: text }),
  };
}

export function serviceApi(hub: RunningHub): ServiceApi {
  const host = hub.info.hostName;
  const authorization = serviceToken(hub.info.connectionStrings.iothubowner, Math.ceil(Date.now() / 1000) + 12 * 3600);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const failed = (what: string, res: BenchResponse) =>
    new Error(`${what} on ${host}: HTTP ${res.status} ${res.text.slice(0, 2000)}\n${hub.logs.slice(-20).join('\n')}`);

  const json: ServiceApi['json'] = async (method, path, body, headers = {}) => {
    const res = await call(agent, host, {
      method, path,
      headers: { authorization, ...(body === undefined ? {} : { 'content-type': 'application/json; charset=utf-8' }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (res.status < 200 || res.status > 299) throw failed(`${method} ${path}`, res);
    return { ...res, json: parseJson(res.text) };
  };

  const queryAll: ServiceApi['queryAll'] = async (text, maxItemCount) => {
    const rows: unknown[] = [];
    let pages = 0;
    let elapsedMs = 0;
    let continuation: string | undefined;
    do {
      const res = await call(agent, host, queryRequest(authorization, text, maxItemCount, continuation));
      elapsedMs += res.elapsedMs;
      pages++;
      if (res.status !== 200) throw failed(`query "${text}"`, res);
      const page = parseJson(res.text);
      if (!Array.isArray(page)) throw new Error(`query "${text}" on ${host}: the answer is not a JSON array: ${res.text.slice(0, 500)}`);
      for (const row of page) rows.push(row);
      const header = res.headers['x-ms-continuation'];
      continuation = typeof header === 'string' && header !== '' ? header : undefined;
    } while (continuation !== undefined);
    return { rows, pages, elapsedMs };
  };

  return { host, authorization, json, queryAll, close: () => agent.destroy() };
}

function parseJson(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
