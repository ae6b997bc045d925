/**
 * System events: what happens to devices besides their telemetry (twin changes, identity life cycle, connection
 * state), to jobs and to alerts, appended to the EventLog as IoT Hub's routing sources describe them, so consumers
 * and routes read them in order with telemetry. An event is appended after the change it reports is stored: the
 * change stands even if the append fails (the failure is reported to `onError`), never the other way round.
 *
 * Each method resolves once its events are committed, and never rejects. Most callers do not wait (`void`): appends
 * keep the order they were made in, so a twin PATCH answers without waiting for a commit of the log; closing the
 * log commits what is pending.
 */

import { isoTime, type Clock } from '../../ports/clock/index.js';
import type { EventLog, EventRecord } from '../../ports/eventlog/index.js';
import type { IdentityKey, JsonObject } from '../../ports/store/index.js';

/** The EventLog record kinds, which are also the routing sources. */
export const EVENT_SOURCES = ['telemetry', 'twinChange', 'lifecycle', 'connectionState', 'jobs', 'alerts'] as const;
export type EventSource = (typeof EVENT_SOURCES)[number];

/** IoT Hub's routing source names for the sources it has, mapped to Corral's. */
export const IOT_HUB_SOURCES: Readonly<Record<string, EventSource>> = {
  DeviceMessages: 'telemetry',
  TwinChangeEvents: 'twinChange',
  DeviceLifecycleEvents: 'lifecycle',
  DeviceConnectionStateEvents: 'connectionState',
  DeviceJobLifecycleEvents: 'jobs',
};

/** `iothub-message-source` as IoT Hub writes it on each source's messages. */
const MESSAGE_SOURCE: Readonly<Record<EventSource, string>> = {
  telemetry: 'Telemetry',
  twinChange: 'twinChangeEvents',
  lifecycle: 'deviceLifecycleEvents',
  connectionState: 'deviceConnectionStateEvents',
  jobs: 'jobLifecycleEvents',
  alerts: 'corralAlertEvents',
};

export interface SystemEventsDeps {
  readonly eventLog: EventLog;
  readonly clock: Clock;
  readonly hubName: string;
  readonly onError: (err: unknown, source: EventSource) => void;
}

export type TwinOp = 'updateTwin' | 'replaceTwin';

/** One twin's change: the sections that changed (patches as applied) and the versions after it. */
export interface TwinChangeNotice {
  readonly key: IdentityKey;
  readonly op: TwinOp;
  readonly version: number;
  readonly tags?: JsonObject;
  readonly desired?: { readonly patch: JsonObject; readonly version: number };
  readonly reported?: { readonly patch: JsonObject; readonly version: number };
}

export class SystemEvents {
  constructor(private readonly deps: SystemEventsDeps) {}

  async twinChanged(notices: readonly TwinChangeNotice[]): Promise<void> {
    if (notices.length === 0) return;
    const now = this.deps.clock.now();
    await this.append('twinChange', notices.map((n) => {
      const properties: JsonObject = {};
      if (n.desired) properties.desired = { ...n.desired.patch, $version: n.desired.version };
      if (n.reported) properties.reported = { ...n.reported.patch, $version: n.reported.version };
      const body: JsonObject = { version: n.version, ...(n.tags ? { tags: n.tags } : {}), ...(Object.keys(properties).length ? { properties } : {}) };
      return this.record('twinChange', n.key, now, n.op, 'twinChangeNotification', body);
    }));
  }

  /** An identity was created or deleted; `twin` is its twin as IoT Hub's lifecycle notification carries it. */
  async lifecycle(op: 'create' | 'delete', entries: readonly { readonly key: IdentityKey; readonly twin: JsonObject }[]): Promise<void> {
    if (entries.length === 0) return;
    const now = this.deps.clock.now();
    await this.append('lifecycle', entries.map((e) => {
      const what = e.key.moduleId === '' ? 'Device' : 'Module';
      return this.record('lifecycle', e.key, now, `${op}${what}Identity`, 'deviceLifecycleNotification', e.twin);
    }));
  }

  /** The EventLog record of a connection-state change (Presence appends it itself, after its conditional write). */
  connectionStateRecord(key: IdentityKey, connected: boolean, generationId: string, nowMs: number): EventRecord {
    const r = this.record('connectionState', key, nowMs, connected ? 'deviceConnected' : 'deviceDisconnected',
      connected ? 'deviceConnectedStateNotification' : 'deviceDisconnectedStateNotification', { sequenceNumber: String(nowMs) });
    return { ...r, properties: { ...r.properties, 'iothub-connection-auth-generation-id': generationId } };
  }

  /** A job changed status (`jobCreated`, `jobRunning`, `jobCompleted`, `jobFailed`, `jobCancelled`). */
  async job(op: string, job: JsonObject): Promise<void> {
    await this.append('jobs', [this.record('jobs', { deviceId: '', moduleId: '' }, this.deps.clock.now(), op, 'jobLifecycleNotification', job)]);
  }

  /** An alert was raised, acknowledged or cleared. */
  async alert(op: 'alertRaised' | 'alertAcknowledged' | 'alertCleared', key: IdentityKey, alert: JsonObject): Promise<void> {
    await this.append('alerts', [this.record('alerts', key, this.deps.clock.now(), op, 'alertNotification', alert)]);
  }

  private record(source: EventSource, key: IdentityKey, nowMs: number, opType: string, schema: string, body: JsonObject): EventRecord {
    const properties: Record<string, string> = {
      'iothub-message-source': MESSAGE_SOURCE[source],
      'iothub-message-schema': schema,
      hubName: this.deps.hubName,
      deviceId: key.deviceId,
      opType,
      operationTimestamp: isoTime(nowMs),
      'iothub-enqueuedtime': isoTime(nowMs),
      '$.content-type': 'application/json',
      '$.content-encoding': 'utf-8',
    };
    if (key.moduleId !== '') properties.moduleId = key.moduleId;
    return { kind: source, deviceId: key.deviceId, moduleId: key.moduleId, enqueuedTimeMs: nowMs, properties, body: Buffer.from(JSON.stringify(body)) };
  }

  private async append(source: EventSource, records: EventRecord[]): Promise<void> {
    try {
      await this.deps.eventLog.append(records);
    } catch (err) {
      this.deps.onError(err, source);
    }
  }
}
