import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Pipeline, PipelineSettings, Routing } from '../../core/pipeline/index.js';
import { HIDDEN_SECRET, settingView } from '../../core/pipeline/index.js';
import type { PipelineSettingKind, SettingRecord } from '../../ports/store/pipeline.js';
import type { JsonObject } from '../../ports/store/index.js';


/** A URL with its password (if any) hidden. */
function redactUrlPassword(text: unknown): unknown {
  if (typeof text !== 'string') return text;
  try {
    const u = new URL(text);
    if (!u.password) return text;
    u.password = HIDDEN_SECRET;
    return u.toString();
  } catch {
    return text;
  }
}

/**
 * An endpoint as readers see it: the webhook secret, header values (Authorization, say) and URL passwords are
 * never shown, not even to the policy that wrote them; a PUT must send them again.
 */
function redactEndpoint(r: SettingRecord): JsonObject {
  const v = settingView(r);
  if (typeof v.secret === 'string') v.secret = HIDDEN_SECRET;
  if (v.headers && typeof v.headers === 'object' && !Array.isArray(v.headers)) {
    v.headers = Object.fromEntries(Object.keys(v.headers).map((k) => [k, HIDDEN_SECRET]));
  }
  v.url = redactUrlPassword(v.url) as JsonObject['url'];
  return v;
}
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
  const crud = (path: string, kind: PipelineSettingKind, put?: (name: string, body: unknown, req: FastifyRequest) => Promise<SettingRecord>,
    remove?: (name: string) => Promise<void>, view: (r: SettingRecord) => JsonObject = settingView) => {
    app.get(`${base}/${path}`, { config: READ }, async () => (await deps.settings.list(kind)).map(view));
    app.get(`${base}/${path}/:name`, { config: READ }, async (req, reply) => {
      const r = await deps.settings.get(kind, nameOf(req));
      return reply.header('etag', `"${r.rev}"`).send(view(r));
    });
    app.put(`${base}/${path}/:name`, { config: WRITE }, async (req, reply) => {
      const name = nameOf(req);
      const existed = await deps.settings.find(kind, name);
      const r = put ? await put(name, req.body, req) : await deps.settings.put(kind, name, req.body, { mode: putMode(req), ifMatch: ifMatchOf(req) });
      return reply.code(existed ? 200 : 201).header('etag', `"${r.rev}"`).send(view(r));
    });
    app.delete(`${base}/${path}/:name`, { config: WRITE }, async (req, reply) => {
      if (remove) await remove(nameOf(req)); else await deps.settings.remove(kind, nameOf(req));
      return reply.code(204).send();
    });
  };
  crud('endpoints', 'endpoint', undefined, undefined, redactEndpoint);
  crud('routes', 'route',
    (name, body, req) => deps.routing.putRoute(name, body, { mode: putMode(req), ifMatch: ifMatchOf(req) }),
    (name) => deps.routing.removeRoute(name));
  crud('enrichments', 'enrichment');
  app.post(`${base}/test`, { config: READ }, async (req) => deps.routing.test(req.body));
  app.get(`${base}/health`, { config: READ }, async () => deps.pipeline.health());
}
