import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import type { Right, ServiceAccess, ServicePrincipal } from '../../core/access/index.js';
import { ArgumentInvalid, RouteNotFound, Throttled } from '../../core/errors/index.js';
import type { Logger } from '../../observability/logger.js';
import { DEVICE_TLS_OPTIONS } from '../tls/peer-chain.js';
import { toWireError } from './wire-errors.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The rights of which the caller's policy needs one; every service route states them. */
    rights?: readonly Right[];
    /** The body is a message payload: handed over as a Buffer whatever its Content-Type. */
    rawBody?: boolean;
    /** The body is JSON Lines, handed over as a stream (registry import). */
    streamBody?: boolean;
  }
  interface FastifyRequest {
    principal?: ServicePrincipal;
  }
}

export interface RestServerOptions {
  readonly tls: { cert: string; key: string };
  readonly access: ServiceAccess;
  readonly logger: Logger;
  readonly maxBodyBytes: number;
  readonly requestsPerSecond: number;
}

/** Content types a `streamBody` route reads as a stream (registry import). */
export const STREAM_TYPES = ['application/x-ndjson', 'application/jsonl', 'application/x-jsonlines'];

/** A per-policy token bucket; 0 = unlimited. */
function makeThrottle(perSecond: number): (policy: string) => void {
  if (perSecond <= 0) return () => {};
  const buckets = new Map<string, { tokens: number; at: number }>();
  return (policy) => {
    const now = Date.now();
    const b = buckets.get(policy) ?? { tokens: perSecond, at: now };
    b.tokens = Math.min(perSecond, b.tokens + ((now - b.at) / 1000) * perSecond);
    b.at = now;
    buckets.set(policy, b);
    if (b.tokens < 1) throw new Throttled(perSecond);
    b.tokens -= 1;
  };
}

/**
 * The HTTPS server of the service API: IoT Hub's routing rules (case-insensitive paths, trailing slash ignored,
 * percent-decoded segments), a SAS check on every request, rights per route, and IoT Hub's error bodies.
 */
export function createRestServer(opts: RestServerOptions): FastifyInstance {
  const app = Fastify({
    https: { cert: opts.tls.cert, key: opts.tls.key, ...DEVICE_TLS_OPTIONS },
    routerOptions: { caseSensitive: false, ignoreTrailingSlash: true, ignoreDuplicateSlashes: true, maxParamLength: 2048 },
    bodyLimit: opts.maxBodyBytes,
    loggerInstance: opts.logger.child({ edge: 'rest' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    genReqId: (req) => (typeof req.headers['request-id'] === 'string' ? req.headers['request-id'].slice(0, 64) : crypto.randomUUID()),
  });
  const throttle = makeThrottle(opts.requestsPerSecond);

  // Every body is read whole (within bodyLimit) and then given to the route as it wants it: a Buffer for message
  // payloads (`rawBody`), JSON otherwise — also without a Content-Type, as some clients send.
  const parse = (req: FastifyRequest, body: Buffer, done: (err: Error | null, body?: unknown) => void) => {
    if (req.routeOptions.config.rawBody) { done(null, body); return; }
    const text = body.toString('utf8');
    if (text.trim() === '') { done(null, undefined); return; }
    try { done(null, JSON.parse(text)); } catch (err) { done(new ArgumentInvalid(`the request body is not valid JSON: ${(err as Error).message}`)); }
  };
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(STREAM_TYPES, (req: FastifyRequest, payload: Readable, done: (err: Error | null, body?: unknown) => void) => {
    if (req.routeOptions.config.streamBody) { done(null, payload); return; }
    done(new ArgumentInvalid(`this route does not read ${String(req.headers['content-type'])}; send application/json`));
  });
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (req, body, done) => parse(req, body as Buffer, done));

  app.addHook('onRequest', async (req) => {
    const rights = req.routeOptions.config.rights;
    if (!rights) return;
    const auth = req.headers.authorization;
    const principal = opts.access.authenticate(Array.isArray(auth) ? auth[0] : auth);
    opts.access.require(principal, ...rights);
    throttle(principal.policy);
    req.principal = principal;
  });

  app.setNotFoundHandler((req, reply) => {
    sendError(reply, req, new RouteNotFound(req.method, req.url.split('?')[0]));
  });
  app.setErrorHandler((err, req, reply) => sendError(reply, req, err));
  // The routes are the same over https; FastifyInstance's default generics name the http server type.
  return app as unknown as FastifyInstance;
}

function sendError(reply: FastifyReply, req: FastifyRequest, err: unknown): void {
  const w = toWireError(err);
  if (w.unexpected) req.log.error({ err, trackingId: w.trackingId, url: req.url.split('?')[0] }, 'request failed');
  else req.log.debug({ status: w.status, code: w.headers['iothub-errorcode'] }, 'request refused');
  void reply.code(w.status).headers(w.headers).type('application/json; charset=utf-8').send(w.body);
}

/** The If-Match header as core wants it: unquoted, `W/` dropped; undefined when absent. */
export function ifMatchOf(req: FastifyRequest): string | undefined {
  const h = req.headers['if-match'];
  if (h === undefined) return undefined;
  const v = (Array.isArray(h) ? h[0] : h).trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
  return v === '' ? undefined : v;
}
