import { readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createSecureContext } from 'node:tls';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { disposeHub, startHub, tempDataDir, type RunningHub } from '../test/support/hub-process.js';
import { positiveInt } from './support/hub.js';
import { closedLoop, percentile } from './support/https-load.js';
import { API_VERSION, deviceCredentials, importFleet, makeFleet, serviceAuthorization, type Fleet } from './mqtt/fleet.js';
import { FANOUT_TIMEOUT_MS, patchEach, publishAll, subscribers } from './mqtt/fanout.js';
import { holdIdle, sourceAddresses, startEchoServer, type Held } from './mqtt/idle-tls.js';
import { answeringDevices, brokerRequestReply, connectAnonymous } from './mqtt/methods.js';
import { cpuMeter, mosquittoPid, openFiles, openFilesLimit, rssOf } from './mqtt/proc.js';
import { qos1Load, type Qos1Result } from './mqtt/qos1.js';
import { closeAll, connectPacket, openClient, type Endpoint } from './mqtt/wire.js';

/**
 * `npm run bench -- mqtt [--devices N] [--seconds D] [--window W] [--bytes B] [--connections N] [--callers C]
 *                        [--fanout N] [--figures a,b] [--hub-cpu-prof DIR]`
 *
 * The device gateway against Mosquitto (127.0.0.1:1883) and a bare Node TLS server, the same load generator for
 * both sides of each figure (raw sockets, packets built ahead):
 * 1. mqtt-qos1: D devices × B-byte QoS 1 telemetry, closed loop, ≤ W in flight per device, for D seconds.
 * 2. mqtt-idle-tls: N idle MQTT/TLS device connections; hub memory per connection, beside a TLS echo server's.
 * 3. method-rtt: direct methods through the REST API to raw MQTT devices, C callers; peer: request/reply over
 *    Mosquitto.
 * 4. desired-fanout: one twin PATCH per device for N subscribed devices until every one has its notification;
 *    peer: one publisher, N per-device messages through Mosquitto.
 * Figures go to stdout, one line each; progress goes to stderr.
 */

/** Figures 1, 3 and 4: a hub with a plain MQTT listener. Figure 2: a second hub, alone, on its TLS port. */
const PLAIN_HUB = '127.0.0.60';
const PLAIN_PORT = 18830;
const TLS_HUB = '127.0.0.61';
const TLS_PORT = 8883;
const ECHO_PORT = 8884;
const MOSQUITTO: Endpoint = { host: '127.0.0.1', port: 1883 };
const WARMUP_SECONDS = 2;
/** Device SAS tokens outlive any run. */
const TOKEN_HOURS = 12;
/** A device's keep-alive: longer than any phase, so idle connections need no PINGREQ. */
const KEEPALIVE_SECONDS = 1200;
/** Files the hub (and this process) keep open beside the device connections. */
const FD_RESERVE = 1000;
const MAX_CONNECTIONS = 100_000;

const FIGURES = ['mqtt-qos1', 'mqtt-idle-tls', 'method-rtt', 'desired-fanout'] as const;
type Figure = (typeof FIGURES)[number];

interface Options {
  readonly devices: number;
  readonly seconds: number;
  readonly window: number;
  readonly bytes: number;
  readonly connections: number;
  readonly connectionsCapped: boolean;
  readonly callers: number;
  readonly fanout: number;
  readonly figures: ReadonlySet<Figure>;
  readonly hubCpuProf?: string;
}

/**
 * The default connection count: 100,000, unless the open-files limit (which the hub inherits from this process,
 * and which holds each end's sockets) is lower.
 */
function defaultConnections(): { connections: number; capped: boolean } {
  const limit = openFilesLimit('self');
  const fit = Math.floor((limit - FD_RESERVE) / 1000) * 1000;
  return fit >= MAX_CONNECTIONS ? { connections: MAX_CONNECTIONS, capped: false } : { connections: Math.max(1000, fit), capped: true };
}

