import { AccessDenied, Unauthorized } from '../errors/index.js';
import type { Clock } from '../../ports/clock/index.js';
import type { KeyRing } from '../../ports/keyring/index.js';
import type { PolicyRecord, Store } from '../../ports/store/index.js';
import { isSignedBy, parseSasToken, resourceOf, safeDecode } from './sas.js';

export { buildSasToken, isSignedBy, parseSasToken, safeDecode, signSas, strictEncode, type SasToken } from './sas.js';

/** IoT Hub's permissions, as shared access policies grant them. */
export type Right = 'RegistryRead' | 'RegistryWrite' | 'ServiceConnect' | 'DeviceConnect';

/** The five policies every hub starts with, and IoT Hub's rights for each. */
export const DEFAULT_POLICIES: Readonly<Record<string, readonly Right[]>> = {
  iothubowner: ['RegistryRead', 'RegistryWrite', 'ServiceConnect', 'DeviceConnect'],
  service: ['ServiceConnect'],
  registryRead: ['RegistryRead'],
  registryReadWrite: ['RegistryRead', 'RegistryWrite'],
  device: ['DeviceConnect'],
};

/** A caller authenticated by a shared access policy. */
export interface ServicePrincipal {
  readonly policy: string;
  readonly rights: ReadonlySet<Right>;
}

/** A policy with its keys in the clear (held in memory only). */
export interface Policy {
  readonly name: string;
  readonly rights: readonly Right[];
  readonly primaryKey: string;
  readonly secondaryKey: string;
}

/** Creates the default policies that are missing (first start) and returns all policies, keys opened. */
export async function ensurePolicies(store: Store, keyring: KeyRing): Promise<Policy[]> {
  const missing: PolicyRecord[] = Object.entries(DEFAULT_POLICIES).map(([name, rights]) => ({
    name, rights, primaryKey: keyring.seal(keyring.newKey()), secondaryKey: keyring.seal(keyring.newKey()),
  }));
  await store.policies.insertMissing(missing);
  return (await store.policies.list()).map((p) => ({
    name: p.name,
    rights: p.rights as Right[],
    primaryKey: keyring.open(p.primaryKey),
    secondaryKey: keyring.open(p.secondaryKey),
  }));
}

const TOKEN_CACHE_MAX = 10_000;

/**
 * Checks service SAS tokens against the hub's policies and rights per operation. A validated token is cached
 * until it expires, so a client re-using its token costs a map lookup, not an HMAC.
 */
export class ServiceAccess {
  private readonly byName: Map<string, Policy>;
  private readonly cache = new Map<string, { principal: ServicePrincipal; expiresMs: number }>();

  constructor(policies: readonly Policy[], private readonly hostName: string, private readonly clock: Clock) {
    this.byName = new Map(policies.map((p) => [p.name, p]));
  }

  /** Authenticates an `Authorization` header value; throws Unauthorized (401003) naming what was wrong. */
  authenticate(header: string | undefined): ServicePrincipal {
    if (!header) throw new Unauthorized('the request has no Authorization header with a SAS token');
    const now = this.clock.now();
    const cached = this.cache.get(header);
    if (cached && cached.expiresMs > now) return cached.principal;
    const token = parseSasToken(header);
    if (!token) throw new Unauthorized('the Authorization header is not a SharedAccessSignature token');
    if (token.se * 1000 <= now) throw new Unauthorized('the SAS token has expired');
    if (!token.skn) throw new Unauthorized('the SAS token names no shared access policy (skn)');
    const policy = this.byName.get(safeDecode(token.skn) ?? token.skn);
    if (!policy) throw new Unauthorized(`no shared access policy named '${token.skn}'`);
    const resource = resourceOf(token)?.replace(/\/+$/, '').toLowerCase();
    if (resource !== this.hostName.toLowerCase()) throw new Unauthorized(`the SAS token is for '${resourceOf(token) ?? token.sr}', not this hub`);
    if (!isSignedBy(token, [policy.primaryKey, policy.secondaryKey])) throw new Unauthorized('the SAS token signature is not valid');
    const principal: ServicePrincipal = { policy: policy.name, rights: new Set(policy.rights) };
    if (this.cache.size >= TOKEN_CACHE_MAX) this.cache.clear();
    this.cache.set(header, { principal, expiresMs: token.se * 1000 });
    return principal;
  }

  /** Throws AccessDenied (401002) unless the principal holds one of `rights`. */
  require(principal: ServicePrincipal, ...rights: Right[]): void {
    if (!rights.some((r) => principal.rights.has(r))) throw new AccessDenied(principal.policy, rights.join(' or '));
  }

  /** The policies, for `corral policy list` (iothubowner only sees keys; edges decide). */
  policies(): readonly Policy[] {
    return [...this.byName.values()];
  }
}
