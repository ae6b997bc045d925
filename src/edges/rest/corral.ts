import type { FastifyInstance } from 'fastify';
import { Readable } from 'node:stream';
import { createInterface } from 'node:readline';
import type { ServiceAccess } from '../../core/access/index.js';
import { ArgumentInvalid } from '../../core/errors/index.js';
import type { RegistryTransfer } from '../../core/identity/index.js';

/** Corral's own routes live under this prefix, apart from IoT Hub's surface. */
export const CORRAL_PREFIX = '/corral/v1';

const ALL_RIGHTS = ['RegistryRead', 'RegistryWrite', 'ServiceConnect', 'DeviceConnect'] as const;

/** Registry import/export as JSON Lines, and the policy list. */
export function registerCorralRoutes(app: FastifyInstance, deps: { transfer: RegistryTransfer; access: ServiceAccess; hostName: string }): void {
  const { transfer, access } = deps;

  // Body: JSON Lines (application/x-ndjson). All lines apply, or none; the report names each bad line.
  app.post(`${CORRAL_PREFIX}/registry/import`, { config: { rights: ['RegistryWrite'], streamBody: true } }, async (req, reply) => {
    if (!(req.body instanceof Readable)) throw new ArgumentInvalid('send the registry as JSON Lines with Content-Type application/x-ndjson');
    const lines = createInterface({ input: req.body, crlfDelay: Infinity });
    const report = await transfer.import(lines);
    return reply.code(report.ok ? 200 : 400).send(report);
  });

  // Streams every device and module with its twin; keys only when asked and the caller may write the registry.
  app.get(`${CORRAL_PREFIX}/registry/export`, { config: { rights: ['RegistryRead', 'RegistryWrite'] } }, async (req, reply) => {
    const q = req.query as Record<string, string | undefined>;
    const withKeys = q.keys === 'true';
    if (withKeys) access.require(req.principal!, 'RegistryWrite'); // principal: set by the auth hook for every route with rights
    const lines = transfer.export(withKeys);
    const body = Readable.from((async function* () { for await (const line of lines) yield line + '\n'; })());
    return reply.type('application/x-ndjson').send(body);
  });

  // Names and rights for any registry reader; keys only for a policy that holds every right (iothubowner).
  app.get(`${CORRAL_PREFIX}/policies`, { config: { rights: ['RegistryRead', 'ServiceConnect'] } }, async (req) => {
    const p = req.principal!; // set by the auth hook
    const owner = ALL_RIGHTS.every((r) => p.rights.has(r));
    return access.policies().map((pol) => ({
      keyName: pol.name,
      rights: pol.rights.join(', '),
      primaryKey: owner ? pol.primaryKey : undefined,
      secondaryKey: owner ? pol.secondaryKey : undefined,
    }));
  });
}