function parseOptions(args: string[]): Options {
  const { values } = parseArgs({
    args, strict: true, allowPositionals: false,
    options: Object.fromEntries(['devices', 'seconds', 'window', 'bytes', 'connections', 'callers', 'fanout', 'figures', 'hub-cpu-prof']
      .map((f) => [f, { type: 'string' as const }])),
  });
  const v = values as Record<string, string | undefined>;
  const figures = new Set<Figure>();
  for (const f of (v.figures ?? FIGURES.join(',')).split(',').filter(Boolean)) {
    if (!(FIGURES as readonly string[]).includes(f)) throw new Error(`--figures: unknown figure '${f}'; known: ${FIGURES.join(', ')}`);
    figures.add(f as Figure);
  }
  const dflt = defaultConnections();
  const window = positiveInt('window', v.window, 4);
  if (window > 65535) throw new Error('--window must be at most 65535');
  return {
    devices: positiveInt('devices', v.devices, 1000),
    seconds: positiveInt('seconds', v.seconds, 10),
    window,
    bytes: positiveInt('bytes', v.bytes, 256),
    connections: positiveInt('connections', v.connections, dflt.connections),
    connectionsCapped: v.connections === undefined && dflt.capped,
    callers: positiveInt('callers', v.callers, 32),
    fanout: positiveInt('fanout', v.fanout, 10_000),
    figures,
    hubCpuProf: v['hub-cpu-prof'],
  };
}

function progress(message: string): void {
  process.stderr.write(`[bench mqtt] ${message}\n`);
}

/** 10000 → '10k', for figure names. */
function countLabel(n: number): string {
  if (n % 1000 === 0) return `${n / 1000}k`;
  return String(n);
}

const ms = (x: number) => `${x.toFixed(2)} ms`;
const ratio = (a: number, b: number) => `ratio ${(a / b).toFixed(2)}×`;
const latency = (sorted: Float64Array) => `p50 ${ms(percentile(sorted, 50))} p99 ${ms(percentile(sorted, 99))}`;
const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

