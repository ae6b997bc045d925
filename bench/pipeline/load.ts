import { publishSlots, qos1ClosedLoop, type LoadWindow, type Qos1LoopResult } from '../mqtt/closed-loop.js';
import type { Endpoint, RawClient } from '../mqtt/wire.js';

/**
 * The devices' side of the pipeline benchmark: D connections, each publishing small JSON telemetry
 * (`{"temperature":<t>}`) in the QoS 1 closed loop of `mqtt/closed-loop.ts` with at most W unacknowledged, so the
 * hub sets the pace. The caller gives the window on this process's performance clock, so receivers can count
 * against the same window.
 */

export type TelemetryWindow = LoadWindow;

export interface TelemetryLoadOptions {
  readonly endpoint: Endpoint;
  readonly window: number;
  readonly timeline: TelemetryWindow;
  readonly topicOf: (i: number) => string;
  /** The temperature device i sends in slot k (every time it sends that slot). */
  readonly temperatureOf: (i: number, slot: number) => number;
}

export interface TelemetryLoadResult extends Qos1LoopResult {
  /** Every PUBACK of the run, warm-up and the final drain included: what the hub has committed. */
  readonly ackedTotal: number;
  /** performance.now() of the last PUBACK. */
  readonly lastAckAt: number;
}

/** The running count of PUBACKs, for progress while the load runs. */
export interface AckCounter {
  acked: number;
}

/** Runs the load over connected `clients` (see `connectDevices`); they stay open unless the load fails. */
export async function telemetryLoad(clients: readonly RawClient[], o: TelemetryLoadOptions, counter: AckCounter = { acked: 0 }): Promise<TelemetryLoadResult> {
  const packets = publishSlots(clients.length, o.window, o.topicOf,
    (i, k) => Buffer.from(JSON.stringify({ temperature: o.temperatureOf(i, k) })));
  let lastAckAt = 0;
  const onAck = (now: number) => { counter.acked++; lastAckAt = now; };
  const result = await qos1ClosedLoop(clients, { endpoint: o.endpoint, window: o.window, timeline: o.timeline, packets, onAck });
  return { ...result, ackedTotal: counter.acked, lastAckAt };
}
