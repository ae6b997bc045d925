import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TLSSocket } from 'node:tls';
import type { DeviceAuth, DevicePrincipal } from '../../core/devices/index.js';
import { ArgumentInvalid } from '../../core/errors/index.js';
import type { Presence } from '../../core/presence/index.js';
import type { D2cMessage, Telemetry } from '../../core/telemetry/index.js';
import { peerCertificateChain } from '../tls/peer-chain.js';

// The device HTTPS API's headers for system properties (dev-http http.js; azure-compat §6).
const SYSTEM_HEADERS: Record<string, string> = {
  'iothub-messageid': 'message-id', 'iothub-correlationid': 'correlation-id', 'iothub-userid': 'user-id',
  'iothub-to': 'to', 'iothub-expiry': 'absolute-expiry-time', 'iothub-contenttype': 'content-type',
  'iothub-contentencoding': 'content-encoding', 'iothub-interface-id': 'interface-id',
};
const APP_PREFIX = 'iothub-app-';
const BATCH_TYPE = 'application/vnd.microsoft.iothub.json';

/** Properties of one message from `iothub-*` names (headers of a single event, or a batch item's properties). */
function propertiesOf(entries: Iterable<[string, unknown]>): Pick<D2cMessage, 'systemProperties' | 'appProperties'> {
  const systemProperties: Record<string, string> = {};
  const appProperties: Record<string, string> = {};
  for (const [rawKey, value] of entries) {
    if (typeof value !== 'string') continue;
    const key = rawKey.toLowerCase();
    if (SYSTEM_HEADERS[key]) systemProperties[SYSTEM_HEADERS[key]] = value;
    else if (key.startsWith(APP_PREFIX)) appProperties[rawKey.slice(APP_PREFIX.length)] = value;
    else if (key === 'dt-subject') appProperties['dt-subject'] = value;
  }
  // 'to' is the hub's own path for this API; it carries nothing the device chose.
  delete systemProperties.to;
  return { systemProperties, appProperties };
}

/** The batch body: `[{"body":"<base64>","properties":{"iothub-app-k":"v"}}, …]`. */
function parseBatch(body: Buffer): D2cMessage[] {
  let items: unknown;
  try { items = JSON.parse(body.toString('utf8')); } catch { throw new ArgumentInvalid('the event batch is not valid JSON'); }
  if (!Array.isArray(items) || items.length === 0) throw new ArgumentInvalid('the event batch must be a non-empty JSON array');
  return items.map((item, i) => {
    if (typeof item !== 'object' || item === null || typeof (item as { body?: unknown }).body !== 'string') {
      throw new ArgumentInvalid(`event ${i} of the batch needs a base64 "body"`);
    }
    const { body: b64, properties } = item as { body: string; properties?: Record<string, unknown> };
    return { body: Buffer.from(b64, 'base64'), ...propertiesOf(Object.entries(properties ?? {})) };
  });
}

/** The client certificate chain of the TLS connection (leaf first), if the device sent one. */
export function peerCertificates(req: FastifyRequest): Buffer[] | undefined {
  return peerCertificateChain(req.socket as Partial<TLSSocket>);
}

/** A device's SAS token from `Authorization`, or its client certificate when there is none. */
export async function authenticateHttpDevice(auth: DeviceAuth, req: FastifyRequest): Promise<DevicePrincipal> {
  const p = req.params as { deviceId: string; moduleId?: string };
  const key = { deviceId: p.deviceId, moduleId: p.moduleId ?? '' };
  const header = req.headers.authorization;
  return header ? auth.authenticateSas(key, header) : auth.authenticateCertificate(key, peerCertificates(req));
}

/** Device HTTPS telemetry: one event (raw body, properties as headers) or a batch; 204 once stored. */
export function registerDeviceTelemetryRoutes(app: FastifyInstance, deps: { auth: DeviceAuth; telemetry: Telemetry; presence: Presence }): void {
  const send = async (req: FastifyRequest, reply: { code(n: number): { send(): unknown } }) => {
    const principal = await authenticateHttpDevice(deps.auth, req);
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const batch = String(req.headers['content-type'] ?? '').toLowerCase().startsWith(BATCH_TYPE);
    const messages = batch ? parseBatch(body) : [{ body, ...propertiesOf(Object.entries(req.headers)) }];
    await deps.telemetry.accept(principal, messages);
    deps.presence.activity(principal);
    return reply.code(204).send();
  };
  app.post('/devices/:deviceId/messages/events', { config: { rawBody: true } }, send);
  app.post('/devices/:deviceId/modules/:moduleId/messages/events', { config: { rawBody: true } }, send);
}
