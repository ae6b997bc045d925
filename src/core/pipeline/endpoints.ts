/**
 * The endpoints routing delivers to: one adapter per endpoint setting (re-opened when the setting changes), each
 * delivery retried with exponential back-off and, once the attempts are spent or the far side refuses for good,
 * dead-lettered to the EventLog so the route can go on. Keeps each endpoint's health as IoT Hub reports it.
 */

import { ArgumentInvalid, PipelineItemConflict } from '../errors/index.js';
import type { Clock } from '../../ports/clock/index.js';
import { EndpointFailed, type Endpoint, type EndpointBatch, type EndpointSpec } from '../../ports/endpoints/index.js';
import type { EventLog } from '../../ports/eventlog/index.js';
import type { JsonObject } from '../../ports/store/index.js';
import type { SettingRecord } from '../../ports/store/pipeline.js';
import { objectBody, type PipelineSettings } from './settings.js';

/** The built-in endpoint: the EventLog itself, read by consumer groups (IoT Hub's `events`). */
export const BUILT_IN_ENDPOINT = 'events';

export interface RetryPolicy {
  readonly maxAttempts: number;
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 8, initialBackoffMs: 500, maxBackoffMs: 30_000 };

/** IoT Hub's endpoint health states. */
export type EndpointHealthStatus = 'unknown' | 'healthy' | 'degraded' | 'unhealthy' | 'dead';

export interface EndpointHealth {
  status: EndpointHealthStatus;
  delivered: number;
  failedAttempts: number;
  deadLettered: number;
  consecutiveFailures: number;
  lastSuccessMs: number | null;
  lastFailureMs: number | null;
  lastError: string | null;
}

export interface EndpointsDeps {
  readonly clock: Clock;
  /** This node's partition of the EventLog, where dead letters go. */
  readonly deadLetters: EventLog;
  readonly open: (name: string, spec: EndpointSpec) => Endpoint;
  readonly checkSpec: (doc: unknown) => EndpointSpec;
  /** Waits; tests pass a fast one. */
  readonly sleep?: (ms: number) => Promise<void>;
}

/** What the REST API shows instead of an endpoint's secrets; sent back in a PUT, it keeps the stored value. */
export const HIDDEN_SECRET = '*****';

/** A PUT that sends back what a GET showed keeps the stored secret and header values. */
function keepHidden(rest: Record<string, unknown>, stored: JsonObject | undefined): Record<string, unknown> {
  if (!stored) return rest;
  const out = { ...rest };
  if (out.secret === HIDDEN_SECRET && typeof stored.secret === 'string') out.secret = stored.secret;
  const headers = out.headers;
  const kept = stored.headers;
  if (headers && typeof headers === 'object' && kept && typeof kept === 'object' && !Array.isArray(kept)) {
    out.headers = Object.fromEntries(Object.entries(headers as Record<string, unknown>).map(([k, v]) => [k, v === HIDDEN_SECRET && typeof kept[k] === 'string' ? kept[k] : v]));
  }
  return out;
}

/** Checks an endpoint setting: an EndpointSpec plus an optional `retry` policy. */
export function endpointValidator(checkSpec: (doc: unknown) => EndpointSpec) {
  return async (name: string, body: unknown, settings: PipelineSettings): Promise<JsonObject> => {
    if (name === BUILT_IN_ENDPOINT) throw new ArgumentInvalid(`'${BUILT_IN_ENDPOINT}' is the built-in endpoint; choose another name`);
    const { retry, name: _n, etag: _e, createdTime: _c, updatedTime: _u, ...given } = objectBody(body, 'endpoint');
    const rest = keepHidden(given, (await settings.find('endpoint', name))?.doc);
    let spec: EndpointSpec;
    try {
      spec = checkSpec(rest);
    } catch (err) {
      throw new ArgumentInvalid(`endpoint '${name}': ${(err as Error).message}`);
    }
    return { ...(spec as unknown as JsonObject), ...(retry === undefined ? {} : { retry: checkRetry(retry) as unknown as JsonObject }) };
  };
}

function checkRetry(value: unknown): RetryPolicy {
  const r = objectBody(value, 'endpoint retry policy');
  const int = (field: keyof RetryPolicy, min: number, max: number): number => {
    const v = r[field] ?? DEFAULT_RETRY[field];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new ArgumentInvalid(`retry.${field} must be an integer ${min}..${max}, got ${JSON.stringify(v)}`);
    return v;
  };
  return { maxAttempts: int('maxAttempts', 1, 100), initialBackoffMs: int('initialBackoffMs', 10, 600_000), maxBackoffMs: int('maxBackoffMs', 10, 3_600_000) };
}

