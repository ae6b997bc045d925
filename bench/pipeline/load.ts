import { performance } from 'node:perf_hooks';
import { closeAll, openClient, openMany, publishPacket, PUBACK, type Endpoint, type RawClient } from '../mqtt/wire.js';

/**
 * The devices' side of the pipeline benchmark: D connections, each publishing small JSON telemetry
 * (`{"temperature":<t>}`) at QoS 1 in a closed loop with at most W unacknowledged: slot k (packet id k + 1) is sent
 * again as soon as its PUBACK arrives, so the hub sets the pace. Each slot's PUBLISH is built before the load. The
 * caller gives the window on this process's performance clock, so receivers can count against the same window.
 */

export interface TelemetryWindow {
  /** performance.now() at which counting starts (after the warm-up) and the load stops. */
  readonly countFrom: number;
  readonly stopAt: number;
}

export interface TelemetryLoadOptions {
  readonly endpoint: Endpoint;
  readonly window: number;
  readonly timeline: TelemetryWindow;
  readonly topicOf: (i: number) => string;
  /** The temperature device i sends in slot k (every time it sends that slot). */
  readonly temperatureOf: (i: number, slot: number) => number;
}

export interface TelemetryLoadResult {
  /** PUBACKs inside the window, and per second of it. */
  readonly ackedInWindow: number;
  readonly perSecond: number;
  /** PUBLISH write to PUBACK, inside the window, ascending, ms. */
  readonly latenciesMs: Float64Array;
  /** Every PUBACK of the run, warm-up and the final drain included: what the hub has committed. */
  readonly ackedTotal: number;
  /** performance.now() of the last PUBACK. */
  readonly lastAckAt: number;
}

const CONNECT_CONCURRENCY = 100;
/** Messages still unacknowledged this long after the window closes fail the run. */
const DRAIN_MS = 30_000;

/** Opens D device connections, CONNECT packets made by `connectOf`. */
export async function connectDevices(endpoint: Endpoint, devices: number, connectOf: (i: number) => Buffer): Promise<RawClient[]> {
  return openMany(devices, CONNECT_CONCURRENCY, (i) => openClient(endpoint, connectOf(i)));
}

/** The running count of PUBACKs, for progress while the load runs. */
export interface AckCounter {
  acked: number;
}

export async function telemetryLoad(clients: readonly RawClient[], o: TelemetryLoadOptions, counter: AckCounter = { acked: 0 }): Promise<TelemetryLoadResult> {
  const w = o.window;
  const devices = clients.length;
  const packets: Buffer[] = [];
  for (let i = 0; i < devices; i++) {
    const topic = o.topicOf(i);
    for (let k = 0; k < w; k++) packets.push(publishPacket(topic, Buffer.from(JSON.stringify({ temperature: o.temperatureOf(i, k) })), 1, k + 1));
  }
  const { countFrom, stopAt } = o.timeline;
  const sentAt = new Float64Array(devices * w);
  const latencies: number[] = [];
  let inWindow = 0;
  let outstanding = devices * w;
  let lastAckAt = 0;
  let failure: Error | undefined;
  let finish: () => void = () => {};
  const finished = new Promise<void>((resolve) => { finish = resolve; });

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
      counter.acked++;
      lastAckAt = now;
      if (now >= countFrom && now <= stopAt) {
        inWindow++;
        latencies.push(now - sentAt[slot]);
      }
      if (now < stopAt) {
        // PUBACKs come in bursts: the answers to one chunk leave in one write.
        if (!corked) { corked = true; c.socket.cork(); process.nextTick(uncork); }
        sentAt[slot] = now;
        c.socket.write(packets[slot]);
      } else if (--outstanding === 0) finish();
    };
  });
  const t0 = performance.now();
  for (let slot = 0; slot < devices * w; slot++) {
    sentAt[slot] = t0;
    clients[Math.floor(slot / w)].socket.write(packets[slot]);
  }
  const timer = setTimeout(() => {
    failure ??= new Error(`${outstanding} messages still unacknowledged ${DRAIN_MS / 1000} s after the window`);
    finish();
  }, stopAt - performance.now() + DRAIN_MS);
  await finished;
  clearTimeout(timer);
  if (failure) {
    await closeAll(clients);
    throw failure;
  }
  const seconds = (stopAt - countFrom) / 1000;
  return { ackedInWindow: inWindow, perSecond: inWindow / seconds, latenciesMs: Float64Array.from(latencies).sort(), ackedTotal: counter.acked, lastAckAt };
}
