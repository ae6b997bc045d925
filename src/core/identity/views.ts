import type { KeyRing } from '../../ports/keyring/index.js';
import type { IdentityRecord } from '../../ports/store/index.js';

/** IoT Hub's `authentication` object, keys opened for the caller (omitted when `withKeys` is false). */
export function authenticationView(r: IdentityRecord, keyring: KeyRing, withKeys = true) {
  const open = (sealed: string | null) => (sealed && withKeys ? keyring.open(sealed) : null);
  return {
    symmetricKey: { primaryKey: open(r.primaryKey), secondaryKey: open(r.secondaryKey) },
    x509Thumbprint: { primaryThumbprint: r.primaryThumbprint, secondaryThumbprint: r.secondaryThumbprint },
    type: r.authType,
  };
}

/** IoT Hub's Device JSON. */
export function deviceView(r: IdentityRecord, keyring: KeyRing) {
  return {
    deviceId: r.deviceId,
    generationId: r.generationId,
    etag: r.etag,
    connectionState: r.connectionState,
    status: r.status,
    statusReason: r.statusReason,
    connectionStateUpdatedTime: r.connectionStateUpdatedTime,
    statusUpdatedTime: r.statusUpdatedTime,
    lastActivityTime: r.lastActivityTime,
    cloudToDeviceMessageCount: r.c2dCount,
    authentication: authenticationView(r, keyring),
    capabilities: { iotEdge: r.iotEdge },
    deviceScope: r.deviceScope ?? undefined,
    parentScopes: r.parentScopes.length ? r.parentScopes : undefined,
  };
}

/** IoT Hub's Module JSON. */
export function moduleView(r: IdentityRecord, keyring: KeyRing) {
  return {
    moduleId: r.moduleId,
    managedBy: r.managedBy,
    deviceId: r.deviceId,
    generationId: r.generationId,
    etag: r.etag,
    connectionState: r.connectionState,
    connectionStateUpdatedTime: r.connectionStateUpdatedTime,
    lastActivityTime: r.lastActivityTime,
    cloudToDeviceMessageCount: r.c2dCount,
    authentication: authenticationView(r, keyring),
  };
}

/** Device JSON for a device, Module JSON for a module. */
export function identityView(r: IdentityRecord, keyring: KeyRing) {
  return r.moduleId === '' ? deviceView(r, keyring) : moduleView(r, keyring);
}
