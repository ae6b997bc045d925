import {
  DeviceAlreadyExists, DeviceNotFound, ModuleAlreadyExists, ModuleNotFound, PreconditionFailed, ArgumentInvalid,
} from '../errors/index.js';
import { newTwin, twinView } from '../twins/index.js';
import type { SystemEvents } from '../events/index.js';
import { isoTime, type Clock } from '../../ports/clock/index.js';
import type { KeyRing } from '../../ports/keyring/index.js';
import {
  mutateIdentity, type IdentityCounts, type JsonObject, type IdentityKey, type IdentityRecord, type Store, type TwinState,
} from '../../ports/store/index.js';
import { validateDeviceId, validateModuleId } from './ids.js';
import type { Bus } from '../../ports/bus/index.js';
import { deviceSubject, encodeJson } from '../devices/subjects.js';
import { NEVER, newDeviceEtag, newGenerationId } from './records.js';
import type { IdentitySpec } from './spec.js';

export interface RegistryDeps {
  readonly store: Store;
  readonly keyring: KeyRing;
  readonly clock: Clock;
  /** Where "close this identity's connections" goes when it is disabled, deleted or its credentials change. */
  readonly bus?: Bus;
  /** Where identity life-cycle events go (the EventLog). */
  readonly events?: SystemEvents;
}

/** A record as a life-cycle event carries it: its twin. */
export function lifecycleEntry(r: IdentityRecord): { key: IdentityKey; twin: JsonObject } {
  return { key: { deviceId: r.deviceId, moduleId: r.moduleId }, twin: JSON.parse(JSON.stringify(twinView(r))) as JsonObject };
}

/** True when live connections made with `before`'s credentials must not go on under `after`. */
export function revokes(before: IdentityRecord, after: IdentityRecord | undefined): boolean {
  return !after || after.status !== 'enabled' || after.authType !== before.authType || after.primaryKey !== before.primaryKey
    || after.secondaryKey !== before.secondaryKey || after.primaryThumbprint !== before.primaryThumbprint
    || after.secondaryThumbprint !== before.secondaryThumbprint;
}

/** IoT Hub caps a registry list at 1000 per call. */
export const MAX_LIST = 1000;

export function notFound(key: IdentityKey): Error {
  return key.moduleId === '' ? new DeviceNotFound(key.deviceId) : new ModuleNotFound(key.deviceId, key.moduleId);
}

export function alreadyExists(key: IdentityKey): Error {
  return key.moduleId === '' ? new DeviceAlreadyExists(key.deviceId) : new ModuleAlreadyExists(key.deviceId, key.moduleId);
}

/** Checks both ids of a key by IoT Hub's rules; throws ArgumentInvalid. */
export function checkKey(key: IdentityKey): IdentityKey {
  validateDeviceId(key.deviceId);
  if (key.moduleId !== '') validateModuleId(key.moduleId);
  return key;
}

/** The device identity registry: devices and modules, their keys (sealed at rest), status and statistics. */
export class Registry {
  constructor(private readonly deps: RegistryDeps) {}

  /** A new identity record from a spec (keys generated when not given) and an optional twin, not yet stored. */
  build(key: IdentityKey, spec: IdentitySpec, twin?: TwinState): IdentityRecord {
    const nowMs = this.deps.clock.now();
    const now = isoTime(nowMs);
    const creds = this.credentials(spec, undefined);
    return {
      deviceId: key.deviceId,
      moduleId: key.moduleId,
      generationId: newGenerationId(nowMs),
      etag: newDeviceEtag(),
      status: spec.status ?? 'enabled',
      statusReason: spec.statusReason ?? null,
      statusUpdatedTime: NEVER,
      authType: creds.authType,
      primaryKey: creds.primaryKey,
      secondaryKey: creds.secondaryKey,
      primaryThumbprint: creds.primaryThumbprint,
      secondaryThumbprint: creds.secondaryThumbprint,
      iotEdge: key.moduleId === '' ? spec.iotEdge ?? false : false,
      deviceScope: spec.deviceScope ?? null,
      parentScopes: spec.parentScopes ?? [],
      managedBy: spec.managedBy ?? null,
      modelId: '',
      connectionState: 'Disconnected',
      connectionStateUpdatedTime: NEVER,
      lastActivityTime: NEVER,
      c2dCount: 0,
      twin: twin ?? newTwin(now),
      rev: 1,
    };
  }

  /** The record after an update by `spec`: identity fields replaced, twin and presence kept, new etag. */
  rebuild(current: IdentityRecord, spec: IdentitySpec): IdentityRecord {
    const status = spec.status ?? current.status;
    return {
      ...current,
      etag: newDeviceEtag(),
      status,
      statusReason: spec.statusReason !== undefined ? spec.statusReason : current.statusReason,
      statusUpdatedTime: status !== current.status ? isoTime(this.deps.clock.now()) : current.statusUpdatedTime,
      ...this.credentials(spec, current),
      iotEdge: current.moduleId === '' ? spec.iotEdge ?? current.iotEdge : false,
      deviceScope: spec.deviceScope !== undefined ? spec.deviceScope : current.deviceScope,
      parentScopes: spec.parentScopes ?? current.parentScopes,
      managedBy: spec.managedBy !== undefined ? spec.managedBy : current.managedBy,
    };
  }

