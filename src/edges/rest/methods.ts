import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Methods } from '../../core/methods/index.js';

/** Direct method calls: `POST /twins/{id}/methods` and the module form; 200 `{status, payload}` for any device status. */
export function registerMethodRoutes(app: FastifyInstance, deps: { methods: Methods }): void {
  const invoke = async (req: FastifyRequest) => {
    const p = req.params as { deviceId: string; moduleId?: string };
    return deps.methods.invoke({ deviceId: p.deviceId, moduleId: p.moduleId ?? '' }, req.body);
  };
  app.post('/twins/:deviceId/methods', { config: { rights: ['ServiceConnect'] } }, invoke);
  app.post('/twins/:deviceId/modules/:moduleId/methods', { config: { rights: ['ServiceConnect'] } }, invoke);
}
