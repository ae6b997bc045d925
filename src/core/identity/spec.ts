import { ArgumentInvalid } from '../errors/index.js';
import type { AuthType, DeviceStatus } from '../../ports/store/index.js';

/** What a caller may set on a device or module, parsed and checked (keys still in the clear). */
export interface IdentitySpec {
  readonly status?: DeviceStatus;
  readonly statusReason?: string | null;
  readonly authType: AuthType;
  /** undefined or '' = generate on create, keep on update. */
  readonly primaryKey?: string;
  readonly secondaryKey?: string;
  readonly primaryThumbprint: string | null;
  readonly secondaryThumbprint: string | null;
  readonly iotEdge?: boolean;
  readonly deviceScope?: string | null;
  readonly parentScopes?: readonly string[];
  readonly managedBy?: string | null;
}

const AUTH_TYPES: Record<string, AuthType> = {
  sas: 'sas', selfsigned: 'selfSigned', certificateauthority: 'certificateAuthority', none: 'none',
};
const THUMBPRINT = /^([0-9A-Fa-f]{40}|[0-9A-Fa-f]{64})$/;

/** A JSON object (not null, not an array). */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function optionalString(v: unknown, field: string): string | null | undefined {
  if (v === undefined || v === null) return v as null | undefined;
  if (typeof v !== 'string') throw new ArgumentInvalid(`${field} must be a string, got ${JSON.stringify(v)}`);
  return v;
}

function parseKey(v: unknown, field: string): string | undefined {
  const key = optionalString(v, field);
  if (!key) return undefined;
  const bytes = Buffer.from(key, 'base64');
  // IoT Hub accepts symmetric keys of 16 to 64 bytes, base64-encoded.
  if (bytes.length < 16 || bytes.length > 64 || bytes.toString('base64').replace(/=+$/, '') !== key.replace(/=+$/, '')) {
    throw new ArgumentInvalid(`${field} must be base64 of 16 to 64 bytes`);
  }
  return key;
}

function parseThumbprint(v: unknown, field: string): string | null {
  const t = optionalString(v, field);
  if (!t) return null;
  if (!THUMBPRINT.test(t)) throw new ArgumentInvalid(`${field} must be a SHA-1 (40) or SHA-256 (64) hex thumbprint, got '${t}'`);
  return t.toUpperCase();
}

function parseStatus(v: unknown): DeviceStatus | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string' && /^(enabled|disabled)$/i.test(v)) return v.toLowerCase() as DeviceStatus;
  throw new ArgumentInvalid(`status must be 'enabled' or 'disabled', got ${JSON.stringify(v)}`);
}

function parseAuth(v: unknown): Pick<IdentitySpec, 'authType' | 'primaryKey' | 'secondaryKey' | 'primaryThumbprint' | 'secondaryThumbprint'> {
  if (v === undefined || v === null) return { authType: 'sas', primaryThumbprint: null, secondaryThumbprint: null };
  if (!isRecord(v)) throw new ArgumentInvalid('authentication must be an object');
  const sym = v.symmetricKey ?? {};
  const x509 = v.x509Thumbprint ?? {};
  if (!isRecord(sym)) throw new ArgumentInvalid('authentication.symmetricKey must be an object');
  if (!isRecord(x509)) throw new ArgumentInvalid('authentication.x509Thumbprint must be an object');
  const primaryThumbprint = parseThumbprint(x509.primaryThumbprint, 'authentication.x509Thumbprint.primaryThumbprint');
  const secondaryThumbprint = parseThumbprint(x509.secondaryThumbprint, 'authentication.x509Thumbprint.secondaryThumbprint');
  let authType: AuthType;
  if (v.type === undefined || v.type === null) {
    authType = primaryThumbprint || secondaryThumbprint ? 'selfSigned' : 'sas';
  } else {
    const t = typeof v.type === 'string' ? AUTH_TYPES[v.type.toLowerCase()] : undefined;
    if (!t) throw new ArgumentInvalid(`authentication.type must be sas, selfSigned, certificateAuthority or none, got ${JSON.stringify(v.type)}`);
    authType = t;
  }
  if (authType === 'selfSigned' && !primaryThumbprint && !secondaryThumbprint) {
    throw new ArgumentInvalid('authentication.type selfSigned needs x509Thumbprint.primaryThumbprint or secondaryThumbprint');
  }
  return {
    authType,
    primaryKey: parseKey(sym.primaryKey, 'authentication.symmetricKey.primaryKey'),
    secondaryKey: parseKey(sym.secondaryKey, 'authentication.symmetricKey.secondaryKey'),
    primaryThumbprint, secondaryThumbprint,
  };
}

function parseScopes(v: unknown): readonly string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) throw new ArgumentInvalid('parentScopes must be an array of strings');
  return v as string[];
}

/** Parses the writable part of IoT Hub's Device or Module JSON; throws ArgumentInvalid naming the bad field. */
export function parseIdentitySpec(body: unknown): IdentitySpec {
  if (!isRecord(body)) throw new ArgumentInvalid('the body must be a JSON object describing the device');
  const caps = body.capabilities;
  if (caps !== undefined && caps !== null && !isRecord(caps)) throw new ArgumentInvalid('capabilities must be an object');
  const iotEdge = isRecord(caps) ? caps.iotEdge : undefined;
  if (iotEdge !== undefined && iotEdge !== null && typeof iotEdge !== 'boolean') throw new ArgumentInvalid('capabilities.iotEdge must be true or false');
  const statusReason = optionalString(body.statusReason, 'statusReason');
  if (statusReason && statusReason.length > 128) throw new ArgumentInvalid('statusReason is longer than 128 characters');
  return {
    status: parseStatus(body.status),
    statusReason,
    ...parseAuth(body.authentication),
    iotEdge: typeof iotEdge === 'boolean' ? iotEdge : undefined,
    deviceScope: optionalString(body.deviceScope, 'deviceScope'),
    parentScopes: parseScopes(body.parentScopes),
    managedBy: optionalString(body.managedBy, 'managedBy'),
  };
}
