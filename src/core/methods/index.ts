import { ArgumentInvalid, DeviceNotFound, DeviceNotOnline, GatewayTimeout, ModuleNotFound } from '../errors/index.js';
import { decodeJson, deviceSubject, encodeJson } from '../devices/index.js';
import { BusNoResponders, BusTimeout, type Bus } from '../../ports/bus/index.js';
import type { IdentityKey, JsonValue, Store } from '../../ports/store/index.js';

/** A checked direct-method call. */
export interface MethodCall {
  readonly methodName: string;
  readonly payload: JsonValue;
  readonly responseTimeoutInSeconds: number;
  readonly connectTimeoutInSeconds: number;
}

/** What the device answered: any status it chose, and its JSON payload. */
export interface MethodResult {
  readonly status: number;
  readonly payload: JsonValue;
}

/** IoT Hub's method limits: payload 128 KB, response timeout 5–300 s (default 30), connect timeout 0–300 s. */
export const METHOD_MAX_PAYLOAD_BYTES = 128 * 1024;

function seconds(v: unknown, name: string, min: number, max: number, dflt: number): number {
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new ArgumentInvalid(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  }
  return v;
}

/** Parses IoT Hub's CloudToDeviceMethod body; throws ArgumentInvalid naming the field. */
export function parseMethodCall(body: unknown): MethodCall {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ArgumentInvalid('the body must be a JSON object with methodName');
  const b = body as Record<string, unknown>;
  if (typeof b.methodName !== 'string' || b.methodName.length === 0 || b.methodName.length > 1024) {
    throw new ArgumentInvalid('methodName must be a non-empty string');
  }
  const payload = (b.payload === undefined ? null : b.payload) as JsonValue;
  if (Buffer.byteLength(JSON.stringify(payload)) > METHOD_MAX_PAYLOAD_BYTES) {
    throw new ArgumentInvalid(`payload is larger than ${METHOD_MAX_PAYLOAD_BYTES} bytes`);
  }
  return {
    methodName: b.methodName, payload,
    responseTimeoutInSeconds: seconds(b.responseTimeoutInSeconds, 'responseTimeoutInSeconds', 5, 300, 30),
    connectTimeoutInSeconds: seconds(b.connectTimeoutInSeconds, 'connectTimeoutInSeconds', 0, 300, 0),
  };
}

/** The request that travels on the Bus to the node holding the connection. */
export interface MethodRequestMessage {
  readonly methodName: string;
  readonly payload: JsonValue;
  readonly timeoutMs: number;
}

/**
 * Direct methods: the call travels on the Bus to whichever node serves the device's method subject (the one holding
 * its connection). Nobody serving it: 404103 at once, or once `connectTimeoutInSeconds` passes without the device
 * coming online. No answer in `responseTimeoutInSeconds`: 504101.
 */
export class Methods {
  constructor(private readonly deps: { store: Store; bus: Bus }) {}

  async invoke(key: IdentityKey, body: unknown): Promise<MethodResult> {
    const call = parseMethodCall(body);
    const request = encodeJson({ methodName: call.methodName, payload: call.payload, timeoutMs: call.responseTimeoutInSeconds * 1000 } satisfies MethodRequestMessage);
    const subject = deviceSubject(key, 'method');
    const ask = async (): Promise<MethodResult | undefined> => {
      try {
        // The serving node times the device out itself; the margin lets its answer arrive rather than ours.
        return decodeJson<MethodResult>(await this.deps.bus.request(subject, request, { timeoutMs: call.responseTimeoutInSeconds * 1000 + 2000 }));
      } catch (err) {
        if (err instanceof BusTimeout) throw new GatewayTimeout(key.deviceId, call.responseTimeoutInSeconds);
        if (err instanceof BusNoResponders) return undefined;
        throw mapRemote(err, key, call);
      }
    };
    // A device that answers exists: the registry is read only when nobody serves its method subject.
    if (call.connectTimeoutInSeconds === 0) {
      const result = await ask();
      if (result) return result;
      await this.checkExists(key);
      throw new DeviceNotOnline(key.deviceId);
    }
    await this.checkExists(key);
    return this.askWhenOnline(key, call.connectTimeoutInSeconds * 1000, ask);
  }

  /** 404001 for an identity the registry does not hold (else the caller answers 404103). */
  private async checkExists(key: IdentityKey): Promise<void> {
    if (!(await this.deps.store.identities.get(key))) {
      throw key.moduleId ? new ModuleNotFound(key.deviceId, key.moduleId) : new DeviceNotFound(key.deviceId);
    }
  }

  /** Asks now, and again each time the identity announces it listens for methods, until `waitMs` has passed. */
  private async askWhenOnline(key: IdentityKey, waitMs: number, ask: () => Promise<MethodResult | undefined>): Promise<MethodResult> {
    let wake: () => void = () => {};
    let pending = false;
    const unsubscribe = await this.deps.bus.subscribe(deviceSubject(key, 'online'), () => { pending = true; wake(); });
    const deadline = Date.now() + waitMs;
    try {
      for (;;) {
        pending = false;
        const result = await ask();
        if (result) return result;
        if (!pending) {
          const left = deadline - Date.now();
          if (left <= 0) throw new DeviceNotOnline(key.deviceId);
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, left);
            wake = () => { clearTimeout(timer); resolve(); };
          });
          if (!pending) throw new DeviceNotOnline(key.deviceId);
        }
      }
    } finally {
      await unsubscribe();
    }
  }
}

/** The serving node reports a device timeout as a remote error whose message starts with 'timeout'. */
function mapRemote(err: unknown, key: IdentityKey, call: MethodCall): unknown {
  if (err instanceof Error && err.message.startsWith('timeout')) return new GatewayTimeout(key.deviceId, call.responseTimeoutInSeconds);
  if (err instanceof Error && err.message.startsWith('offline')) return new DeviceNotOnline(key.deviceId);
  return err;
}