function hubEnv(opts: Options, label: string): NodeJS.ProcessEnv | undefined {
  if (!opts.hubCpuProf) return undefined;
  const hook = pathToFileURL(join(import.meta.dirname, 'mqtt', 'cpu-profile.ts')).href;
  const file = join(resolve(opts.hubCpuProf), `corral-${label}-${Date.now()}.cpuprofile`);
  progress(`hub CPU profile → ${file}`);
  return { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import tsx --import ${hook}`.trim(), CORRAL_BENCH_CPU_PROFILE: file };
}

/** CPU meters for a phase: the server under load and this process (the load generator). */
function meterHub(hub: RunningHub) {
  return cpuMeter({ hub: hub.process.pid!, generator: process.pid });
}

function meterMosquitto() {
  const pid = mosquittoPid();
  return cpuMeter(pid === undefined ? { generator: process.pid } : { mosquitto: pid, generator: process.pid });
}

function deviceConnect(hub: RunningHub, fleet: Fleet, i: number): Buffer {
  const c = deviceCredentials(hub.info.hostName, fleet, i, Math.ceil(Date.now() / 1000) + TOKEN_HOURS * 3600);
  return connectPacket({ ...c, keepalive: KEEPALIVE_SECONDS });
}

const anonymousConnect = (fleet: Fleet) => (i: number) => connectAnonymous(fleet.ids[i]);
const telemetryTopic = (fleet: Fleet) => (i: number) => `devices/${fleet.ids[i]}/messages/events/`;

// ---------------------------------------------------------------------------------------------------------------
// 1. mqtt-qos1

async function figureQos1(opts: Options, hub: RunningHub, fleet: Fleet): Promise<void> {
  const load = (endpoint: Endpoint, connectOf: (i: number) => Buffer): Promise<Qos1Result> => qos1Load({
    endpoint, devices: opts.devices, window: opts.window, bytes: opts.bytes, warmupSeconds: WARMUP_SECONDS,
    seconds: opts.seconds, connectOf, topicOf: telemetryTopic(fleet), progress,
  });
  progress(`mqtt-qos1: corral, ${opts.devices} devices × ${opts.bytes} B QoS 1, ≤ ${opts.window} in flight each, ${WARMUP_SECONDS} + ${opts.seconds} s`);
  let cpu = meterHub(hub);
  const corral = await load({ host: PLAIN_HUB, port: PLAIN_PORT }, (i) => deviceConnect(hub, fleet, i));
  progress(`mqtt-qos1: corral done (CPU over the phase: ${cpu.stop()}); mosquitto, the same load`);
  cpu = meterMosquitto();
  const mosquitto = await load(MOSQUITTO, anonymousConnect(fleet));
  progress(`mqtt-qos1: mosquitto done (CPU: ${cpu.stop()})`);
  const line = (r: Qos1Result) => `${Math.round(r.perSecond)} msg/s ${latency(r.latenciesMs)}`;
  console.log(`mqtt-qos1  corral ${line(corral)}  mosquitto ${line(mosquitto)}  ${ratio(corral.perSecond, mosquitto.perSecond)}`
    + `  (${opts.devices} devices × ${opts.bytes} B, ≤ ${opts.window} in flight; corral commits each message to its EventLog before PUBACK, mosquitto persists nothing per message)`);
}

// ---------------------------------------------------------------------------------------------------------------
// 3. method-rtt

async function figureMethods(opts: Options, hub: RunningHub, fleet: Fleet): Promise<void> {
  const devices = fleet.ids.slice(0, opts.callers);
  progress(`method-rtt: corral, ${opts.callers} callers → POST /twins/{id}/methods → ${devices.length} raw MQTT devices, ${WARMUP_SECONDS} + ${opts.seconds} s`);
  const corralDevices = await answeringDevices({
    endpoint: { host: PLAIN_HUB, port: PLAIN_PORT }, count: devices.length, connectOf: (i) => deviceConnect(hub, fleet, i),
    subscribeTopic: () => '$iothub/methods/POST/#', answerTopic: (rid) => `$iothub/methods/res/200/?$rid=${rid}`,
  });
  const authorization = serviceAuthorization(hub);
  const body = JSON.stringify({ methodName: 'ping', payload: null, responseTimeoutInSeconds: 5, connectTimeoutInSeconds: 0 });
  let next = 0;
  let cpu = meterHub(hub);
  const corral = await closedLoop({
    host: hub.info.hostName, clients: opts.callers, seconds: opts.seconds, warmupSeconds: WARMUP_SECONDS,
    next: () => ({
      method: 'POST', path: `/twins/${encodeURIComponent(devices[next++ % devices.length])}/methods?api-version=${API_VERSION}`,
      headers: { authorization, 'content-type': 'application/json; charset=utf-8' }, body,
    }),
  }).finally(() => closeAll(corralDevices));
  if (corral.errors > 0) throw new Error(`method-rtt: ${corral.errors} calls failed (first: HTTP ${corral.firstErrorStatus})`);

  progress(`method-rtt: corral done (CPU: ${cpu.stop()}); mosquitto, the same request/reply between MQTT clients`);
  const requestTopic = (id: string, rid: string) => `bench/methods/${id}/POST/ping/?$rid=${rid}`;
  const peerDevices = await answeringDevices({
    endpoint: MOSQUITTO, count: devices.length, connectOf: anonymousConnect(fleet),
    subscribeTopic: (i) => `bench/methods/${devices[i]}/POST/#`, answerTopic: (rid) => `bench/replies/${rid.split('/')[0]}/200/?$rid=${rid}`,
  });
  cpu = meterMosquitto();
  const peer = await brokerRequestReply({
    endpoint: MOSQUITTO, requesters: opts.callers, devices, warmupSeconds: WARMUP_SECONDS, seconds: opts.seconds, requestTopic,
  }).finally(() => closeAll(peerDevices));
  progress(`method-rtt: mosquitto done (CPU: ${cpu.stop()})`);
  console.log(`method-rtt  corral ${latency(corral.latenciesMs)} ${Math.round(corral.opsPerSecond)} calls/s`
    + `  mosquitto ${latency(peer.latenciesMs)} ${Math.round(peer.perSecond)} calls/s  ${ratio(corral.opsPerSecond, peer.perSecond)}`
    + `  (${opts.callers} callers, ${devices.length} devices)`);
}

// ---------------------------------------------------------------------------------------------------------------
// 4. desired-fanout

