import { TooLarge } from '../errors/index.js';
import type { DevicePrincipal } from '../devices/index.js';
import type { Clock } from '../../ports/clock/index.js';
import type { EventLog } from '../../ports/eventlog/index.js';

/** A device-to-cloud message as an edge parsed it: system properties by IoT Hub's names, application properties. */
export interface D2cMessage {
  readonly body: Uint8Array;
  /** message-id, correlation-id, user-id, to, content-type, content-encoding, absolute-expiry-time, … */
  readonly systemProperties: Readonly<Record<string, string>>;
  readonly appProperties: Readonly<Record<string, string>>;
}

export interface TelemetryLimits {
  /** IoT Hub's 256 KB device-to-cloud limit, body and properties together; may be raised. */
  readonly maxMessageBytes: number;
}

export const IOT_HUB_TELEMETRY_LIMITS: TelemetryLimits = { maxMessageBytes: 256 * 1024 };

function sizeOf(m: D2cMessage): number {
  let n = m.body.byteLength;
  for (const [k, v] of Object.entries(m.systemProperties)) n += k.length + v.length;
  for (const [k, v] of Object.entries(m.appProperties)) n += k.length + v.length;
  return n;
}

/**
 * Takes in device-to-cloud messages: checks the size, annotates them as IoT Hub does (enqueued time, device and
 * module id, auth method, generation id) and appends them to the EventLog. A resolved accept means the message is
 * durable: only then may an edge acknowledge it.
 */
export class Telemetry {
  /** Messages accepted (durable) on this node since it started. */
  acceptedCount = 0;

  constructor(private readonly deps: { eventLog: EventLog; clock: Clock; limits: TelemetryLimits }) {}

  /** Throws TooLarge (413001) over the limit; rejects if the log could not commit (then nothing may be acknowledged). */
  async accept(principal: DevicePrincipal, messages: readonly D2cMessage[]): Promise<void> {
    const now = this.deps.clock.now();
    const records = messages.map((m) => {
      if (sizeOf(m) > this.deps.limits.maxMessageBytes) throw new TooLarge('the device-to-cloud message', this.deps.limits.maxMessageBytes);
      const properties: Record<string, string> = {};
      for (const [k, v] of Object.entries(m.appProperties)) properties[k] = v;
      for (const [k, v] of Object.entries(m.systemProperties)) properties[`$.${k}`] = v;
      properties['iothub-connection-device-id'] = principal.deviceId;
      if (principal.moduleId) properties['iothub-connection-module-id'] = principal.moduleId;
      properties['iothub-connection-auth-method'] = principal.authMethod;
      properties['iothub-connection-auth-generation-id'] = principal.generationId;
      properties['iothub-enqueuedtime'] = new Date(now).toISOString();
      return { kind: 'telemetry', deviceId: principal.deviceId, moduleId: principal.moduleId, enqueuedTimeMs: now, properties, body: m.body };
    });
    await this.deps.eventLog.append(records);
    this.acceptedCount += records.length;
  }
}

/**
 * Retention: every `intervalMs`, removes the EventLog's records older than `maxAgeMs` and, with `maxRecords`, the
 * oldest beyond that count. Returns the stop function (which waits for a trim in progress).
 */
export function startEventLogRetention(
  eventLog: EventLog, clock: Clock,
  opts: { maxAgeMs: number; maxRecords?: number; intervalMs: number; onError: (err: unknown) => void },
): () => Promise<void> {
  let running: Promise<void> | undefined;
  const trim = (): void => {
    if (running) return;
    running = eventLog.trim({ olderThanMs: opts.maxAgeMs, maxRecords: opts.maxRecords, nowMs: clock.now() })
      .then(() => undefined, opts.onError).finally(() => { running = undefined; });
  };
  const timer = setInterval(trim, opts.intervalMs);
  timer.unref();
  trim();
  return async () => {
    clearInterval(timer);
    await running;
  };
}
