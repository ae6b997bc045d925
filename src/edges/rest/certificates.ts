import type { FastifyInstance } from 'fastify';
import type { CaCertificate, CaCertificates } from '../../core/certificates/index.js';
import { ArgumentInvalid } from '../../core/errors/index.js';
import { CORRAL_PREFIX } from './corral.js';
import { ifMatchOf } from './server.js';

type NameParams = { name: string };

const READ = { rights: ['RegistryRead', 'RegistryWrite'] } as const;
const WRITE = { rights: ['RegistryWrite'] } as const;
const BASE = `${CORRAL_PREFIX}/certificates`;

/** Azure's ARM certificate shape (`{name, etag, type, properties}`); times in RFC 1123 as ARM writes them. */
function certificateView(c: CaCertificate): Record<string, unknown> {
  return {
    name: c.name,
    etag: c.etag,
    type: 'Microsoft.Devices/IotHubs/Certificates',
    properties: {
      subject: c.subject,
      expiry: new Date(c.expiryMs).toUTCString(),
      thumbprint: c.thumbprint,
      isVerified: c.isVerified,
      created: new Date(c.createdMs).toUTCString(),
      updated: new Date(c.updatedMs).toUTCString(),
      certificate: c.pem,
      ...(c.verificationCode !== null ? { verificationCode: c.verificationCode } : {}),
    },
  };
}

/** The `certificate` of `{"certificate": …}` or of ARM's `{"properties": {"certificate": …}}`. */
function certificateOf(body: unknown): unknown {
  if (typeof body !== 'object' || body === null) throw new ArgumentInvalid('the body must be JSON {"certificate": "<PEM or base64 DER>"}');
  const b = body as { certificate?: unknown; properties?: { certificate?: unknown } };
  const text = b.certificate ?? (typeof b.properties === 'object' && b.properties !== null ? b.properties.certificate : undefined);
  if (text === undefined) throw new ArgumentInvalid('the body has no "certificate"');
  return text;
}

/**
 * Corral's CA certificate routes, shaped like Azure's ARM certificate API: register (PUT; If-Match to replace),
 * read, list, delete (If-Match), and proof of possession (generateVerificationCode, then verify). Registry rights:
 * RegistryWrite for changes, RegistryRead (or RegistryWrite) to read.
 */
export function registerCertificateRoutes(app: FastifyInstance, deps: { certificates: CaCertificates }): void {
  const { certificates } = deps;
  app.put<{ Params: NameParams }>(`${BASE}/:name`, { config: WRITE }, async (req) =>
    certificateView(await certificates.register(req.params.name, certificateOf(req.body), ifMatchOf(req))));
  app.get(BASE, { config: READ }, async () => ({ value: (await certificates.list()).map(certificateView) }));
  app.get<{ Params: NameParams }>(`${BASE}/:name`, { config: READ }, async (req) => certificateView(await certificates.get(req.params.name)));
  app.delete<{ Params: NameParams }>(`${BASE}/:name`, { config: WRITE }, async (req, reply) => {
    await certificates.delete(req.params.name, ifMatchOf(req) ?? '*');
    return reply.code(204).send();
  });
  app.post<{ Params: NameParams }>(`${BASE}/:name/generateVerificationCode`, { config: WRITE }, async (req) =>
    certificateView(await certificates.generateVerificationCode(req.params.name, ifMatchOf(req) ?? '*')));
  app.post<{ Params: NameParams }>(`${BASE}/:name/verify`, { config: WRITE }, async (req) =>
    certificateView(await certificates.verify(req.params.name, certificateOf(req.body), ifMatchOf(req) ?? '*')));
}