async function figureFanout(opts: Options, hub: RunningHub, fleet: Fleet): Promise<void> {
  const n = opts.fanout;
  const ids = fleet.ids.slice(0, n);
  const every = (what: string) => (done: number) => { if (done % 5000 === 0) progress(`${what}: ${done} connected`); };
  progress(`desired-fanout: corral, ${n} devices subscribe to desired-property notices`);
  const corralSubs = await subscribers({
    endpoint: { host: PLAIN_HUB, port: PLAIN_PORT }, count: n, connectOf: (i) => deviceConnect(hub, fleet, i),
    topicOf: () => '$iothub/twin/PATCH/properties/desired/#', prefixOf: () => '$iothub/twin/PATCH/properties/desired/', progress: every('corral'),
  });
  let corralMs: number;
  let patchesMs: number;
  try {
    progress(`desired-fanout: corral, PATCH /twins/{id} for each of ${n} devices, ${opts.callers} at a time`);
    const cpu = meterHub(hub);
    const patched = patchEach({
      host: hub.info.hostName, secureContext: createSecureContext({ ca: readFileSync(hub.info.caFile) }), authorization: serviceAuthorization(hub), ids, callers: opts.callers,
      body: () => JSON.stringify({ properties: { desired: { setpoint: 21.5 } } }),
    });
    const allAt = await bounded(corralSubs.allReceived, 'corral desired fan-out');
    const { firstSentAt, lastAnsweredAt } = await patched;
    corralMs = allAt - firstSentAt;
    patchesMs = lastAnsweredAt - firstSentAt;
    progress(`desired-fanout: corral done (CPU: ${cpu.stop()})`);
  } finally {
    await closeAll(corralSubs.clients);
  }

  progress(`desired-fanout: mosquitto, ${n} subscribers, one publisher, one QoS 1 message each, ${opts.callers} in flight`);
  const topicOf = (i: number) => `bench/twin/${ids[i]}/desired`;
  const peerSubs = await subscribers({
    endpoint: MOSQUITTO, count: n, connectOf: anonymousConnect(fleet), topicOf, prefixOf: topicOf, progress: every('mosquitto'),
  });
  let peerMs: number;
  try {
    const cpu = meterMosquitto();
    const sent = publishAll({
      endpoint: MOSQUITTO, connect: connectAnonymous('bench-publisher'), count: n, window: opts.callers, topicOf,
      payloadOf: () => Buffer.from('{"setpoint":21.5,"$version":2}'),
    });
    const allAt = await bounded(peerSubs.allReceived, 'mosquitto fan-out');
    const { firstSentAt, client } = await sent;
    await closeAll([client]);
    peerMs = allAt - firstSentAt;
    progress(`desired-fanout: mosquitto done (CPU: ${cpu.stop()})`);
  } finally {
    await closeAll(peerSubs.clients);
  }
  const s = (x: number) => `${(x / 1000).toFixed(2)} s`;
  console.log(`desired-fanout-${countLabel(n)}  corral ${s(corralMs)} (${Math.round(n / (corralMs / 1000))} notices/s; PATCHes answered in ${s(patchesMs)})`
    + `  mosquitto ${s(peerMs)} (${Math.round(n / (peerMs / 1000))} msg/s)  ${ratio(corralMs, peerMs)}  (of times; ${opts.callers} PATCHes or publishes in flight)`);
}

