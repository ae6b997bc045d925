import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { closeAll, openClient, openMany, publishPacket, PUBACK, type Endpoint, type RawClient } from './wire.js';

/**
 * Figure 1's load: D devices, each on its own connection, publish B-byte QoS 1 messages in a closed loop with up to
 * W in flight: slot k (packet id k + 1) is sent again as soon as its PUBACK arrives. Each slot's PUBLISH is built
 * before the load starts. A warm-up runs first and is not counted; then every PUBACK inside the window counts,
 * with its latency from the PUBLISH write.
 */

export interface Qos1Options {
  readonly endpoint: Endpoint;
  readonly devices: number;
  readonly window: number;
  readonly bytes: number;
  readonly warmupSeconds: number;
  readonly seconds: number;
  /** Device i's CONNECT packet and telemetry topic. */
  readonly connectOf: (i: number) => Buffer;
  readonly topicOf: (i: number) => string;
  readonly progress: (message: string) => void;
}

export interface Qos1Result {
  readonly acked: number;
  readonly perSecond: number;
  /** PUBACK latencies of the measured window, ascending, in ms. */
  readonly latenciesMs: Float64Array;
}

const CONNECT_CONCURRENCY = 100;
/** Messages still unacknowledged this long after the window closes fail the run. */
const DRAIN_MS = 30_000;

export async function qos1Load(o: Qos1Options): Promise<Qos1Result> {
  const { devices, window: w } = o;
  const packets: Buffer[] = [];
  for (let i = 0; i < devices; i++) {
    const body = randomBytes(o.bytes);
    const topic = o.topicOf(i);
    for (let k = 0; k < w; k++) packets.push(publishPacket(topic, body, 1, k + 1));
  }
  const clients: RawClient[] = await openMany(devices, CONNECT_CONCURRENCY, (i) => openClient(o.endpoint, o.connectOf(i)));
  o.progress(`${devices} devices connected to ${o.endpoint.host}:${o.endpoint.port}`);

  const sentAt = new Float64Array(devices * w);
  const latencies: number[] = [];
  let acked = 0;
  let outstanding = 0;
  let failure: Error | undefined;
  const started = performance.now();
  const countFrom = started + o.warmupSeconds * 1000;
  const stopAt = countFrom + o.seconds * 1000;

  let finish: () => void = () => {};
  const finished = new Promise<void>((resolve) => { finish = resolve; });

  const send = (c: RawClient, slot: number, now: number) => {
    sentAt[slot] = now;
    c.socket.write(packets[slot]);
  };
  clients.forEach((c, i) => {
    c.socket.on('close', () => {
      if (performance.now() < stopAt || outstanding > 0) {
        failure ??= new Error(`${o.endpoint.host}:${o.endpoint.port} closed device ${i}'s connection during the load`);
        finish();
      }
    });
    let corked = false;
    const uncork = () => { corked = false; c.socket.uncork(); };
    c.handler.current = (type, _flags, body) => {
      if (type !== PUBACK) return;
      const id = body.readUInt16BE(0);
      if (id < 1 || id > w) { failure ??= new Error(`PUBACK for unknown packet id ${id}`); finish(); return; }
      const slot = i * w + id - 1;
      const now = performance.now();
      if (now >= countFrom && now <= stopAt) {
        acked++;
        latencies.push(now - sentAt[slot]);
      }
      if (now < stopAt) {
        // PUBACKs come in bursts: the answers to one chunk leave in one write.
        if (!corked) { corked = true; c.socket.cork(); process.nextTick(uncork); }
        send(c, slot, now);
      } else if (--outstanding === 0) finish();
    };
  });
  outstanding = devices * w;
  const t0 = performance.now();
  for (let i = 0; i < devices; i++) {
    for (let k = 0; k < w; k++) send(clients[i], i * w + k, t0);
  }
  const timer = setTimeout(() => {
    failure ??= new Error(`${outstanding} messages still unacknowledged ${DRAIN_MS / 1000} s after the window`);
    finish();
  }, stopAt - performance.now() + DRAIN_MS);
  await finished;
  clearTimeout(timer);
  await closeAll(clients);
  if (failure) throw failure;
  const sorted = Float64Array.from(latencies).sort();
  return { acked, perSecond: acked / o.seconds, latenciesMs: sorted };
}
