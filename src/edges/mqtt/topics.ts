import type { IdentityKey } from '../../ports/store/index.js';

/** What a device's PUBLISH asks for, by its topic (azure-compat §2, §4, §5). */
export type DevicePublish =
  | { readonly kind: 'telemetry'; readonly bag: string }
  | { readonly kind: 'twin-get'; readonly rid: string }
  | { readonly kind: 'twin-patch'; readonly rid: string }
  | { readonly kind: 'method-response'; readonly rid: string; readonly status: number }
  | { readonly kind: 'foreign' };

/** The subscriptions a device may hold; anything else is a foreign topic. */
export type DeviceSubscription = 'c2d' | 'twin-response' | 'desired' | 'methods';

const SUBSCRIPTIONS: readonly string[] = ['c2d', 'twin-response', 'desired', 'methods'] satisfies DeviceSubscription[];

/** True for the names DeviceSubscription uses (kept sessions are read back from the Store). */
export function isDeviceSubscription(name: string): name is DeviceSubscription {
  return SUBSCRIPTIONS.includes(name);
}

function prefixOf(key: IdentityKey): string {
  return key.moduleId ? `devices/${key.deviceId}/modules/${key.moduleId}/` : `devices/${key.deviceId}/`;
}

/** `key=value&…` after `?`, both sides percent-decoded; undefined when malformed. */
export function parseQuery(text: string): Map<string, string> | undefined {
  const out = new Map<string, string>();
  if (text === '') return out;
  try {
    for (const part of text.split('&')) {
      if (part === '') continue;
      const eq = part.indexOf('=');
      out.set(decodeURIComponent(eq < 0 ? part : part.slice(0, eq)), eq < 0 ? '' : decodeURIComponent(part.slice(eq + 1)));
    }
  } catch {
    return undefined;
  }
  return out;
}

function ridOf(rest: string): string | undefined {
  if (!rest.startsWith('?')) return undefined;
  const rid = parseQuery(rest.slice(1))?.get('$rid');
  return rid ? rid : undefined;
}

/** Classifies a device's PUBLISH topic; anything not the device's own is 'foreign'. */
export function parsePublishTopic(key: IdentityKey, topic: string): DevicePublish {
  const events = `${prefixOf(key)}messages/events/`;
  if (topic.startsWith(events)) return { kind: 'telemetry', bag: topic.slice(events.length) };
  if (topic === `${prefixOf(key)}messages/events`) return { kind: 'telemetry', bag: '' };
  if (topic.startsWith('$iothub/twin/GET/')) {
    const rid = ridOf(topic.slice('$iothub/twin/GET/'.length));
    return rid ? { kind: 'twin-get', rid } : { kind: 'foreign' };
  }
  if (topic.startsWith('$iothub/twin/PATCH/properties/reported/')) {
    const rid = ridOf(topic.slice('$iothub/twin/PATCH/properties/reported/'.length));
    return rid ? { kind: 'twin-patch', rid } : { kind: 'foreign' };
  }
  const m = /^\$iothub\/methods\/res\/(\d{1,3})\/(.*)$/.exec(topic);
  if (m) {
    const rid = ridOf(m[2]);
    return rid ? { kind: 'method-response', rid, status: Number(m[1]) } : { kind: 'foreign' };
  }
  return { kind: 'foreign' };
}

/** Which of the device's own subscriptions a topic filter is, or undefined for a foreign one. */
export function parseSubscription(key: IdentityKey, filter: string): DeviceSubscription | undefined {
  const c2d = key.moduleId ? `${prefixOf(key)}inputs/` : `${prefixOf(key)}messages/devicebound/`;
  if (filter === `${c2d}#` || filter === `${c2d}+` || filter === c2d.slice(0, -1)) return 'c2d';
  if (filter === '$iothub/twin/res/#') return 'twin-response';
  if (filter === '$iothub/twin/PATCH/properties/desired/#') return 'desired';
  if (filter === '$iothub/methods/POST/#') return 'methods';
  return undefined;
}

/** Splits a telemetry property bag into system properties (IoT Hub's `$.` keys) and application properties. */
export function parseBag(bag: string): { system: Record<string, string>; app: Record<string, string> } | undefined {
  const q = parseQuery(bag.replace(/\/$/, ''));
  if (!q) return undefined;
  const system: Record<string, string> = {};
  const app: Record<string, string> = {};
  for (const [k, v] of q) {
    const name = SYSTEM_KEYS[k];
    if (name) system[name] = v;
    else app[k] = v;
  }
  return { system, app };
}

const SYSTEM_KEYS: Record<string, string> = {
  '$.mid': 'message-id', '$.cid': 'correlation-id', '$.uid': 'user-id', '$.to': 'to', '$.ct': 'content-type',
  '$.ce': 'content-encoding', '$.exp': 'absolute-expiry-time', '$.ifid': 'interface-id', '$.sub': 'component-name',
  '$.on': 'output-name',
};

/** Encodes a property bag as IoT Hub writes it: `k=v&…`, both percent-encoded (`/` as %2F), `k=` for empty values. */
export function encodeBag(props: Readonly<Record<string, string>>): string {
  return Object.entries(props).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
}