  private credentials(spec: IdentitySpec, current: IdentityRecord | undefined) {
    const seal = (given: string | undefined, kept: string | null) =>
      given ? this.deps.keyring.seal(given) : kept ?? this.deps.keyring.seal(this.deps.keyring.newKey());
    const usesKeys = spec.authType === 'sas';
    const keepKeys = current?.authType === 'sas';
    return {
      authType: spec.authType,
      primaryKey: usesKeys ? seal(spec.primaryKey, keepKeys ? current.primaryKey : null) : null,
      secondaryKey: usesKeys ? seal(spec.secondaryKey, keepKeys ? current.secondaryKey : null) : null,
      primaryThumbprint: spec.authType === 'selfSigned' ? spec.primaryThumbprint : null,
      secondaryThumbprint: spec.authType === 'selfSigned' ? spec.secondaryThumbprint : null,
    };
  }

  /** Creates a device or module; 409001/409301 if it exists, 404001 for a module of a missing device. */
  async create(key: IdentityKey, spec: IdentitySpec): Promise<IdentityRecord> {
    checkKey(key);
    if (key.moduleId !== '' && !(await this.deps.store.identities.get({ deviceId: key.deviceId, moduleId: '' }))) {
      throw new DeviceNotFound(key.deviceId);
    }
    const record = this.build(key, spec);
    if (!(await this.deps.store.identities.insert(record))) throw alreadyExists(key);
    void this.deps.events?.lifecycle('create', [lifecycleEntry(record)]);
    return record;
  }

  /** Updates identity fields; `ifMatch` is an unquoted etag or '*'. 404001 if missing, 412002 on a stale etag. */
  async update(key: IdentityKey, spec: IdentitySpec, ifMatch: string): Promise<IdentityRecord> {
    checkKey(key);
    let before: IdentityRecord | undefined;
    const updated = await mutateIdentity(this.deps.store.identities, key, (current) => {
      if (!current) throw notFound(key);
      checkEtag(current, ifMatch);
      before = current;
      return this.rebuild(current, spec);
    }) as IdentityRecord; // the change function throws rather than return undefined
    if (before && revokes(before, updated)) await this.kick(await this.withModules([key]), 'its identity was disabled or its credentials changed');
    return updated;
  }

  /** Closes the live connections of exactly these identities on every node (within a second: one Bus hop). */
  async kick(keys: readonly IdentityKey[], reason: string): Promise<void> {
    const bus = this.deps.bus;
    if (!bus) return;
    await Promise.all(keys.map((k) => bus.publish(deviceSubject(k, 'kick'), encodeJson({ reason }))));
  }

  /** The keys and, for each device key, its modules' keys: what a device's disabling or deletion cuts off. */
  async withModules(keys: readonly IdentityKey[]): Promise<IdentityKey[]> {
    const all = [...keys];
    for (const k of keys) {
      if (k.moduleId !== '') continue;
      const modules = await this.deps.store.identities.scan({ scope: 'modules', deviceId: k.deviceId, limit: 1_000_000 });
      all.push(...modules.map((m) => ({ deviceId: m.deviceId, moduleId: m.moduleId })));
    }
    return all;
  }

  /** 404001 if missing. */
  async get(key: IdentityKey): Promise<IdentityRecord> {
    checkKey(key);
    const r = await this.deps.store.identities.get(key);
    if (!r) throw notFound(key);
    return r;
  }

  /** Deletes a device (with its modules) or a module; 404001 if missing, 412002 on a stale etag. */
  async delete(key: IdentityKey, ifMatch = '*'): Promise<void> {
    checkKey(key);
    for (;;) {
      const current = await this.deps.store.identities.get(key);
      if (!current) throw notFound(key);
      checkEtag(current, ifMatch);
      // Read before the delete takes them: a device's modules lose their connections with it.
      const doomed = await this.withModules([key]);
      if (await this.deps.store.identities.delete(key, current.rev)) {
        await this.kick(doomed, 'its identity was deleted');
        void this.deps.events?.lifecycle('delete', [lifecycleEntry(current)]);
        return;
      }
    }
  }

  /** Devices in id order, `top` at most (≤ 1000), after `afterDeviceId` for paging. */
  async listDevices(top: number, afterDeviceId?: string): Promise<IdentityRecord[]> {
    if (!Number.isInteger(top) || top < 1 || top > MAX_LIST) throw new ArgumentInvalid(`top must be 1..${MAX_LIST}, got ${top}`);
    const after = afterDeviceId === undefined ? undefined : { deviceId: afterDeviceId, moduleId: '' };
    return this.deps.store.identities.scan({ scope: 'devices', limit: top, after });
  }

  /** All modules of a device; 404001 if the device does not exist. */
  async listModules(deviceId: string): Promise<IdentityRecord[]> {
    await this.get({ deviceId, moduleId: '' });
    return this.deps.store.identities.scan({ scope: 'modules', deviceId, limit: 1_000_000 });
  }

  /** Device counts (total, enabled, disabled) and how many are connected. */
  async statistics(): Promise<IdentityCounts> {
    return this.deps.store.identities.counts();
  }
}

/** `ifMatch` is an unquoted etag or '*'. */
export function checkEtag(current: IdentityRecord, ifMatch: string): void {
  if (ifMatch !== '*' && ifMatch !== current.etag) {
    const what = current.moduleId ? `module '${current.deviceId}/${current.moduleId}'` : `device '${current.deviceId}'`;
    throw new PreconditionFailed(what, ifMatch, current.etag);
  }
}
