import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { connect, type NatsConnection } from 'nats';
import { ensureDevCa } from '../../src/edges/tls/dev-ca.js';
import type { TelemetryWindow } from './load.js';

/**
 * The far end of the benchmark's route, in this process: what arrives, when, and how long after the hub enqueued
 * it. Each routed document is JSON (docs/pipeline.md) beginning `{"partition":…,"sequenceNumber":N,
 * "enqueuedTime":"<ISO>",…`; both fields are read by searching the bytes, not by parsing the document, so the
 * receiver costs little beside the load generator on the same core.
 */

const SEQUENCE_KEY = Buffer.from('"sequenceNumber":');
const ENQUEUED_KEY = Buffer.from('"enqueuedTime":"');
/** `2025-01-01T00:00:00.000Z` */
const ISO_CHARS = 24;

export class Arrivals {
  /** Distinct records received, and records received again (at-least-once redeliveries). */
  received = 0;
  duplicates = 0;
  inWindow = 0;
  /** Arrival (wall clock) minus enqueuedTime, ms, for records arriving inside the window. */
  readonly latenciesMs: number[] = [];
  lastArrivalAt = 0;
  private seen = new Uint8Array(1 << 20);
  private waiter: { count: number; resolve: () => void } | undefined;
  /** The window arrivals are counted in; none before it is set. */
  timeline: TelemetryWindow = { countFrom: Infinity, stopAt: -Infinity };

  /** Every routed document in `bytes` (one, or a webhook's JSON array of them). */
  scan(bytes: Buffer): void {
    const nowPerf = performance.now();
    const nowWall = Date.now();
    for (let at = bytes.indexOf(SEQUENCE_KEY); at >= 0; at = bytes.indexOf(SEQUENCE_KEY, at + 1)) {
      const sequence = readInt(bytes, at + SEQUENCE_KEY.length);
      const e = bytes.indexOf(ENQUEUED_KEY, at);
      if (e < 0) throw new Error(`a routed document without enqueuedTime: ${bytes.toString('utf8', at, at + 200)}`);
      const start = e + ENQUEUED_KEY.length;
      const enqueuedMs = Date.parse(bytes.toString('latin1', start, start + ISO_CHARS));
      this.arrived(sequence, enqueuedMs, nowPerf, nowWall);
    }
  }

  /** Resolves once `count` distinct records have arrived, or with false after `timeoutMs`. */
  waitFor(count: number, timeoutMs: number): Promise<boolean> {
    if (this.received >= count) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.waiter = undefined; resolve(false); }, timeoutMs);
      this.waiter = { count, resolve: () => { clearTimeout(timer); this.waiter = undefined; resolve(true); } };
    });
  }

  private arrived(sequence: number, enqueuedMs: number, nowPerf: number, nowWall: number): void {
    if (sequence >= this.seen.length * 8) {
      const grown = new Uint8Array(Math.max(this.seen.length * 2, Math.ceil((sequence + 1) / 8)));
      grown.set(this.seen);
      this.seen = grown;
    }
    const bit = 1 << (sequence & 7);
    if (this.seen[sequence >> 3] & bit) { this.duplicates++; return; }
    this.seen[sequence >> 3] |= bit;
    this.received++;
    this.lastArrivalAt = nowPerf;
    if (nowPerf >= this.timeline.countFrom && nowPerf <= this.timeline.stopAt) {
      this.inWindow++;
      this.latenciesMs.push(nowWall - enqueuedMs);
    }
    if (this.waiter && this.received >= this.waiter.count) this.waiter.resolve();
  }
}

function readInt(bytes: Buffer, at: number): number {
  let n = 0;
  for (let i = at; i < bytes.length; i++) {
    const c = bytes[i];
    if (c < 0x30 || c > 0x39) break;
    n = n * 10 + (c - 0x30);
  }
  return n;
}

/** A running receiver: the endpoint setting that points the hub at it, and how to stop it. */
export interface Receiver {
  readonly kind: 'nats' | 'webhook';
  readonly endpointSpec: Readonly<Record<string, unknown>>;
  readonly describe: string;
  close(): Promise<void>;
}

/** A core NATS subscriber on a fresh subject; the hub's NATS endpoint publishes one message per record to it. */
export async function natsReceiver(url: string, arrivals: Arrivals): Promise<Receiver> {
  const subject = `bench.pipeline.${randomBytes(4).toString('hex')}`;
  const u = new URL(url);
  const nc: NatsConnection = await connect({ servers: `${u.hostname}:${u.port || 4222}`, name: 'corral-bench-pipeline' });
  nc.subscribe(subject, {
    callback: (err, msg) => {
      if (err) throw err;
      arrivals.scan(Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength));
    },
  });
  await nc.flush();
  return {
    kind: 'nats', endpointSpec: { type: 'nats', url, subject }, describe: `NATS subscriber on ${subject} at ${u.host}`,
    close: () => nc.drain(),
  };
}

/**
 * An HTTPS server answering 200 to each POST (one JSON array per batch), with a certificate from a development CA
 * made in `dir`, whose PEM the endpoint setting carries as caCertificate.
 */
export async function webhookReceiver(address: string, dir: string, arrivals: Arrivals): Promise<Receiver> {
  const tls = ensureDevCa(dir, [address]);
  const server: Server = createServer({ cert: tls.cert, key: tls.key, keepAliveTimeout: 60_000 }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      arrivals.scan(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
      res.writeHead(200, { 'content-length': '0' }).end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, address, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    kind: 'webhook', endpointSpec: { type: 'webhook', url: `https://${address}:${port}/bench`, caCertificate: tls.ca },
    describe: `HTTPS webhook receiver at ${address}:${port}`,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
