import type { FastifyInstance } from 'fastify';
import {
  MAX_LIST, deviceView, moduleView, parseIdentitySpec, type BulkRegistry, type Registry,
} from '../../core/identity/index.js';
import { ArgumentInvalid } from '../../core/errors/index.js';
import type { KeyRing } from '../../ports/keyring/index.js';
import { ifMatchOf } from './server.js';

type DeviceParams = { deviceId: string };
type ModuleParams = { deviceId: string; moduleId: string };

const READ = { rights: ['RegistryRead', 'RegistryWrite'] } as const;
const WRITE = { rights: ['RegistryWrite'] } as const;

/** The body's id, if it names one, must be the path's (IoT Hub answers 400 otherwise). */
function checkBodyId(body: unknown, field: 'deviceId' | 'moduleId', expected: string): void {
  const given = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[field] : undefined;
  if (given !== undefined && given !== null && given !== expected) {
    throw new ArgumentInvalid(`${field} '${String(given)}' in the body does not match '${expected}' in the path`);
  }
}

function parseTop(q: unknown): number {
  const raw = (q as Record<string, string | undefined>).top;
  if (raw === undefined) return MAX_LIST;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > MAX_LIST) throw new ArgumentInvalid(`top must be an integer 1..${MAX_LIST}, got '${raw}'`);
  return n;
}

/** IoT Hub's registry routes: devices, modules, bulk operations and statistics. */
export function registerIdentityRoutes(app: FastifyInstance, deps: { registry: Registry; bulk: BulkRegistry; keyring: KeyRing; health?: () => Promise<{ healthy: number; unhealthy: number }> }): void {
  const { registry, bulk, keyring } = deps;

  // PUT without If-Match creates (409 if it exists); with If-Match updates (IoT Hub's rule).
  app.put<{ Params: DeviceParams }>('/devices/:deviceId', { config: WRITE }, async (req) => {
    const key = { deviceId: req.params.deviceId, moduleId: '' };
    checkBodyId(req.body, 'deviceId', key.deviceId);
    const spec = parseIdentitySpec(req.body);
    const ifMatch = ifMatchOf(req);
    const r = ifMatch === undefined ? await registry.create(key, spec) : await registry.update(key, spec, ifMatch);
    return deviceView(r, keyring);
  });
  app.get<{ Params: DeviceParams }>('/devices/:deviceId', { config: READ }, async (req) =>
    deviceView(await registry.get({ deviceId: req.params.deviceId, moduleId: '' }), keyring));
  app.delete<{ Params: DeviceParams }>('/devices/:deviceId', { config: WRITE }, async (req, reply) => {
    await registry.delete({ deviceId: req.params.deviceId, moduleId: '' }, ifMatchOf(req) ?? '*');
    return reply.code(204).send();
  });
  // Corral extension: `x-ms-continuation` pages past the first `top` devices (IoT Hub stops at 1000).
  app.get('/devices', { config: READ }, async (req, reply) => {
    const top = parseTop(req.query);
    const token = req.headers['x-ms-continuation'];
    const after = typeof token === 'string' && token !== '' ? Buffer.from(token, 'base64url').toString('utf8') : undefined;
    const page = await registry.listDevices(top, after);
    if (page.length === top) void reply.header('x-ms-continuation', Buffer.from(page[page.length - 1].deviceId).toString('base64url'));
    return page.map((r) => deviceView(r, keyring));
  });
  app.post('/devices', { config: WRITE }, async (req) => bulk.run(req.body));

  app.put<{ Params: ModuleParams }>('/devices/:deviceId/modules/:moduleId', { config: WRITE }, async (req) => {
    const key = { deviceId: req.params.deviceId, moduleId: req.params.moduleId };
    checkBodyId(req.body, 'deviceId', key.deviceId);
    checkBodyId(req.body, 'moduleId', key.moduleId);
    const spec = parseIdentitySpec(req.body);
    const ifMatch = ifMatchOf(req);
    const r = ifMatch === undefined ? await registry.create(key, spec) : await registry.update(key, spec, ifMatch);
    return moduleView(r, keyring);
  });
  app.get<{ Params: ModuleParams }>('/devices/:deviceId/modules/:moduleId', { config: READ }, async (req) =>
    moduleView(await registry.get({ deviceId: req.params.deviceId, moduleId: req.params.moduleId }), keyring));
  app.delete<{ Params: ModuleParams }>('/devices/:deviceId/modules/:moduleId', { config: WRITE }, async (req, reply) => {
    await registry.delete({ deviceId: req.params.deviceId, moduleId: req.params.moduleId }, ifMatchOf(req) ?? '*');
    return reply.code(204).send();
  });
  app.get<{ Params: DeviceParams }>('/devices/:deviceId/modules', { config: READ }, async (req) =>
    (await registry.listModules(req.params.deviceId)).map((r) => moduleView(r, keyring)));

  // IoT Hub's three counts, and Corral's fleet health (healthy once heard from, unhealthy after a missed heartbeat; docs/pipeline.md).
  app.get('/statistics/devices', { config: READ }, async () => {
    const c = await registry.statistics();
    const h = deps.health ? await deps.health() : undefined;
    return {
      totalDeviceCount: c.total, enabledDeviceCount: c.enabled, disabledDeviceCount: c.disabled,
      ...(h ? { healthyDeviceCount: h.healthy, unhealthyDeviceCount: h.unhealthy } : {}),
    };
  });
  app.get('/statistics/service', { config: { rights: ['ServiceConnect', 'RegistryRead'] } }, async () => {
    const c = await registry.statistics();
    return { connectedDeviceCount: c.connected };
  });
}
