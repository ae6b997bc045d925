import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ArgumentInvalid } from '../../core/errors/index.js';
import { settingView, type PipelineSettings } from '../../core/pipeline/index.js';
import { ALERT_STATUSES, alertView, type Alerts } from '../../core/pipeline/alerts.js';
import type { Wellness } from '../../core/pipeline/wellness.js';
import type { AlertStatus, PipelineSettingKind } from '../../ports/store/pipeline.js';
import { CORRAL_PREFIX } from './corral.js';
import { continuationOf } from './query.js';
import { ifMatchOf } from './server.js';

// Rules and health profiles are the hub's configuration: changing them takes RegistryWrite. Alerts are read with
// RegistryRead or ServiceConnect; acknowledging or clearing one is a service operation, ServiceConnect.
const CONFIGURE = { rights: ['RegistryWrite'] } as const;
const READ_CONFIG = { rights: ['RegistryRead', 'ServiceConnect', 'RegistryWrite'] } as const;
const READ = { rights: ['RegistryRead', 'ServiceConnect'] } as const;
const OPERATE = { rights: ['ServiceConnect'] } as const;

function param(req: FastifyRequest, name: string): string {
  return (req.params as Record<string, string>)[name];
}

function statusOf(value: string | undefined): AlertStatus | undefined {
  if (value === undefined || value === '') return undefined;
  const found = ALERT_STATUSES.find((s) => s === value.toLowerCase());
  if (!found) throw new ArgumentInvalid(`status must be one of ${ALERT_STATUSES.join(', ')}, got '${value}'`);
  return found;
}

function booleanOf(name: string, value: string | undefined): boolean | undefined {
  if (value === undefined || value === '') return undefined;
  if (value === 'true' || value === 'false') return value === 'true';
  throw new ArgumentInvalid(`${name} must be true or false, got '${value}'`);
}

function limitOf(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = Number(value);
  if (!Number.isInteger(n)) throw new ArgumentInvalid(`limit must be an integer, got '${value}'`);
  return n;
}

/**
 * GET list, GET/PUT/DELETE one, for a kind of setting under `path`. PUT creates (201) or replaces (200; only that
 * revision with If-Match); `?create=true` refuses to replace (409999).
 */
function registerSettingRoutes(app: FastifyInstance, settings: PipelineSettings, path: string, kind: PipelineSettingKind): void {
  app.get(path, { config: READ_CONFIG }, async () => (await settings.list(kind)).map(settingView));
  app.get(`${path}/:name`, { config: READ_CONFIG }, async (req, reply) => {
    const r = await settings.get(kind, param(req, 'name'));
    return reply.header('etag', `"${r.rev}"`).send(settingView(r));
  });
  app.put(`${path}/:name`, { config: CONFIGURE }, async (req, reply) => {
    const name = param(req, 'name');
    const existed = await settings.find(kind, name);
    const create = (req.query as Record<string, string | undefined>).create === 'true';
    const r = await settings.put(kind, name, req.body, { mode: create ? 'create' : 'upsert', ifMatch: ifMatchOf(req) });
    return reply.code(existed ? 200 : 201).header('etag', `"${r.rev}"`).send(settingView(r));
  });
  app.delete(`${path}/:name`, { config: CONFIGURE }, async (req, reply) => {
    await settings.remove(kind, param(req, 'name'));
    return reply.code(204).send();
  });
}

/**
 * Rules (`/corral/v1/rules`), health profiles (`/corral/v1/health-profiles`), alerts (`/corral/v1/alerts`: listed
 * newest first, paged by `limit` and `continuation` — query or x-ms-continuation — with the next token in
 * x-ms-continuation; acknowledge and clear), and fleet health (`/corral/v1/health`).
 */
export function registerAlertRoutes(app: FastifyInstance, deps: { settings: PipelineSettings; alerts: Alerts; wellness: Wellness }): void {
  const { settings, alerts, wellness } = deps;
  registerSettingRoutes(app, settings, `${CORRAL_PREFIX}/rules`, 'rule');
  registerSettingRoutes(app, settings, `${CORRAL_PREFIX}/health-profiles`, 'healthProfile');

  app.get(`${CORRAL_PREFIX}/alerts`, { config: READ }, async (req, reply) => {
    const q = req.query as Record<string, string | undefined>;
    const continuation = q.continuation || continuationOf(req);
    const page = await alerts.list({
      status: statusOf(q.status), open: booleanOf('open', q.open), limit: limitOf(q.limit),
      ...(q.rule ? { ruleName: q.rule } : {}), ...(q.deviceId ? { deviceId: q.deviceId } : {}), ...(continuation ? { continuation } : {}),
    });
    if (page.continuation) reply.header('x-ms-continuation', page.continuation);
    return reply.send(page.items.map(alertView));
  });
  app.get(`${CORRAL_PREFIX}/alerts/:id`, { config: READ }, async (req) => alertView(await alerts.get(param(req, 'id'))));
  // principal: set by the auth hook for every route with rights; its policy name is who acted.
  app.post(`${CORRAL_PREFIX}/alerts/:id/acknowledge`, { config: OPERATE }, async (req) => alertView(await alerts.acknowledge(param(req, 'id'), req.principal!.policy)));
  app.post(`${CORRAL_PREFIX}/alerts/:id/clear`, { config: OPERATE }, async (req) => alertView(await alerts.clearById(param(req, 'id'), req.principal!.policy)));

  app.get(`${CORRAL_PREFIX}/health`, { config: READ }, async () => {
    const [devices, open] = await Promise.all([wellness.counts(), alerts.counts()]);
    return { devices, alerts: open };
  });
}