/** An endpoint may not be removed while a route or an enrichment names it. */
export async function endpointRemovalCheck(name: string, settings: PipelineSettings): Promise<void> {
  for (const kind of ['route', 'enrichment'] as const) {
    for (const r of await settings.list(kind)) {
      if ((r.doc.endpointNames as string[] | undefined)?.includes(name)) {
        throw new PipelineItemConflict(`endpoint '${name}' is used by ${kind} '${r.name}'; remove or change it first`);
      }
    }
  }
}

interface OpenEndpoint {
  readonly rev: number;
  readonly endpoint: Endpoint;
  readonly retry: RetryPolicy;
}

export class Endpoints {
  private readonly open = new Map<string, OpenEndpoint>();
  private readonly health = new Map<string, EndpointHealth>();
  private closed = false;

  constructor(private readonly deps: EndpointsDeps) {}

  /** Each endpoint's health on this node. */
  healthOf(name: string): EndpointHealth {
    let h = this.health.get(name);
    if (!h) {
      h = { status: 'unknown', delivered: 0, failedAttempts: 0, deadLettered: 0, consecutiveFailures: 0, lastSuccessMs: null, lastFailureMs: null, lastError: null };
      this.health.set(name, h);
    }
    return h;
  }

  /** Opens, re-opens (the setting changed) or closes (it is gone) adapters to match the settings. */
  async sync(settings: readonly SettingRecord[]): Promise<void> {
    const wanted = new Map(settings.map((s) => [s.name, s]));
    for (const [name, o] of this.open) {
      const s = wanted.get(name);
      if (!s || s.rev !== o.rev) { this.open.delete(name); await o.endpoint.close().catch(() => undefined); }
    }
    for (const [name, s] of wanted) {
      if (this.open.has(name)) continue;
      const { retry, ...spec } = s.doc;
      this.open.set(name, {
        rev: s.rev,
        endpoint: this.deps.open(name, this.deps.checkSpec(spec)),
        retry: retry === undefined ? DEFAULT_RETRY : checkRetry(retry),
      });
    }
  }

  /**
   * Delivers with retries; when the attempts are spent (or the far side refuses for good), appends each message to
   * the dead letters and resolves, so the route moves on. Rejects only when the hub is stopping or the endpoint is
   * not open (so the batch is read again).
   */
  async deliver(name: string, batch: EndpointBatch, isStopping: () => boolean): Promise<void> {
    const o = this.open.get(name);
    if (!o) throw new Error(`endpoint '${name}' is not open on this node (yet)`);
    const h = this.healthOf(name);
    let backoffMs = o.retry.initialBackoffMs;
    for (let attempt = 1; ; attempt++) {
      if (this.closed || isStopping()) throw new Error('the pipeline is stopping');
      try {
        await o.endpoint.deliver(batch);
        Object.assign(h, { status: 'healthy', consecutiveFailures: 0, lastSuccessMs: this.deps.clock.now() });
        h.delivered += batch.messages.length;
        return;
      } catch (err) {
        const retryable = !(err instanceof EndpointFailed) || err.retryable;
        h.failedAttempts++;
        h.consecutiveFailures++;
        h.lastFailureMs = this.deps.clock.now();
        h.lastError = (err as Error).message;
        h.status = h.consecutiveFailures >= 3 ? 'unhealthy' : 'degraded';
        if (!retryable || attempt >= o.retry.maxAttempts) {
          await this.deadLetter(name, batch, (err as Error).message, attempt);
          h.deadLettered += batch.messages.length;
          h.status = 'dead';
          return;
        }
        await (this.deps.sleep ?? sleep)(backoffMs);
        backoffMs = Math.min(o.retry.maxBackoffMs, backoffMs * 2);
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.open.values()];
    this.open.clear();
    await Promise.all(all.map((o) => o.endpoint.close().catch(() => undefined)));
  }

  private async deadLetter(endpoint: string, batch: EndpointBatch, reason: string, attempts: number): Promise<void> {
    const now = this.deps.clock.now();
    await this.deps.deadLetters.append(batch.messages.map((m) => ({
      kind: 'deadLetter', deviceId: m.deviceId, moduleId: m.moduleId, enqueuedTimeMs: now,
      properties: {
        'corral-route': batch.route, 'corral-endpoint': endpoint, 'corral-reason': reason.slice(0, 1000), 'corral-attempts': String(attempts),
        'corral-partition': m.partition, 'corral-sequence': String(m.sequence), '$.content-type': 'application/json',
      },
      body: Buffer.from(m.json),
    })));
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
