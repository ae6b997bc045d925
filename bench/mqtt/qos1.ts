import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { connectDevices, publishSlots, qos1ClosedLoop, type Qos1LoopResult } from './closed-loop.js';
import { closeAll, type Endpoint } from './wire.js';

/**
 * Figure 1's load: D devices, each on its own connection, publish B-byte QoS 1 messages in the closed loop of
 * `closed-loop.ts` with up to W in flight; each device sends the same random body in every slot. A warm-up runs
 * first and is not counted; then every PUBACK inside the window counts, with its latency from the PUBLISH write.
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

export type Qos1Result = Qos1LoopResult;

export async function qos1Load(o: Qos1Options): Promise<Qos1Result> {
  const bodies = Array.from({ length: o.devices }, () => randomBytes(o.bytes));
  const packets = publishSlots(o.devices, o.window, o.topicOf, (i) => bodies[i]);
  const clients = await connectDevices(o.endpoint, o.devices, o.connectOf);
  o.progress(`${o.devices} devices connected to ${o.endpoint.host}:${o.endpoint.port}`);
  const countFrom = performance.now() + o.warmupSeconds * 1000;
  const timeline = { countFrom, stopAt: countFrom + o.seconds * 1000 };
  const result = await qos1ClosedLoop(clients, { endpoint: o.endpoint, window: o.window, timeline, packets });
  await closeAll(clients);
  return result;
}
