import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Pipeline, PipelineSettings, Routing } from '../../core/pipeline/index.js';
import { settingView } from '../../core/pipeline/index.js';
import type { PipelineSettingKind } from '../../ports/store/pipeline.js';
import { CORRAL_PREFIX } from './corral.js';
import { ifMatchOf } from './server.js';

// Routing is the hub's configuration: changing it takes RegistryWrite; reading it, RegistryRead or ServiceConnect.
const WRITE = { rights: ['RegistryWrite'] } as const;
const READ = { rights: ['RegistryRead', 'ServiceConnect', 'RegistryWrite'] } as const;

function nameOf(req: FastifyRequest): string {
  return (req.params as { name: string }).name;
}

/** PUT creates (201) or, with If-Match or on an existing name, replaces (200); `?create=true` refuses to replace. */
function putMode(req: FastifyRequest): 'create' | 'upsert' {
  return (req.query as Record<string, string | undefined>).create === 'true' ? 'create' : 'upsert';
}

/**
 * Message routing under `/corral/v1/routing`: endpoints, routes (IoT Hub's RouteProperties; `$fallback` is the
 * fallback route), enrichments, `POST test` (a route against a sample message), and `GET health`.
 */
export function registerRoutingRoutes(app: FastifyInstance, deps: { settings: PipelineSettings; routing: Routing; pipeline: Pipeline }): void {
  const base = `${CORRAL_PREFIX}/routing`;
  const crud = (path: string, kind: PipelineSettingKind, put?: (name: string, body: unknown, req: FastifyRequest) => Promise<import('../../ports/store/pipeline.js').SettingRecord>, remove?: (name: string) => Promise<void>) => {
    app.get(`${base}/${path}`, { config: READ }, async () => (await deps.settings.list(kind)).map(settingView));
    app.get(`${base}/${path}/:name`, { config: READ }, async (req, reply) => {
      const r = await deps.settings.get(kind, nameOf(req));
      return reply.header('etag', `"${r.rev}"`).send(settingView(r));
    });
    app.put(`${base}/${path}/:name`, { config: WRITE }, async (req, reply) => {
      const name = nameOf(req);
      const existed = await deps.settings.find(kind, name);
      const r = put ? await put(name, req.body, req) : await deps.settings.put(kind, name, req.body, { mode: putMode(req), ifMatch: ifMatchOf(req) });
      return reply.code(existed ? 200 : 201).header('etag', `"${r.rev}"`).send(settingView(r));
    });
    app.delete(`${base}/${path}/:name`, { config: WRITE }, async (req, reply) => {
      if (remove) await remove(nameOf(req)); else await deps.settings.remove(kind, nameOf(req));
      return reply.code(204).send();
    });
  };
  crud('endpoints', 'endpoint');
  crud('routes', 'route',
    (name, body, req) => deps.routing.putRoute(name, body, { mode: putMode(req), ifMatch: ifMatchOf(req) }),
    (name) => deps.routing.removeRoute(name));
  crud('enrichments', 'enrichment');
  app.post(`${base}/test`, { config: READ }, async (req) => deps.routing.test(req.body));
  app.get(`${base}/health`, { config: READ }, async () => deps.pipeline.health());
}
