import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TLSSocket } from 'node:tls';
import type { CloudToDevice, DeviceBoundMessage, OutgoingMessage } from '../../core/c2d/index.js';
import type { DeviceAuth } from '../../core/devices/index.js';
import type { IdentityKey } from '../../ports/store/index.js';
import { peerCertificateChain } from '../tls/peer-chain.js';

/** Sending, purging and reading feedback need ServiceConnect, as in IoT Hub. */
const SERVICE = { rights: ['ServiceConnect'] } as const;
const APP_PREFIX = 'iothub-app-';
/** An HTTP header name (RFC 9110 token). */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** What a header value may hold as it is; anything else is percent-encoded on the way out. */
const PLAIN_VALUE = /^[\x20-\x7e]*$/;

/**
 * Checks the device credentials of a device-side request for `deviceId`/`moduleId` (a device SAS token, or the
 * client certificate when there is no Authorization header); throws a CorralError (401003) when they do not hold.
 */
export type AuthenticateDevice = (
  authorizationHeader: string | undefined, deviceId: string, moduleId: string, clientCertificates?: readonly Buffer[],
) => Promise<void>;

/** Device routes' authentication by DeviceAuth: the SAS token when there is one, else the client certificate. */
export function authenticateWith(auth: DeviceAuth): AuthenticateDevice {
  return async (authorizationHeader, deviceId, moduleId, clientCertificates) => {
    const key = { deviceId, moduleId };
    if (authorizationHeader) await auth.authenticateSas(key, authorizationHeader);
    else await auth.authenticateCertificate(key, clientCertificates);
  };
}

function keyOf(req: FastifyRequest): IdentityKey {
  const p = req.params as { deviceId: string; moduleId?: string };
  return { deviceId: p.deviceId, moduleId: p.moduleId ?? '' };
}

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The message a service POSTs: the body as sent, IoT Hub's `iothub-*` headers as its properties. */
function outgoingOf(req: FastifyRequest): OutgoingMessage {
  const properties: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (name.startsWith(APP_PREFIX) && name.length > APP_PREFIX.length && value !== undefined) {
      properties[name.slice(APP_PREFIX.length)] = Array.isArray(value) ? value.join(', ') : value;
    }
  }
  return {
    body: Buffer.isBuffer(req.body) ? req.body : new Uint8Array(0),
    messageId: header(req, 'iothub-messageid'),
    correlationId: header(req, 'iothub-correlationid'),
    userId: header(req, 'iothub-userid'),
    ack: header(req, 'iothub-ack'),
    expiryTimeUtc: header(req, 'iothub-expiry'),
    contentType: header(req, 'iothub-contenttype'),
    contentEncoding: header(req, 'iothub-contentencoding'),
    properties,
  };
}

function headerSafe(value: string): string {
  return PLAIN_VALUE.test(value) ? value : encodeURIComponent(value);
}

/** azure-compat §3: quoted ETag = lock token, `iothub-*` system headers, each property as `iothub-app-{k}`. */
function deviceBoundHeaders(m: DeviceBoundMessage): Record<string, string> {
  const h: Record<string, string> = {
    etag: `"${m.lockToken}"`,
    'iothub-messageid': m.messageId,
    'iothub-to': m.to,
    'iothub-expiry': m.expiryTimeUtc,
    'iothub-enqueuedtime': m.enqueuedTimeUtc,
    'iothub-deliverycount': String(m.deliveryCount),
  };
  if (m.correlationId !== null) h['iothub-correlationid'] = headerSafe(m.correlationId);
  if (m.userId !== null) h['iothub-userid'] = headerSafe(m.userId);
  if (m.contentType !== null) h['iothub-contenttype'] = headerSafe(m.contentType);
  if (m.contentEncoding !== null) h['iothub-contentencoding'] = headerSafe(m.contentEncoding);
  for (const [k, v] of Object.entries(m.properties)) {
    const name = TOKEN.test(k) ? k : encodeURIComponent(k).replace(/[^!#$%&'*+.^_`|~0-9A-Za-z-]/g, '_');
    h[`${APP_PREFIX}${name}`.toLowerCase()] = headerSafe(v);
  }
  return h;
}

/**
 * Registers `routes` in a plugin of their own whose only body parser reads any content type as bytes: a C2D body is
 * opaque, and the server's JSON parsing must not touch it.
 */
function withRawBodies(app: FastifyInstance, routes: (scope: FastifyInstance) => void): void {
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
    routes(scope);
  });
}

