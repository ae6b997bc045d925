import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Agent } from 'node:https';
import { cpus, loadavg, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { connect as connectNats } from 'nats';
import { disposeHub, startHub, tempDataDir, type RunningHub } from '../test/support/hub-process.js';
import { natsUrl, requireNats, skipReason } from '../test/support/services.js';
import { countLabel, positiveInt } from './support/hub.js';
import { call, percentile } from './support/https-load.js';
import { serviceApi, type ServiceApi } from './support/service-api.js';
import { connectDevices } from './mqtt/closed-loop.js';
import { deviceCredentials, importFleet, makeFleet, type Fleet } from './mqtt/fleet.js';
import { cpuMeter } from './mqtt/proc.js';
import { closeAll, connectPacket } from './mqtt/wire.js';
import { lagsInWindow, parseMetrics, sampleLag, type LagSample } from './pipeline/lag.js';
import { telemetryLoad, type AckCounter, type TelemetryLoadResult, type TelemetryWindow } from './pipeline/load.js';
import { Arrivals, natsReceiver, webhookReceiver, type Receiver } from './pipeline/receivers.js';

/**
 * `npm run bench -- pipeline [--devices N] [--seconds D] [--warmup S] [--window W] [--endpoint webhook|nats]
 *                            [--drain-seconds T] [--sample-ms M] [--hub-cpu-prof DIR] [--eventlog sqlite|jetstream]`
 *
 * The telemetry pipeline's cost to ingestion, each phase on a fresh hub (SQLite store and EventLog, temp data dir):
 * 1. pipeline-ingest: N MQTT devices publish JSON telemetry at QoS 1 (≤ W unacknowledged each) with no route and no
 *    rule: PUBACKs per second.
 * 2. pipeline-route-rule: the same load with one route (every telemetry record) to an endpoint whose receiver runs in
 *    this process, and one threshold rule that fires rarely: records arriving at the receiver per second, the ratio
 *    to phase 1, end-to-end latency (arrival − enqueuedTime) and the route consumer's lag from /metrics; then the
 *    time until every acknowledged record has arrived.
 * Figures go to stdout, one line each; progress to stderr.
 */

const INGEST_HUB = '127.0.0.54';
const PIPELINE_HUB = '127.0.0.55';
const WEBHOOK_RECEIVER = '127.0.0.56';
const MQTT_PORT = 18830;
const ROUTE = 'bench';
const ENDPOINT = 'bench-receiver';
const RULE = 'bench-hot';
/**
 * Device 0's first slot sends this: above the rule's 90, so the rule raises and clears about once per cycle of that
 * device (with one slot, device 0 is always hot: one alert, raised once).
 */
const HOT = 95;
const TOKEN_HOURS = 12;
const KEEPALIVE_SECONDS = 1200;
const ROUTE_START_TIMEOUT_MS = 15_000;

type EndpointKind = 'nats' | 'webhook';

interface Options {
  readonly devices: number;
  readonly seconds: number;
  readonly warmupSeconds: number;
  readonly window: number;
  readonly endpoint: EndpointKind;
  readonly drainSeconds: number;
  readonly sampleMs: number;
  readonly hubCpuProf?: string;
  /** The hub's EventLog: SQLite (the default) or JetStream at the local NATS (streams of a prefix of this run). */
  readonly eventLog: 'sqlite' | 'jetstream';
}

function parseOptions(args: string[]): Options {
  const { values } = parseArgs({
    args, strict: true, allowPositionals: false,
    options: Object.fromEntries(['devices', 'seconds', 'warmup', 'window', 'endpoint', 'drain-seconds', 'sample-ms', 'hub-cpu-prof', 'eventlog'].map((f) => [f, { type: 'string' as const }])),
  });
  const v = values as Record<string, string | undefined>;
  const endpoint = v.endpoint ?? 'webhook';
  if (endpoint !== 'nats' && endpoint !== 'webhook') throw new Error(`--endpoint must be nats or webhook, got '${endpoint}'`);
  const eventLog = v.eventlog ?? 'sqlite';
  if (eventLog !== 'sqlite' && eventLog !== 'jetstream') throw new Error(`--eventlog must be sqlite or jetstream, got '${eventLog}'`);
  const window = positiveInt('window', v.window, 4);
  if (window > 65535) throw new Error('--window must be at most 65535');
  return {
    devices: positiveInt('devices', v.devices, 1000),
    seconds: positiveInt('seconds', v.seconds, 20),
    warmupSeconds: positiveInt('warmup', v.warmup, 3),
    window,
    endpoint,
    drainSeconds: positiveInt('drain-seconds', v['drain-seconds'], 120),
    sampleMs: positiveInt('sample-ms', v['sample-ms'], 200),
    hubCpuProf: v['hub-cpu-prof'],
    eventLog,
  };
}

/** The streams of this run's JetStream EventLog: a prefix of its own, deleted after each phase. */
const STREAM_PREFIX = `BENCH_${process.pid}`;

function eventLogArgs(opts: Options, label: string): string[] {
  if (opts.eventLog === 'sqlite') return [];
  return ['--eventlog', 'jetstream', '--nats-url', natsUrl(), '--node-id', `bench-${label}`, '--eventlog-stream-prefix', STREAM_PREFIX];
}

async function deleteStreams(opts: Options): Promise<void> {
  if (opts.eventLog === 'sqlite') return;
  const nc = await connectNats({ servers: natsUrl() });
  try {
    const jsm = await nc.jetstreamManager();
    for await (const name of jsm.streams.names()) if (name.startsWith(`${STREAM_PREFIX}_`)) await jsm.streams.delete(name);
  } finally {
    await nc.close();
  }
}

function progress(message: string): void {
  process.stderr.write(`[bench pipeline] ${message}\n`);
}

const ms = (x: number) => `${x.toFixed(x < 10 ? 2 : 0)} ms`;
const latency = (sorted: Float64Array | number[]) => {
  const s = sorted instanceof Float64Array ? sorted : Float64Array.from(sorted).sort();
  return `p50 ${ms(percentile(s, 50))} p99 ${ms(percentile(s, 99))}`;
};
const records = (sorted: Float64Array, p: number) => (sorted.length === 0 ? 'n/a' : `${Math.round(percentile(sorted, p))}`);

function temperatureOf(i: number, slot: number): number {
  if (i === 0 && slot === 0) return HOT;
  return 20 + ((i * 7 + slot * 13) % 100) / 10;
}

/** The pid of the first process whose command name is `comm`, or undefined. */
function pidOf(comm: string): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === comm) return Number(entry);
    } catch { /* gone meanwhile */ }
  }
  return undefined;
}

