/**
 * Device state: the last-known value of every top-level field of each device's JSON telemetry, with the time it
 * was seen, and when the device was last heard from. A consumer of the log (checkpoint `state`) merges each batch in
 * one Store call, so values are seconds fresh at most and ingestion never waits for them.
 */

import type { DeviceStateUpdate, PipelineStore } from '../../ports/store/pipeline.js';
import { identityKeyText, type IdentityKey, type JsonValue } from '../../ports/store/index.js';
import type { PipelineConsumer } from './cursor.js';
import type { PipelineMessage } from './message.js';

export const STATE_CONSUMER = 'state';

export class DeviceStateConsumer implements PipelineConsumer {
  readonly name = STATE_CONSUMER;
  /** Last-known values a quarter second old at most, merged in one write per device per quarter second. */
  readonly readIntervalMs = 250;

  constructor(private readonly deps: {
    store: PipelineStore;
    onSeen?: (keys: readonly IdentityKey[], nowMs: number) => Promise<void>;
    /** Devices whose deletion this batch held (their state is gone; alerts about their health must go too). */
    onDeleted?: (deviceIds: readonly string[]) => Promise<void>;
  }) {}

  async handle(_partition: string, messages: readonly PipelineMessage[]): Promise<void> {
    const updates = new Map<string, { deviceId: string; moduleId: string; values: Record<string, { value: JsonValue; timeMs: number }>; lastSeenMs: number }>();
    const deleted: string[] = [];
    for (const m of messages) {
      // A deleted device's state goes with it (a device created again under the id starts afresh).
      if (m.source === 'lifecycle' && m.event.moduleId === '' && m.event.properties.opType === 'deleteDeviceIdentity') {
        deleted.push(m.event.deviceId);
        updates.forEach((u, k) => { if (u.deviceId === m.event.deviceId) updates.delete(k); });
        continue;
      }
      if (m.source !== 'telemetry') continue;
      const e = m.event;
      const k = identityKeyText(e);
      let u = updates.get(k);
      if (!u) { u = { deviceId: e.deviceId, moduleId: e.moduleId, values: {}, lastSeenMs: 0 }; updates.set(k, u); }
      u.lastSeenMs = Math.max(u.lastSeenMs, e.enqueuedTimeMs);
      const body = m.json;
      if (body === null || typeof body !== 'object' || Array.isArray(body)) continue;
      for (const [field, value] of Object.entries(body)) {
        const prev = u.values[field];
        if (!prev || prev.timeMs <= e.enqueuedTimeMs) u.values[field] = { value, timeMs: e.enqueuedTimeMs };
      }
    }
    for (const id of deleted) await this.deps.store.deleteDeviceState(id);
    if (deleted.length > 0) await this.deps.onDeleted?.(deleted);
    if (updates.size === 0) return;
    const list: DeviceStateUpdate[] = [...updates.values()];
    await this.deps.store.mergeDeviceState(list);
    if (this.deps.onSeen) {
      const newest = Math.max(...list.map((u) => u.lastSeenMs));
      await this.deps.onSeen(list.map((u) => ({ deviceId: u.deviceId, moduleId: u.moduleId })), newest);
    }
  }
}
