import { X509Certificate } from 'node:crypto';
import { isSignedBy, parseSasToken, safeDecode, type Policy, type SasToken } from '../access/index.js';
import { checkDeviceChain, thumbprintsOf, validityProblem } from '../certificates/index.js';
import { CorralError } from '../errors/index.js';
import type { Clock } from '../../ports/clock/index.js';
import type { KeyRing } from '../../ports/keyring/index.js';
import type { IdentityKey, IdentityRecord, Store } from '../../ports/store/index.js';

/** How a device proved who it is. */
export type DeviceAuthMethod = 'sas' | 'policy' | 'x509';

/** A connected device or module, authenticated. */
export interface DevicePrincipal {
  readonly deviceId: string;
  readonly moduleId: string;
  readonly generationId: string;
  readonly authMethod: DeviceAuthMethod;
  /** When the credential stops being valid (SAS expiry); undefined for certificates. */
  readonly expiresAtMs: number | undefined;
}

/** Why a device was refused; the MQTT edge maps every reason to CONNACK 5, the HTTP edge to 401. */
export class DeviceRefused extends CorralError {
  constructor(readonly key: IdentityKey, reason: string) {
    super(401003, `${key.moduleId ? `module '${key.deviceId}/${key.moduleId}'` : `device '${key.deviceId}'`} refused: ${reason}`);
  }
}

function resourceOf(key: IdentityKey): string {
  return `/devices/${key.deviceId}${key.moduleId ? `/modules/${key.moduleId}` : ''}`;
}

/**
 * Authenticates devices and modules: SAS tokens signed with the identity's key (or a DeviceConnect policy's, with
 * `skn`), and X.509 client certificates matched by thumbprint (selfSigned) or chained to a verified registered CA
 * (certificateAuthority). Disabled identities, and modules of a disabled device, are refused.
 */
export class DeviceAuth {
  private readonly policies: Map<string, Policy>;

  constructor(private readonly deps: { store: Store; keyring: KeyRing; clock: Clock; hostName: string; policies: readonly Policy[] }) {
    this.policies = new Map(deps.policies.filter((p) => p.rights.includes('DeviceConnect')).map((p) => [p.name, p]));
  }

  /** Checks a SAS token for `key`; throws DeviceRefused (401003) naming the reason. */
  async authenticateSas(key: IdentityKey, tokenText: string | undefined): Promise<DevicePrincipal> {
    if (!tokenText) throw new DeviceRefused(key, 'no SAS token');
    const token = parseSasToken(tokenText);
    if (!token) throw new DeviceRefused(key, 'the password is not a SharedAccessSignature token');
    const now = this.deps.clock.now();
    if (token.se * 1000 <= now) throw new DeviceRefused(key, 'the SAS token has expired');
    this.checkResource(key, token);
    const record = await this.enabledRecord(key);
    let authMethod: DeviceAuthMethod;
    if (token.skn) {
      const policy = this.policies.get(safeDecode(token.skn) ?? token.skn);
      if (!policy) throw new DeviceRefused(key, `no policy '${token.skn}' with DeviceConnect`);
      if (!isSignedBy(token, [policy.primaryKey, policy.secondaryKey])) throw new DeviceRefused(key, 'the SAS token signature is not valid');
      authMethod = 'policy';
    } else {
      if (record.authType !== 'sas' || !record.primaryKey || !record.secondaryKey) throw new DeviceRefused(key, `it authenticates with ${record.authType}, not SAS keys`);
      const keys = [this.deps.keyring.open(record.primaryKey), this.deps.keyring.open(record.secondaryKey)];
      if (!isSignedBy(token, keys)) throw new DeviceRefused(key, 'the SAS token signature is not valid');
      authMethod = 'sas';
    }
    return { deviceId: key.deviceId, moduleId: key.moduleId, generationId: record.generationId, authMethod, expiresAtMs: token.se * 1000 };
  }

