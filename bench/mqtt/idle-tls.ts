import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { openClient, type Endpoint, type RawClient } from './wire.js';
import { rssOf } from './proc.js';

/**
 * Figure 2: many idle TLS connections held open against one process, whose resident memory is read before and
 * after. The same code holds them against the hub and against the peer (a bare TLS echo server).
 */

/** TLS handshakes in flight at once: enough to keep both cores busy, few enough not to overflow the accept queue. */
const HANDSHAKE_CONCURRENCY = 64;
/** After the last connection, memory settles (lazy frees, timers armed) for this long before it is read. */
const SETTLE_MS = 5000;
/** Source addresses each carry at most this many connections: far below the ~28k ephemeral ports of each. */
const PER_SOURCE_ADDRESS = 10_000;

export interface Held {
  readonly clients: RawClient[];
  /** How many were asked for, how many are open; when fewer, the first failure says why. */
  readonly asked: number;
  readonly firstError?: string;
  readonly rssBefore: number;
  readonly rssAfter: number;
  readonly elapsedMs: number;
}

/** Source address for connection i: `${prefix}.1`, `${prefix}.2`, … (e.g. prefix '127.0.1'). */
export function sourceAddresses(prefix: string, count: number): (i: number) => string {
  const n = Math.max(1, Math.ceil(count / PER_SOURCE_ADDRESS));
  return (i) => `${prefix}.${1 + (i % n)}`;
}

/**
 * Opens up to `count` connections (CONNECT sent, answer awaited) with bounded concurrency; stops opening at the
 * first failure and keeps what is open. Reads `pid`'s VmRSS just before the first and after the last has settled.
 */
export async function holdIdle(o: {
  endpoint: Endpoint; count: number; pid: number; connectOf: (i: number) => Buffer; sourceOf: (i: number) => string; echo?: boolean;
  progress: (message: string) => void;
}): Promise<Held> {
  const rssBefore = rssOf(o.pid);
  const started = Date.now();
  const clients: RawClient[] = [];
  let next = 0;
  let firstError: string | undefined;
  let lastReport = Date.now();
  const worker = async () => {
    while (next < o.count && firstError === undefined) {
      const i = next++;
      try {
        const c = await openClient(o.endpoint, o.connectOf(i), { localAddress: o.sourceOf(i), echo: o.echo, timeoutMs: 60_000 });
        c.handler.current = () => {};
        clients.push(c);
      } catch (err) {
        firstError ??= `connection ${i}: ${(err as Error).message}`;
      }
      if (Date.now() - lastReport > 5000) {
        lastReport = Date.now();
        o.progress(`${clients.length} connections open (${Math.round(clients.length / ((Date.now() - started) / 1000))}/s), RSS ${(rssOf(o.pid) / 2 ** 20).toFixed(0)} MiB`);
      }
    }
  };
  await Promise.all(Array.from({ length: HANDSHAKE_CONCURRENCY }, worker));
  const elapsedMs = Date.now() - started;
  await sleep(SETTLE_MS);
  const closedMeanwhile = clients.filter((c) => c.socket.destroyed).length;
  if (closedMeanwhile > 0) firstError ??= `${closedMeanwhile} connections were closed by the server while idle`;
  const rssAfter = rssOf(o.pid);
  return { clients: clients.filter((c) => !c.socket.destroyed), asked: o.count, firstError, rssBefore, rssAfter, elapsedMs };
}

/** The peer: `bench/mqtt/tls-echo-server.ts` in its own process with the hub's certificate; resolves once it listens. */
export async function startEchoServer(host: string, port: number, tlsDir: string): Promise<{ process: ChildProcess; stop: () => Promise<void> }> {
  const script = join(import.meta.dirname, 'tls-echo-server.ts');
  const child = spawn(process.execPath, ['--import', 'tsx', script, host, String(port), join(tlsDir, 'server.pem'), join(tlsDir, 'server-key.pem')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const killChild = () => child.kill('SIGKILL');
  process.once('exit', killChild);
  const exited = new Promise<void>((resolve) => child.once('exit', () => { process.off('exit', killChild); resolve(); }));
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => { if (line === 'ready') resolve(); });
    void exited.then(() => reject(new Error('the TLS echo server exited before it listened')));
  });
  return {
    process: child,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
