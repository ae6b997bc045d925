import type { IdentityRecord } from '../../ports/store/index.js';
import { twinEtag } from './state.js';

/** IoT Hub's Twin JSON for a device or module. */
export function twinView(r: IdentityRecord) {
  const t = r.twin;
  return {
    deviceId: r.deviceId,
    moduleId: r.moduleId === '' ? undefined : r.moduleId,
    etag: twinEtag(t),
    deviceEtag: r.etag,
    status: r.status,
    statusReason: r.statusReason,
    statusUpdateTime: r.statusUpdatedTime,
    connectionState: r.connectionState,
    lastActivityTime: r.lastActivityTime,
    cloudToDeviceMessageCount: r.c2dCount,
    authenticationType: r.authType,
    x509Thumbprint: { primaryThumbprint: r.primaryThumbprint, secondaryThumbprint: r.secondaryThumbprint },
    modelId: r.modelId,
    version: t.version,
    tags: t.tags,
    properties: {
      desired: { ...t.desired, $metadata: t.desiredMeta, $version: t.desiredVersion },
      reported: { ...t.reported, $metadata: t.reportedMeta, $version: t.reportedVersion },
    },
    capabilities: r.moduleId === '' ? { iotEdge: r.iotEdge } : undefined,
  };
}

/** What a device's twin GET returns: just the two property sections with their versions. */
export function deviceTwinView(r: IdentityRecord) {
  const t = r.twin;
  return {
    desired: { ...t.desired, $version: t.desiredVersion },
    reported: { ...t.reported, $version: t.reportedVersion },
  };
}
