import { performance } from 'node:perf_hooks';
import { closeAll, openClient, openMany, publishPacket, PUBACK, type Endpoint, type RawClient } from './wire.js';

/**
 * The QoS 1 closed loop that mqtt-qos1 and the pipeline benchmark drive: each device connection keeps up to W
 * PUBLISHes unacknowledged, and slot k (packet id k + 1) is sent again as soon as its PUBACK arrives, so the server
 * sets the pace. Every slot's PUBLISH is built before the load (`publishSlots`) and resent as it is. PUBACKs inside
 * the window count, with their latency from the PUBLISH write; from the window's end no slot is sent again, and the
 * loop ends with the last PUBACK.
 */

export interface LoadWindow {
  /** performance.now() at which counting starts (after the warm-up) and the load stops. */
  readonly countFrom: number;
  readonly stopAt: number;
}

export interface Qos1LoopOptions {
  /** Where the clients are connected; named when it closes one during the load. */
  readonly endpoint: Endpoint;
  readonly window: number;
  readonly timeline: LoadWindow;
  /** One PUBLISH a slot, as `publishSlots` builds them for these clients and this window. */
  readonly packets: readonly Buffer[];
  /** Hears every PUBACK, warm-up and the final drain included, with its performance.now(). */
  readonly onAck?: (now: number) => void;
}

export interface Qos1LoopResult {
  /** PUBACKs inside the window, and per second of it. */
  readonly ackedInWindow: number;
  readonly perSecond: number;
  /** PUBLISH write to PUBACK, inside the window, ascending, ms. */
  readonly latenciesMs: Float64Array;
}

const CONNECT_CONCURRENCY = 100;
/** Messages still unacknowledged this long after the window closes fail the run. */
const DRAIN_MS = 30_000;

/** Opens the devices' connections, at most CONNECT_CONCURRENCY at once; device i's CONNECT packet is `connectOf(i)`. */
export async function connectDevices(endpoint: Endpoint, devices: number, connectOf: (i: number) => Buffer): Promise<RawClient[]> {
  return openMany(devices, CONNECT_CONCURRENCY, (i) => openClient(endpoint, connectOf(i)));
}

/** The loop's PUBLISHes: device i's slot k at index i × W + k, QoS 1, packet id k + 1, body `payloadOf(i, k)`. */
export function publishSlots(devices: number, window: number, topicOf: (i: number) => string, payloadOf: (i: number, slot: number) => Buffer): Buffer[] {
  const packets: Buffer[] = [];
  for (let i = 0; i < devices; i++) {
    const topic = topicOf(i);
    for (let k = 0; k < window; k++) packets.push(publishPacket(topic, payloadOf(i, k), 1, k + 1));
  }
  return packets;
}

/**
 * Runs the loop over `clients` until the window has closed and every slot is answered. Throws, with every client
 * closed, when a connection closes during the load, a PUBACK names an unknown packet id, or a message is still
 * unacknowledged DRAIN_MS after the window; otherwise the clients stay open.
 */
export async function qos1ClosedLoop(clients: readonly RawClient[], o: Qos1LoopOptions): Promise<Qos1LoopResult> {
  const { window: w, packets, onAck } = o;
  const slots = clients.length * w;
  if (packets.length !== slots) throw new Error(`${packets.length} packets for ${clients.length} devices × ${w} slots`);
  const { countFrom, stopAt } = o.timeline;
  const sentAt = new Float64Array(slots);
  const latencies: number[] = [];
  let inWindow = 0;
  let outstanding = slots;
  let failure: Error | undefined;
  let finish: () => void = () => {};
  const finished = new Promise<void>((resolve) => { finish = resolve; });
  const fail = (err: Error) => { failure ??= err; finish(); };

  clients.forEach((c, i) => {
    c.socket.on('close', () => {
      if (performance.now() < stopAt || outstanding > 0) fail(new Error(`${o.endpoint.host}:${o.endpoint.port} closed device ${i}'s connection during the load`));
    });
    let corked = false;
    const uncork = () => { corked = false; c.socket.uncork(); };
    c.handler.current = (type, _flags, body) => {
      if (type !== PUBACK) return;
      const id = body.readUInt16BE(0);
      if (id < 1 || id > w) { fail(new Error(`PUBACK for unknown packet id ${id}`)); return; }
      const slot = i * w + id - 1;
      const now = performance.now();
      onAck?.(now);
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
  for (let slot = 0; slot < slots; slot++) {
    sentAt[slot] = t0;
    clients[Math.floor(slot / w)].socket.write(packets[slot]);
  }
  const timer = setTimeout(() => fail(new Error(`${outstanding} messages still unacknowledged ${DRAIN_MS / 1000} s after the window`)),
    stopAt - performance.now() + DRAIN_MS);
  await finished;
  clearTimeout(timer);
  if (failure) {
    await closeAll(clients);
    throw failure;
  }
  return { ackedInWindow: inWindow, perSecond: inWindow / ((stopAt - countFrom) / 1000), latenciesMs: Float64Array.from(latencies).sort() };
}
