import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import tls from 'node:tls';

/**
 * Real hub processes for end-to-end tests, started through the `corral start` contract.
 * Each test file binds its own loopback address so files run in parallel:
 *   127.0.0.2 registry-sqlite   127.0.0.3 registry-postgres   127.0.0.4 rest-raw   127.0.0.5 cli
 *   127.0.0.6 start-contract    127.0.0.7 start-contract (second hub)   127.0.0.8 cli (second hub)
 *   127.0.0.10 rest-raw (throttled hub)   127.0.0.11 c2d-http   127.0.0.12 device-mqtt   127.0.0.13 device-mqtt-raw
 *   127.0.0.14 device-http   127.0.0.15/16 two-nodes   127.0.0.17 device-x509   127.0.0.18/19 fleet (sqlite/postgres)
 *   127.0.0.20/21 jobs-restart (sqlite/postgres)   127.0.0.22 cli-pipeline
 *   127.0.0.23 pipeline-sqlite (.24 its webhook)   127.0.0.25 pipeline-jetstream (.26 its webhook)
 *   127.0.0.27/28 pipeline-cluster (.29 its webhook)
 *   127.0.0.50+ benchmarks
 */

export const CORRAL_BIN = resolve(import.meta.dirname, '../../bin/corral.js');

export interface HubReady {
  readonly hostName: string;
  readonly ports: { readonly https: number; readonly mqtts: number };
  readonly caFile: string;
  readonly connectionStrings: Record<string, string>;
}

export interface RunningHub {
  readonly info: HubReady;
  readonly dataDir: string;
  readonly process: ChildProcess;
  /** stderr lines so far (the hub's JSON log). */
  readonly logs: string[];
  /** SIGTERM and wait; resolves with the exit code. */
  stop(): Promise<number | null>;
}

const trusted = new Set<string>();
let patched = false;

/**
 * Makes this test process trust a hub's development CA, as NODE_EXTRA_CA_CERTS would at startup: the Azure SDKs
 * build their own https agents, so the CA is added where every TLS context is made.
 */
export function trustCa(caFile: string): void {
  trusted.add(readFileSync(caFile, 'utf8'));
  if (patched) return;
  patched = true;
  const original = tls.createSecureContext;
  tls.createSecureContext = (options?: tls.SecureContextOptions) =>
    original(options?.ca ? options : { ...options, ca: [...tls.rootCertificates, ...trusted] });
}

export function tempDataDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `corral-${label}-`));
}

/** Runs `corral start` with args; resolves once it prints `corral ready {json}`, rejects if it exits first. */
export async function startHub(opts: { address: string; dataDir?: string; args?: string[]; env?: NodeJS.ProcessEnv; trust?: boolean }): Promise<RunningHub> {
  const dataDir = opts.dataDir ?? tempDataDir(opts.address.replace(/\./g, '-'));
  const args = ['start', '--data', dataDir, '--hostname', opts.address, '--bind', opts.address, '--log-level', 'warn', ...(opts.args ?? [])];
  const child = spawn(process.execPath, [CORRAL_BIN, ...args], { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  // A hub never outlives the test process that started it, even when that process is killed mid-test.
  const killChild = () => child.kill('SIGKILL');
  process.once('exit', killChild);
  child.once('exit', () => process.off('exit', killChild));
  const logs: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (l) => logs.push(l));
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  const info = await new Promise<HubReady>((res, rej) => {
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (line) => {
      if (line.startsWith('corral ready ')) res(JSON.parse(line.slice('corral ready '.length)) as HubReady);
    });
    void exited.then((code) => rej(new Error(`hub exited with ${code} before ready:\n${logs.join('\n')}`)));
  });
  if (opts.trust !== false) trustCa(info.caFile);
  return {
    info, dataDir, process: child, logs,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/** Stops the hub and removes its data dir. */
export async function disposeHub(hub: RunningHub): Promise<void> {
  await hub.stop();
  rmSync(hub.dataDir, { recursive: true, force: true });
}
