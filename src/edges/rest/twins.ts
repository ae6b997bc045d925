import type { FastifyInstance, FastifyRequest } from 'fastify';
import { twinView, type Twins } from '../../core/twins/index.js';
import type { IdentityKey } from '../../ports/store/index.js';
import { ifMatchOf } from './server.js';

// Twins are read with ServiceConnect (IoT Hub) or RegistryRead, and written with ServiceConnect or RegistryWrite.
const READ = { rights: ['ServiceConnect', 'RegistryRead'] } as const;
const WRITE = { rights: ['ServiceConnect', 'RegistryWrite'] } as const;

function keyOf(req: FastifyRequest): IdentityKey {
  const p = req.params as { deviceId: string; moduleId?: string };
  return { deviceId: p.deviceId, moduleId: p.moduleId ?? '' };
}

/** IoT Hub's twin routes for devices and modules: GET, PATCH (merge) and PUT (replace tags + desired). */
export function registerTwinRoutes(app: FastifyInstance, deps: { twins: Twins }): void {
  const { twins } = deps;
  for (const path of ['/twins/:deviceId', '/twins/:deviceId/modules/:moduleId']) {
    app.get(path, { config: READ }, async (req) => twinView(await twins.get(keyOf(req))));
    app.patch(path, { config: WRITE }, async (req) => twinView(await twins.patch(keyOf(req), req.body, ifMatchOf(req))));
    app.put(path, { config: WRITE }, async (req) => twinView(await twins.replace(keyOf(req), req.body, ifMatchOf(req))));
  }
}
