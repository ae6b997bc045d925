import type { FastifyInstance } from 'fastify';
import { ArgumentInvalid, IndexNotFound } from '../../core/errors/index.js';
import type { FleetQueries } from '../../core/query/service.js';
import { CORRAL_PREFIX } from './corral.js';

/**
 * Corral's declared query indexes: `POST {path}` builds one (201 new, 200 already there), `GET` lists them,
 * `DELETE /indexes/{path}` drops one. Declaring needs RegistryWrite; reading, RegistryRead or ServiceConnect.
 */
export function registerIndexRoutes(app: FastifyInstance, deps: { queries: FleetQueries; now: () => string }): void {
  const base = `${CORRAL_PREFIX}/indexes`;
  app.get(base, { config: { rights: ['RegistryRead', 'ServiceConnect'] } }, async () => deps.queries.listIndexes());
  app.post(base, { config: { rights: ['RegistryWrite'] } }, async (req, reply) => {
    const path = (req.body as { path?: unknown } | undefined)?.path;
    if (typeof path !== 'string') throw new ArgumentInvalid('the body must be {"path": "tags.site"}');
    const created = await deps.queries.addIndex(path, deps.now());
    return reply.code(created ? 201 : 200).send({ path, created });
  });
  app.delete(`${base}/:path`, { config: { rights: ['RegistryWrite'] } }, async (req, reply) => {
    const path = (req.params as { path: string }).path;
    if (!(await deps.queries.removeIndex(path))) throw new IndexNotFound(path);
    return reply.code(204).send();
  });
}
