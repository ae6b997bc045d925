import { createReadStream, statSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { performance } from 'node:perf_hooks';
import { pipeline } from 'node:stream/promises';

/**
 * HTTPS load for benchmarks against a real hub on port 443 of a loopback address. The hub's CA must already be
 * trusted by this process (test/support/hub-process.ts trustCa, which startHub calls).
 */

export interface BenchRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body?: string;
}

export interface StreamedResponse {
  readonly status: number;
  readonly text: string;
  readonly json: unknown;
  /** From the first byte sent to the last byte of the response. */
  readonly elapsedMs: number;
}

/** POSTs (or `method`s) a file as the streamed body; the clock starts as the request is made. */
export function streamFile(host: string, method: string, path: string, headers: Record<string, string>, file: string): Promise<StreamedResponse> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = request({ host, port: 443, method, path, headers: { ...headers, 'content-length': String(statSync(file).size) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const elapsedMs = performance.now() - started;
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode ?? 0, text, json, elapsedMs });
      });
    });
    req.on('error', reject);
    // The hub may answer (an error) before reading the whole body; that rejection is the request's own.
    pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), req).catch(reject);
  });
}

/** One request on a keep-alive agent; resolves with the status once the response body is drained. */
function send(agent: Agent, host: string, r: BenchRequest): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port: 443, agent, method: r.method, path: r.path, headers: headersOf(r) }, (res) => {
      res.on('error', reject);
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.resume();
    });
    req.on('error', reject);
    req.end(r.body);
  });
}

function headersOf(r: BenchRequest): Record<string, string> {
  return r.body === undefined ? r.headers : { ...r.headers, 'content-length': String(Buffer.byteLength(r.body)) };
}

export interface BenchResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
  /** From the request made to the last byte of the response. */
  readonly elapsedMs: number;
}

/** One request on a keep-alive agent; resolves with the whole response once its body has arrived. */
export function call(agent: Agent, host: string, r: BenchRequest): Promise<BenchResponse> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = request({ host, port: 443, agent, method: r.method, path: r.path, headers: headersOf(r) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => resolve({
        status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8'), elapsedMs: performance.now() - started,
      }));
    });
    req.on('error', reject);
    req.end(r.body);
  });
}

export interface LoadResult {
  /** Per-request latencies of the measured window, ascending, in ms. */
  readonly latenciesMs: Float64Array;
  readonly opsPerSecond: number;
  /** Responses outside 2xx in the measured window. */
  readonly errors: number;
  /** The first such status seen, for the message. */
  readonly firstErrorStatus?: number;
  /** With `check`: the first failed check's words (or the first non-2xx answer's body), for the message. */
  readonly firstProblem?: string;
}

/** Looks at an answer (any status) after its latency is taken; returns what is wrong with it, or undefined. */
export type ResponseCheck = (request: BenchRequest, status: number, body: string) => string | undefined;

/**
 * A closed loop: `clients` loops, each on its own keep-alive connection, send `next()` and wait for the answer
 * before the next one. A warm-up (connections, JIT, caches) runs first and is not counted; then the loops run
 * for `seconds` and every request that finishes inside the window is recorded. With `check`, each body is read
 * whole and checked (after its latency is taken, so the check is not timed); an answer the check faults counts as
 * an error, as a non-2xx one does. Without it, bodies are drained unread.
 */
export async function closedLoop(opts: {
  host: string; clients: number; seconds: number; warmupSeconds: number; next: () => BenchRequest; check?: ResponseCheck;
}): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: opts.clients, maxFreeSockets: opts.clients });
  try {
    await runLoops(agent, opts, opts.warmupSeconds, () => {});
    const latencies: number[] = [];
    let errors = 0;
    let firstErrorStatus: number | undefined;
    let firstProblem: string | undefined;
    const elapsedMs = await runLoops(agent, opts, opts.seconds, (status, ms, problem) => {
      latencies.push(ms);
      if (status < 200 || status > 299 || problem !== undefined) {
        errors++;
        firstErrorStatus ??= status;
        firstProblem ??= problem;
      }
    });
    const sorted = Float64Array.from(latencies).sort();
    return { latenciesMs: sorted, opsPerSecond: (sorted.length * 1000) / elapsedMs, errors, firstErrorStatus, firstProblem };
  } finally {
    agent.destroy();
  }
}

async function runLoops(
  agent: Agent, opts: { host: string; clients: number; next: () => BenchRequest; check?: ResponseCheck }, seconds: number,
  record: (status: number, latencyMs: number, problem: string | undefined) => void,
): Promise<number> {
  const started = performance.now();
  const deadline = started + seconds * 1000;
  const { check } = opts;
  const loop = async () => {
    while (performance.now() < deadline) {
      const r = opts.next();
      const t0 = performance.now();
      if (check === undefined) {
        const status = await send(agent, opts.host, r);
        const t1 = performance.now();
        if (t1 <= deadline) record(status, t1 - t0, undefined);
      } else {
        const res = await call(agent, opts.host, r);
        const t1 = performance.now();
        if (t1 <= deadline) {
          const ok = res.status >= 200 && res.status <= 299;
          record(res.status, t1 - t0, ok ? check(r, res.status, res.text) : `HTTP ${res.status}: ${res.text.slice(0, 500)}`);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: opts.clients }, loop));
  return Math.min(performance.now(), deadline) - started;
}

/** The p-th percentile (0 < p ≤ 100) of ascending values, nearest-rank; NaN when empty. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}
