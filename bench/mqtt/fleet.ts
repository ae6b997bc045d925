import { randomBytes } from 'node:crypto';
import { Agent, request } from 'node:https';
import { performance } from 'node:perf_hooks';
import { buildSasToken } from '../../src/core/access/index.js';
import type { RunningHub } from '../../test/support/hub-process.js';
import { serviceToken } from '../../test/support/rest.js';

/** The benchmark's devices: ids, their keys (made here, so no key is read back), and MQTT credentials. */

export const API_VERSION = '2021-04-12';

export function deviceId(i: number): string {
  return `bench-mqtt-${String(i).padStart(6, '0')}`;
}

export interface Fleet {
  readonly ids: readonly string[];
  readonly keys: readonly string[];
}

/** `count` device ids with a fresh random key each. */
export function makeFleet(count: number): Fleet {
  const ids: string[] = [];
  const keys: string[] = [];
  const pool = randomBytes(32 * count);
  for (let i = 0; i < count; i++) {
    ids.push(deviceId(i));
    keys.push(pool.toString('base64', 32 * i, 32 * (i + 1)));
  }
  return { ids, keys };
}

/** IoT Hub's MQTT CONNECT for device i: clientId, username and a SAS password signed with its key. */
export function deviceCredentials(hostName: string, fleet: Fleet, i: number, expirySeconds: number): { clientId: string; username: string; password: string } {
  const id = fleet.ids[i];
  return {
    clientId: id,
    username: `${hostName}/${id}/?api-version=${API_VERSION}`,
    password: buildSasToken(`${hostName}/devices/${id}`, fleet.keys[i], expirySeconds),
  };
}

export interface HttpResult {
  readonly status: number;
  readonly text: string;
}

/** One HTTPS request to port 443 of the hub, on `agent` when given; the whole answer as text. */
export function call(host: string, method: string, path: string, headers: Record<string, string>, body?: string | Buffer, agent?: Agent): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const h = body === undefined ? headers : { ...headers, 'content-length': String(Buffer.byteLength(body)) };
    const req = request({ host, port: 443, method, path, headers: h, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Registers the fleet in one `POST /corral/v1/registry/import` (JSON Lines, SAS keys given): far faster than
 * `POST /devices` 100 at a time once the fleet reaches tens of thousands. Resolves with the wall time in ms.
 */
export async function importFleet(hub: RunningHub, fleet: Fleet): Promise<number> {
  const lines = fleet.ids.map((id, i) => JSON.stringify({
    id, status: 'enabled', authentication: { type: 'sas', symmetricKey: { primaryKey: fleet.keys[i], secondaryKey: fleet.keys[i] } },
  }));
  const started = performance.now();
  const res = await call(hub.info.hostName, 'POST', '/corral/v1/registry/import', {
    authorization: serviceToken(hub.info.connectionStrings.iothubowner),
    'content-type': 'application/x-ndjson',
  }, lines.join('\n') + '\n');
  const report = (() => { try { return JSON.parse(res.text) as { ok?: unknown; upserted?: unknown }; } catch { return undefined; } })();
  if (res.status !== 200 || report?.ok !== true || report.upserted !== fleet.ids.length) {
    throw new Error(`import of ${fleet.ids.length} devices into ${hub.info.hostName} failed: HTTP ${res.status} ${res.text.slice(0, 1000)}`);
  }
  return performance.now() - started;
}

/** A service-policy SAS token valid for `hours`. */
export function serviceAuthorization(hub: RunningHub, policy = 'service', hours = 6): string {
  return serviceToken(hub.info.connectionStrings[policy], Math.ceil(Date.now() / 1000) + hours * 3600);
}