function bounded<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not done in ${FANOUT_TIMEOUT_MS / 1000} s`)), FANOUT_TIMEOUT_MS); });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------------------------------------------
// 2. mqtt-idle-tls

async function figureIdleTls(opts: Options): Promise<void> {
  const n = opts.connections;
  const limit = openFilesLimit('self');
  if (opts.connectionsCapped) {
    progress(`mqtt-idle-tls: open-files limit is ${limit} (ulimit -n; the hub inherits it, and it cannot be raised here), so ${n} connections instead of ${MAX_CONNECTIONS}`);
  } else if (n + FD_RESERVE > limit) {
    progress(`mqtt-idle-tls: ${n} connections asked for, but the open-files limit is ${limit}: expect the count to stop short`);
  }
  const fleet = makeFleet(n);
  const dataDir = tempDataDir('bench-mqtt-tls');
  let hub: RunningHub | undefined;
  try {
    hub = await startHub({ address: TLS_HUB, dataDir });
    progress(`mqtt-idle-tls: importing ${n} devices into ${TLS_HUB}`);
    const importMs = await importFleet(hub, fleet);
    progress(`mqtt-idle-tls: imported in ${(importMs / 1000).toFixed(1)} s; restarting the hub so its memory holds no import garbage`);
    await hub.stop();
    hub = await startHub({ address: TLS_HUB, dataDir, env: hubEnv(opts, 'idle-tls') });
    await sleep(2000);
    const ca = createSecureContext({ ca: readFileSync(hub.info.caFile) });
    const running = hub;
    progress(`mqtt-idle-tls: corral, ${n} idle MQTT/TLS device connections to ${TLS_HUB}:${TLS_PORT}, hub RSS ${mib(rssOf(hub.process.pid!))}`);
    const corral = await holdIdle({
      endpoint: { host: TLS_HUB, port: TLS_PORT, tls: ca }, count: n, pid: hub.process.pid!, progress,
      connectOf: (i) => deviceConnect(running, fleet, i), sourceOf: sourceAddresses('127.0.1', n),
    });
    reportHeld('corral', corral, hub.process.pid!);
    if (corral.clients.length === 0) throw new Error(`mqtt-idle-tls: no connection to the hub held (${corral.firstError})`);
    await closeAll(corral.clients);
    await hub.stop();
    hub = undefined;

    const echo = await startEchoServer(TLS_HUB, ECHO_PORT, join(dataDir, 'tls'));
    let peer: Held;
    try {
      await sleep(1000);
      progress(`mqtt-idle-tls: tls-echo, ${corral.clients.length} idle TLS connections to ${TLS_HUB}:${ECHO_PORT}`);
      peer = await holdIdle({
        endpoint: { host: TLS_HUB, port: ECHO_PORT, tls: ca }, count: corral.clients.length, pid: echo.process.pid!, progress, echo: true,
        connectOf: (i) => deviceConnect(running, fleet, i), sourceOf: sourceAddresses('127.0.2', n),
      });
      reportHeld('tls-echo', peer, echo.process.pid!);
      await closeAll(peer.clients);
    } finally {
      await echo.stop();
    }
    const per = (h: Held) => (h.rssAfter - h.rssBefore) / h.clients.length;
    const label = countLabel(corral.clients.length);
    console.log(`mqtt-idle-tls-${label}  corral ${corral.clients.length} conns ${kib(per(corral))}/conn (${kib(per(corral) - per(peer))}/conn beyond TLS)`
      + `  tls-echo ${peer.clients.length} conns ${kib(per(peer))}/conn  ${ratio(per(corral), per(peer))}`
      + `  (hub RSS ${mib(corral.rssBefore)} → ${mib(corral.rssAfter)}; ${corral.clients.length} of ${opts.connections} asked${corral.firstError ? `, stopped: ${corral.firstError}` : ''}; open-files limit ${limit})`);
  } finally {
    if (hub) await hub.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

function reportHeld(who: string, h: Held, pid: number): void {
  progress(`mqtt-idle-tls: ${who}: ${h.clients.length} of ${h.asked} open in ${(h.elapsedMs / 1000).toFixed(1)} s`
    + ` (${Math.round(h.clients.length / (h.elapsedMs / 1000))}/s), RSS ${mib(h.rssBefore)} → ${mib(h.rssAfter)}, ${openFiles(pid)} open files`
    + `${h.firstError ? `; stopped: ${h.firstError}` : ''}; this process RSS ${mib(process.memoryUsage.rss())}`);
}

// ---------------------------------------------------------------------------------------------------------------

async function mosquittoUp(): Promise<void> {
  const c = await openClient(MOSQUITTO, connectAnonymous('bench-probe'), { timeoutMs: 5000 }).catch((err: unknown) => {
    throw new Error(`Mosquitto is not answering at ${MOSQUITTO.host}:${MOSQUITTO.port} (${(err as Error).message}); every figure's peer needs it`);
  });
  await closeAll([c]);
}

export async function run(args: string[]): Promise<void> {
  const opts = parseOptions(args);
  progress(`machine: ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ${mib(totalmem())} memory, load ${loadavg().map((l) => l.toFixed(2)).join(' ')}, open-files limit ${openFilesLimit('self')}`);
  await mosquittoUp();
  const plainFigures = [...opts.figures].filter((f) => f !== 'mqtt-idle-tls');
  if (plainFigures.length > 0) {
    const size = Math.max(opts.figures.has('mqtt-qos1') ? opts.devices : 0, opts.figures.has('method-rtt') ? opts.callers : 0, opts.figures.has('desired-fanout') ? opts.fanout : 0);
    const fleet = makeFleet(size);
    const dataDir = tempDataDir('bench-mqtt');
    const hub = await startHub({ address: PLAIN_HUB, dataDir, args: ['--mqtt-port', String(PLAIN_PORT)], env: hubEnv(opts, 'plain') })
      .catch((err: unknown) => { rmSync(dataDir, { recursive: true, force: true }); throw err; });
    try {
      progress(`hub up on ${PLAIN_HUB} (plain MQTT ${PLAIN_PORT}); importing ${size} devices`);
      const importMs = await importFleet(hub, fleet);
      progress(`imported in ${(importMs / 1000).toFixed(1)} s`);
      if (opts.figures.has('mqtt-qos1')) await figureQos1(opts, hub, fleet);
      if (opts.figures.has('method-rtt')) await figureMethods(opts, hub, fleet);
      if (opts.figures.has('desired-fanout')) await figureFanout(opts, hub, fleet);
    } finally {
      await disposeHub(hub);
    }
  }
  if (opts.figures.has('mqtt-idle-tls')) await figureIdleTls(opts);
}