interface PhaseResult {
  readonly load: TelemetryLoadResult;
  readonly timeline: TelemetryWindow;
  readonly lags: readonly LagSample[];
  readonly cpu: string;
}

/** What phase 2 adds to a hub before the load, and reads after it. */
interface PipelineSetup {
  readonly receiver: Receiver;
  readonly arrivals: Arrivals;
  readonly ruleWired: boolean;
}

/**
 * Sets phase 2 up (before any device connects), connects the fleet, runs the load with /metrics sampled, and
 * (phase 2) waits for the route to drain.
 */
async function runPhase(
  label: string, opts: Options, hub: RunningHub, api: ServiceApi, fleet: Fleet,
  setup: (() => Promise<{ arrivals: Arrivals; extraPids: Record<string, number> }>) | undefined,
): Promise<PhaseResult & { drainMs?: number; drained?: boolean }> {
  const extra = setup ? await setup() : undefined;
  const expiry = Math.ceil(Date.now() / 1000) + TOKEN_HOURS * 3600;
  const clients = await connectDevices({ host: hub.info.hostName, port: MQTT_PORT }, opts.devices,
    (i) => connectPacket({ ...deviceCredentials(hub.info.hostName, fleet, i, expiry), keepalive: KEEPALIVE_SECONDS }));
  progress(`${label}: ${clients.length} devices connected to ${hub.info.hostName}:${MQTT_PORT}`);
  try {
    const countFrom = performance.now() + opts.warmupSeconds * 1000;
    const timeline: TelemetryWindow = { countFrom, stopAt: countFrom + opts.seconds * 1000 };
    if (extra) extra.arrivals.timeline = timeline;
    const pids: Record<string, number> = { hub: hub.process.pid!, generator: process.pid, ...extra?.extraPids };
    let cpu = '';
    const meterStart = setTimeout(() => {
      const m = cpuMeter(pids);
      meterStop = setTimeout(() => { cpu = m.stop(); }, timeline.stopAt - performance.now());
    }, timeline.countFrom - performance.now());
    let meterStop: NodeJS.Timeout | undefined;
    const sampler = sampleLag(api, opts.sampleMs);
    const counter: AckCounter = { acked: 0 };
    const routeConsumer = `route:${ROUTE}`;
    const ticker = setInterval(() => {
      const last = sampler.samples.at(-1);
      const lag = last ? [...last.byConsumer].map(([c, n]) => `${c} ${n}`).join(', ') : 'n/a';
      progress(`${label}: ${counter.acked} acked${extra ? `, ${extra.arrivals.received} at the receiver` : ''}; lag ${lag}`);
    }, 5000);
    let load: TelemetryLoadResult;
    let drainMs: number | undefined;
    let drained: boolean | undefined;
    try {
      progress(`${label}: load for ${opts.warmupSeconds} s warm-up + ${opts.seconds} s measured`);
      load = await telemetryLoad(clients, {
        endpoint: { host: hub.info.hostName, port: MQTT_PORT }, window: opts.window, timeline,
        topicOf: (i) => `devices/${fleet.ids[i]}/messages/events/`, temperatureOf,
      }, counter);
      if (extra) {
        progress(`${label}: load done, ${load.ackedTotal} acknowledged; waiting for the receiver to have them all`);
        drained = await extra.arrivals.waitFor(load.ackedTotal, opts.drainSeconds * 1000);
        drainMs = Math.max(0, extra.arrivals.lastArrivalAt - load.lastAckAt);
      }
    } finally {
      clearInterval(ticker);
      clearTimeout(meterStart);
      clearTimeout(meterStop);
      await sampler.stop();
    }
    const lagNames = [...new Set(sampler.samples.flatMap((s) => [...s.byConsumer.keys()]))].sort();
    for (const c of lagNames) {
      const l = lagsInWindow(sampler.samples, c, timeline);
      progress(`${label}: consumer ${c}${c === routeConsumer ? ' (the route)' : ''} lag in the window: p50 ${records(l, 50)} p99 ${records(l, 99)} max ${records(l, 100)} records (${l.length} samples)`);
    }
    progress(`${label}: CPU over the window: ${cpu || 'not measured'}`);
    return { load, timeline, lags: sampler.samples, cpu, drainMs, drained };
  } finally {
    await closeAll(clients);
  }
}

