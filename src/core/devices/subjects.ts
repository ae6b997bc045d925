import { subjectToken } from '../../ports/bus/index.js';
import type { IdentityKey } from '../../ports/store/index.js';

/** What travels on a device's Bus subjects (ARCHITECTURE.md: the node holding a connection is reached this way). */
export type DeviceSubjectKind =
  /** request/serve: a direct method call, served by the node holding the device's connection. */
  | 'method'
  /** publish: a desired-properties change `{ version, patch }`. */
  | 'desired'
  /** publish: new cloud-to-device messages are waiting. */
  | 'c2d'
  /** publish: close this identity's connections now (disabled, deleted, keys changed). */
  | 'kick'
  /** publish: the identity now listens for methods (a method call waiting on connectTimeout may go). */
  | 'online';

/** `corral.device.{device}.{module or _}.{kind}`, ids encoded as single subject tokens. */
export function deviceSubject(key: IdentityKey, kind: DeviceSubjectKind): string {
  return `corral.device.${subjectToken(key.deviceId)}.${subjectToken(key.moduleId)}.${kind}`;
}

/** JSON to Bus bytes and back. */
export function encodeJson(value: unknown): Uint8Array {
  return Buffer.from(JSON.stringify(value));
}

export function decodeJson<T>(data: Uint8Array): T {
  return JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8')) as T;
}