async function noContent(reply: FastifyReply): Promise<FastifyReply> {
  return reply.code(204).send();
}

/** IoT Hub's service routes for C2D: send, purge, and the feedback queue. */
export function registerC2dRoutes(app: FastifyInstance, deps: { c2d: CloudToDevice }): void {
  const { c2d } = deps;
  withRawBodies(app, (scope) => {
    for (const base of ['/devices/:deviceId', '/devices/:deviceId/modules/:moduleId']) {
      // Body = the payload, any content type; 200 with the message id (generated when not given).
      scope.post(`${base}/messages/deviceBound`, { config: SERVICE }, async (req) => c2d.send(keyOf(req), outgoingOf(req)));
      scope.delete(`${base}/commands`, { config: SERVICE }, async (req) => {
        const key = keyOf(req);
        const { totalMessagesPurged } = await c2d.purge(key);
        return { totalMessagesPurged, deviceId: key.deviceId, ...(key.moduleId ? { moduleId: key.moduleId } : {}) };
      });
    }
    scope.get('/messages/serviceBound/feedback', { config: SERVICE }, async (_req, reply) => {
      const batch = await c2d.receiveFeedback();
      if (!batch) return noContent(reply);
      return reply.header('etag', `"${batch.lockToken}"`).type('application/json; charset=utf-8').send(batch.records);
    });
    scope.delete<{ Params: { lockToken: string } }>('/messages/serviceBound/feedback/:lockToken', { config: SERVICE }, async (req, reply) => {
      await c2d.completeFeedback(req.params.lockToken);
      return noContent(reply);
    });
    scope.post<{ Params: { lockToken: string } }>('/messages/serviceBound/feedback/:lockToken/abandon', { config: SERVICE }, async (req, reply) => {
      await c2d.abandonFeedback(req.params.lockToken);
      return noContent(reply);
    });
  });
}

/**
 * The device HTTPS API for C2D (azure-compat §3): receive, complete (`?reject` rejects), abandon. These routes carry
 * no `rights`, so the service SAS hook passes them by; each authenticates the device itself.
 */
export function registerDeviceC2dRoutes(app: FastifyInstance, deps: { c2d: CloudToDevice; authenticateDevice: AuthenticateDevice }): void {
  const { c2d, authenticateDevice } = deps;
  const authenticated = async (req: FastifyRequest): Promise<IdentityKey> => {
    const key = keyOf(req);
    const certificates = peerCertificateChain(req.raw.socket as Partial<TLSSocket>);
    await authenticateDevice(header(req, 'authorization'), key.deviceId, key.moduleId, certificates);
    return key;
  };
  withRawBodies(app, (scope) => {
    scope.get('/devices/:deviceId/messages/deviceBound', async (req, reply) => {
      const m = await c2d.receive(await authenticated(req));
      if (!m) return noContent(reply);
      return reply.headers(deviceBoundHeaders(m)).type('application/octet-stream').send(Buffer.from(m.body));
    });
    scope.delete<{ Params: { lockToken: string } }>('/devices/:deviceId/messages/deviceBound/:lockToken', async (req, reply) => {
      const key = await authenticated(req);
      const query = req.query as Record<string, unknown>;
      if ('reject' in query) await c2d.reject(key, req.params.lockToken);
      else await c2d.complete(key, req.params.lockToken);
      return noContent(reply);
    });
    scope.post<{ Params: { lockToken: string } }>('/devices/:deviceId/messages/deviceBound/:lockToken/abandon', async (req, reply) => {
      await c2d.abandon(await authenticated(req), req.params.lockToken);
      return noContent(reply);
    });
  });
}