  /**
   * Checks the client certificate chain `certificates` (leaf first, then any intermediates the client sent) for
   * `key`: a `selfSigned` identity by the leaf's SHA-1 or SHA-256 thumbprint against its registered ones; a
   * `certificateAuthority` identity by the leaf's subject CN (the device id; `{deviceId}/{moduleId}` for a module, as
   * IoT Hub expects) and a chain of valid signatures to a registered, verified CA. Throws DeviceRefused naming why.
   */
  async authenticateCertificate(key: IdentityKey, certificates: readonly Buffer[] | undefined): Promise<DevicePrincipal> {
    if (!certificates || certificates.length === 0 || certificates[0].length === 0) throw new DeviceRefused(key, 'no SAS token and no client certificate');
    const record = await this.enabledRecord(key);
    const nowMs = this.deps.clock.now();
    switch (record.authType) {
      case 'selfSigned': this.checkThumbprint(key, record, certificates[0], nowMs); break;
      case 'certificateAuthority': {
        const identity = key.moduleId ? `${key.deviceId}/${key.moduleId}` : key.deviceId;
        const check = await checkDeviceChain(this.deps.store, certificates, identity, nowMs);
        if (!check.ok) throw new DeviceRefused(key, check.reason);
        break;
      }
      default: throw new DeviceRefused(key, `it authenticates with ${record.authType}, not an X.509 certificate`);
    }
    return { deviceId: key.deviceId, moduleId: key.moduleId, generationId: record.generationId, authMethod: 'x509', expiresAtMs: undefined };
  }

  private checkThumbprint(key: IdentityKey, record: IdentityRecord, leafDer: Buffer, nowMs: number): void {
    let cert: X509Certificate;
    try { cert = new X509Certificate(leafDer); } catch { throw new DeviceRefused(key, 'the client certificate is not a readable X.509 certificate'); }
    const problem = validityProblem(cert, nowMs);
    if (problem) throw new DeviceRefused(key, `the client certificate ${problem}`);
    const { sha1, sha256 } = thumbprintsOf(cert);
    const registered = [record.primaryThumbprint, record.secondaryThumbprint].filter((t): t is string => !!t).map((t) => t.toUpperCase());
    if (!registered.some((t) => t === sha1 || t === sha256)) throw new DeviceRefused(key, 'the client certificate thumbprint is not registered');
  }

  /** The identity as stored now, if it may still be connected (exists, enabled, same generation). */
  async isStillValid(principal: DevicePrincipal): Promise<boolean> {
    try {
      const r = await this.enabledRecord(principal);
      return r.generationId === principal.generationId;
    } catch (err) {
      if (err instanceof DeviceRefused) return false;
      throw err;
    }
  }

  private checkResource(key: IdentityKey, token: SasToken): void {
    const decoded = safeDecode(token.sr);
    if (decoded === undefined) throw new DeviceRefused(key, 'the SAS token resource is not valid percent-encoding');
    const slash = decoded.indexOf('/');
    const host = slash < 0 ? decoded : decoded.slice(0, slash);
    const path = slash < 0 ? '' : decoded.slice(slash).replace(/\/+$/, '');
    if (host.toLowerCase() !== this.deps.hostName.toLowerCase()) throw new DeviceRefused(key, `the SAS token is for '${host}', not this hub`);
    if (path !== resourceOf(key)) throw new DeviceRefused(key, `the SAS token is for '${path || '/'}', not '${resourceOf(key)}'`);
  }

  private async enabledRecord(key: IdentityKey): Promise<IdentityRecord> {
    const keys = key.moduleId ? [key, { deviceId: key.deviceId, moduleId: '' }] : [key];
    const found = await this.deps.store.identities.getMany(keys);
    const record = found.find((r) => r.moduleId === key.moduleId);
    if (!record) throw new DeviceRefused(key, 'no such identity');
    if (found.some((r) => r.status !== 'enabled')) throw new DeviceRefused(key, 'it is disabled');
    return record;
  }
}


export { deviceSubject, decodeJson, encodeJson, type DeviceSubjectKind } from './subjects.js';
