import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ArgumentInvalid } from '../../core/errors/index.js';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, type FleetQueries } from '../../core/query/service.js';

// Queries read twins: ServiceConnect (IoT Hub) or RegistryRead.
const READ = { rights: ['ServiceConnect', 'RegistryRead'] } as const;

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** `x-ms-max-item-count`: 1 to 10,000; absent means IoT Hub's default page. */
export function pageSizeOf(req: FastifyRequest): number {
  const text = header(req, 'x-ms-max-item-count');
  if (text === undefined || text === '') return DEFAULT_PAGE_SIZE;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > MAX_PAGE_SIZE) {
    throw new ArgumentInvalid(`x-ms-max-item-count must be an integer from 1 to ${MAX_PAGE_SIZE}, got '${text}'`);
  }
  return n;
}

export function continuationOf(req: FastifyRequest): string | undefined {
  const token = header(req, 'x-ms-continuation');
  return token === undefined || token === '' ? undefined : token;
}

/** Sends a page the way the SDK's Query reads it: the continuation header only while more pages follow. */
export function sendPage(reply: FastifyReply, items: readonly unknown[], itemType: string, continuation: string | undefined): FastifyReply {
  reply.header('x-ms-item-type', itemType);
  if (continuation !== undefined) reply.header('x-ms-continuation', continuation);
  return reply.send(items);
}

/** IoT Hub's `POST /devices/query`: body `{"query": "SELECT …"}`, paged by x-ms-max-item-count and x-ms-continuation. */
export function registerQueryRoutes(app: FastifyInstance, deps: { queries: FleetQueries }): void {
  app.post('/devices/query', { config: READ }, async (req, reply) => {
    const body = req.body as { query?: unknown } | undefined;
    if (typeof body !== 'object' || body === null || typeof body.query !== 'string') {
      throw new ArgumentInvalid('the body must be {"query": "SELECT … FROM devices …"}');
    }
    const page = await deps.queries.run(body.query, { pageSize: pageSizeOf(req), continuation: continuationOf(req) });
    return sendPage(reply, page.items, page.itemType, page.continuation);
  });
}
