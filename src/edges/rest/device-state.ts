import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ArgumentInvalid, DeviceNotFound } from '../../core/errors/index.js';
import { MAX_READ, type ConsumerGroups } from '../../core/pipeline/index.js';
import { isoTime } from '../../ports/clock/index.js';
import type { IdentityKey, Store } from '../../ports/store/index.js';
import { CORRAL_PREFIX } from './corral.js';

const READ = { rights: ['RegistryRead', 'ServiceConnect'] } as const;

function keyOf(req: FastifyRequest): IdentityKey {
  const p = req.params as { deviceId: string; moduleId?: string };
  return { deviceId: p.deviceId, moduleId: p.moduleId ?? '' };
}

function timeOf(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined || text === '') return fallback;
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw new ArgumentInvalid(`${name} must be an ISO 8601 time, got '${text}'`);
  return t;
}

/**
 * Device state (Corral): `GET /corral/v1/devices/{id}[/modules/{m}]/state` gives the last-known value of each
 * telemetry field with the time it was seen, when the device was last heard from and its health;
 * `GET …/telemetry?from=&to=&limit=` reads its raw telemetry in a time range (default: the last hour).
 */
export function registerDeviceStateRoutes(app: FastifyInstance, deps: { store: Store; groups: ConsumerGroups; now: () => number }): void {
  for (const path of [`${CORRAL_PREFIX}/devices/:deviceId`, `${CORRAL_PREFIX}/devices/:deviceId/modules/:moduleId`]) {
    app.get(`${path}/state`, { config: READ }, async (req) => {
      const key = keyOf(req);
      if (!(await deps.store.identities.get(key))) throw new DeviceNotFound(key.deviceId);
      const s = await deps.store.pipeline.getDeviceState(key);
      return {
        deviceId: key.deviceId, ...(key.moduleId ? { moduleId: key.moduleId } : {}),
        telemetry: s?.values ?? {}, $metadata: s?.meta ?? {},
        lastSeenTime: s && s.lastSeenMs > 0 ? isoTime(s.lastSeenMs) : null,
        health: s?.health ?? null, healthChangedTime: s?.healthChangedMs ? isoTime(s.healthChangedMs) : null,
      };
    });
    app.get(`${path}/telemetry`, { config: READ }, async (req) => {
      const key = keyOf(req);
      const q = req.query as Record<string, string | undefined>;
      const now = deps.now();
      const toMs = timeOf('to', q.to, now);
      const fromMs = timeOf('from', q.from, toMs - 3600_000);
      if (fromMs > toMs) throw new ArgumentInvalid(`from (${q.from}) is after to (${q.to ?? 'now'})`);
      const limit = q.limit === undefined ? 100 : Number(q.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_READ) throw new ArgumentInvalid(`limit must be an integer from 1 to ${MAX_READ}, got '${q.limit}'`);
      if (!(await deps.store.identities.get(key))) throw new DeviceNotFound(key.deviceId);
      const events = await deps.groups.readDevice(key.deviceId, { fromMs, toMs, limit, sources: ['telemetry'] });
      return { events: key.moduleId ? events.filter((e) => e.moduleId === key.moduleId) : events.filter((e) => e.moduleId === undefined) };
    });
  }
}