/** With `--hub-cpu-prof DIR`: the hub writes its CPU profile there as it exits (the mqtt benchmark's hook). */
function hubEnv(opts: Options, label: string): NodeJS.ProcessEnv | undefined {
  if (!opts.hubCpuProf) return undefined;
  const hook = pathToFileURL(join(import.meta.dirname, 'mqtt', 'cpu-profile.ts')).href;
  const file = join(resolve(opts.hubCpuProf), `corral-pipeline-${label}-${Date.now()}.cpuprofile`);
  progress(`hub CPU profile → ${file}`);
  return { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import tsx --import ${hook}`.trim(), CORRAL_BENCH_CPU_PROFILE: file };
}

/** A fresh hub with the fleet imported; `body` runs against it; the hub and its data dir are gone afterwards. */
async function withHub<T>(
  address: string, label: string, opts: Options, fleet: Fleet, body: (hub: RunningHub, api: ServiceApi) => Promise<T>,
): Promise<T> {
  const dataDir = tempDataDir(`bench-pipeline-${label}`);
  const hub = await startHub({ address, dataDir, args: ['--mqtt-port', String(MQTT_PORT), ...eventLogArgs(opts, label)], env: hubEnv(opts, label) })
    .catch((err: unknown) => { rmSync(dataDir, { recursive: true, force: true }); throw err; });
  const api = serviceApi(hub);
  try {
    const importMs = await importFleet(hub, fleet);
    progress(`${label}: hub up on ${address} (SQLite store, ${opts.eventLog === 'sqlite' ? 'SQLite' : 'JetStream'} EventLog, plain MQTT ${MQTT_PORT}); ${fleet.ids.length} devices imported in ${(importMs / 1000).toFixed(1)} s`);
    return await body(hub, api);
  } finally {
    api.close();
    await disposeHub(hub);
    await deleteStreams(opts);
  }
}

/** PUT of a setting that may not exist on this hub yet: the status, not an exception, for a 404. */
async function putSetting(api: ServiceApi, path: string, body: unknown): Promise<{ status: number; text: string }> {
  const agent = new Agent({ keepAlive: false });
  try {
    const res = await call(agent, api.host, {
      method: 'PUT', path, headers: { authorization: api.authorization, 'content-type': 'application/json; charset=utf-8' }, body: JSON.stringify(body),
    });
    if (res.status !== 404 && (res.status < 200 || res.status > 299)) throw new Error(`PUT ${path}: HTTP ${res.status} ${res.text.slice(0, 1000)}`);
    return res;
  } finally {
    agent.destroy();
  }
}

/** The alerts the rule raised during the phase (each raise opens a new alert; a clear closes it). */
async function countAlerts(api: ServiceApi): Promise<number> {
  let count = 0;
  let continuation: string | undefined;
  do {
    const res = await api.json('GET', `/corral/v1/alerts?rule=${RULE}&limit=1000${continuation ? `&continuation=${encodeURIComponent(continuation)}` : ''}`);
    if (!Array.isArray(res.json)) throw new Error(`GET /corral/v1/alerts: not a JSON array: ${res.text.slice(0, 300)}`);
    count += res.json.length;
    const next = res.headers['x-ms-continuation'];
    continuation = typeof next === 'string' && next !== '' ? next : undefined;
  } while (continuation !== undefined);
  return count;
}

/** Waits (up to 120 s) until the rules consumer has read everything. */
async function rulesCaughtUp(api: ServiceApi): Promise<void> {
  const deadline = performance.now() + 120_000;
  while (performance.now() < deadline) {
    const lag = parseMetrics((await api.json('GET', '/metrics')).text, performance.now()).byConsumer.get('rules');
    if (lag === 0) return;
    await sleep(200);
  }
  progress('the rules consumer is still behind after 120 s; the alert count is a floor');
}

/** Waits until the route's cursor runs on a partition (the pipeline picks settings up on its 1 s tick). */
async function routeRunning(api: ServiceApi): Promise<void> {
  const deadline = performance.now() + ROUTE_START_TIMEOUT_MS;
  for (;;) {
    const health = (await api.json('GET', '/corral/v1/routing/health')).json as { routes?: { name: string; partitions: Record<string, unknown> }[] };
    const route = health.routes?.find((r) => r.name === ROUTE);
    if (route && Object.keys(route.partitions).length > 0) return;
    if (performance.now() > deadline) throw new Error(`route '${ROUTE}' not running ${ROUTE_START_TIMEOUT_MS / 1000} s after it was made: ${JSON.stringify(health)}`);
    await sleep(200);
  }
}

async function configurePipeline(api: ServiceApi, receiver: Receiver, window: number): Promise<boolean> {
  await api.json('PUT', `/corral/v1/routing/endpoints/${ENDPOINT}`, receiver.endpointSpec);
  await api.json('PUT', `/corral/v1/routing/routes/${ROUTE}`, { source: 'telemetry', condition: '$body.temperature > -1000', endpointNames: [ENDPOINT] });
  const rule = await putSetting(api, `/corral/v1/rules/${RULE}`, { type: 'threshold', condition: '$body.temperature > 90', severity: 'warning' });
  await routeRunning(api);
  if (rule.status === 404) {
    progress(`PUT /corral/v1/rules/${RULE} answered 404 (${rule.text.slice(0, 200)}): rules are not wired into this hub; the route runs alone`);
    return false;
  }
  progress(`rule '${RULE}': threshold $body.temperature > 90 (device 0 sends ${HOT} in 1 of its ${window} slots, so it raises and clears about once per cycle)`);
  return true;
}

export async function run(args: string[]): Promise<void> {
  const opts = parseOptions(args);
  progress(`machine: ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB, load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  progress(`settings: ${opts.devices} devices, ≤ ${opts.window} QoS 1 in flight each, ${opts.warmupSeconds} s warm-up + ${opts.seconds} s measured, `
    + `EventLog ${opts.eventLog}, endpoint ${opts.endpoint}, drain bound ${opts.drainSeconds} s, /metrics every ${opts.sampleMs} ms`);
  let nats: string | undefined;
  if (opts.eventLog === 'jetstream' && !(await requireNats())) throw new Error(`--eventlog jetstream needs NATS at ${natsUrl()}`);
  if (opts.endpoint === 'nats') {
    nats = await requireNats();
    if (!nats) throw new Error(`--endpoint nats needs NATS at ${natsUrl()} (${skipReason('NATS') ?? 'not answering'}); or use --endpoint webhook`);
  }
  const fleet = makeFleet(opts.devices);
  const n = `${countLabel(opts.devices)}${opts.eventLog === 'jetstream' ? '-jetstream' : ''}`;
  const settings = `${opts.devices} devices, ≤ ${opts.window} in flight, ${opts.seconds} s`;

  const ingest = await withHub(INGEST_HUB, 'ingest', opts, fleet, (hub, api) => runPhase('ingest', opts, hub, api, fleet, undefined));
  console.log(`pipeline-ingest-${n}  corral ${Math.round(ingest.load.perSecond)} msgs/s ${latency(ingest.load.latenciesMs)}`
    + `  (${settings}; JSON telemetry, no route, no rule; PUBACK after the EventLog commit)`);

  let setup: PipelineSetup | undefined;
  let alertCount = 0;
  const piped = await withHub(PIPELINE_HUB, 'pipeline', opts, fleet, async (hub, api) => {
    const workDir = tempDataDir('bench-pipeline-receiver');
    try {
      const result = await runPhase('pipeline', opts, hub, api, fleet, async () => {
        const arrivals = new Arrivals();
        const receiver = opts.endpoint === 'nats' ? await natsReceiver(nats!, arrivals) : await webhookReceiver(WEBHOOK_RECEIVER, workDir, arrivals);
        progress(`pipeline: receiver: ${receiver.describe}`);
        const ruleWired = await configurePipeline(api, receiver, opts.window);
        setup = { receiver, arrivals, ruleWired };
        const natsPid = opts.endpoint === 'nats' ? pidOf('nats-server') : undefined;
        const extraPids: Record<string, number> = natsPid === undefined ? {} : { 'nats-server': natsPid };
        return { arrivals, extraPids };
      });
      // The rules consumer may still be behind: wait until its lag is 0 before counting what it raised.
      if (setup?.ruleWired) alertCount = await rulesCaughtUp(api).then(() => countAlerts(api));
      return result;
    } finally {
      await setup?.receiver.close();
      rmSync(workDir, { recursive: true, force: true });
    }
  });
  if (!setup) throw new Error('the pipeline phase set nothing up');
  const { arrivals, ruleWired } = setup;
  const seconds = (piped.timeline.stopAt - piped.timeline.countFrom) / 1000;
  const e2ePerSecond = arrivals.inWindow / seconds;
  const routeLags = lagsInWindow(piped.lags, `route:${ROUTE}`, piped.timeline);
  const ruleLags = lagsInWindow(piped.lags, 'rules', piped.timeline);
  const drain = piped.drained
    ? `drained ${((piped.drainMs ?? 0) / 1000).toFixed(2)} s after the last PUBACK`
    : `NOT drained: ${piped.load.ackedTotal - arrivals.received} of ${piped.load.ackedTotal} acknowledged records missing ${opts.drainSeconds} s after the load`;
  console.log(`pipeline-route${ruleWired ? '-rule' : ''}-${n}  corral ${Math.round(e2ePerSecond)} msgs/s end to end (${Math.round(piped.load.perSecond)} acked/s ${latency(piped.load.latenciesMs)})`
    + `  ingest-alone ${Math.round(ingest.load.perSecond)} msgs/s  ratio ${(e2ePerSecond / ingest.load.perSecond).toFixed(2)}×`
    + `  e2e ${latency(arrivals.latenciesMs)}  lag p99 ${records(routeLags, 99)} records (max ${records(routeLags, 100)})`
    + `${ruleWired ? `  rules lag p99 ${records(ruleLags, 99)} (max ${records(ruleLags, 100)})` : ''}  ${drain}`
    + `  (${settings}; ${opts.endpoint} receiver in the bench process; ${ruleWired ? `rule '${RULE}' threshold raised ${alertCount} alert${alertCount === 1 ? '' : 's'}` : 'no rule: PUT /corral/v1/rules answered 404'}`
    + `; ${arrivals.received} of ${piped.load.ackedTotal} records received, ${arrivals.duplicates} again)`);
}
