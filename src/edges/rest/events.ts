import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ArgumentInvalid } from '../../core/errors/index.js';
import {
  decodePositions, encodePositions, MAX_READ, parsePositions, parseSources, parseStartText, settingView,
  type ConsumerGroups, type PipelineSettings, type Positions, type ReadResult,
} from '../../core/pipeline/index.js';
import type { AppendSignal } from '../../core/pipeline/index.js';
import { CORRAL_PREFIX } from './corral.js';

// Reading events is what IoT Hub's `service` policy does on its Event Hub-compatible endpoint: ServiceConnect.
const READ = { rights: ['ServiceConnect'] } as const;
// Creating and removing groups changes the hub's configuration.
const MANAGE = { rights: ['ServiceConnect', 'RegistryWrite'] } as const;

type Query = Record<string, string | undefined>;

function limitOf(q: Query, fallback: number): number {
  if (q.limit === undefined) return fallback;
  const n = Number(q.limit);
  if (!Number.isInteger(n) || n < 1 || n > MAX_READ) throw new ArgumentInvalid(`limit must be an integer from 1 to ${MAX_READ}, got '${q.limit}'`);
  return n;
}

function waitMsOf(q: Query): number {
  if (q.waitMs === undefined) return 0;
  const n = Number(q.waitMs);
  if (!Number.isInteger(n) || n < 0 || n > 60_000) throw new ArgumentInvalid(`waitMs must be an integer from 0 to 60000, got '${q.waitMs}'`);
  return n;
}

function sourcesOf(q: Query): string[] | undefined {
  return q.source === undefined ? undefined : parseSources(q.source.split(','));
}

function viewOf(q: Query): 'all' | 'events' {
  if (q.view === undefined || q.view === 'all') return 'all';
  if (q.view === 'events') return 'events';
  throw new ArgumentInvalid(`view must be all or events, got '${q.view}'`);
}

function page(result: ReadResult): { events: unknown[]; positions: Positions; next: string } {
  return { events: result.events, positions: result.positions, next: encodePositions(result.positions) };
}

/**
 * Reads that wait up to `waitMs` for a first record: a long poll, woken by this node's appends (and by a poll of the
 * other partitions every 250 ms).
 */
async function longPoll(read: () => Promise<ReadResult>, waitMs: number, signal: AppendSignal): Promise<ReadResult> {
  const until = Date.now() + waitMs;
  for (;;) {
    const r = await read();
    const left = until - Date.now();
    if (r.events.length > 0 || left <= 0) return r;
    await signal.wait(Math.min(250, left));
  }
}

/**
 * Server-Sent Events: `event: events` frames of up to `limit` records, each with `id:` the position token, from
 * `positions` on. A client that reads slowly only slows its own stream: the next read waits for the socket to drain.
 * With `checkpoint` the positions are stored once each frame is handed to the socket: a client that dies before it
 * processed a frame loses it. For at-least-once, a client checkpoints itself (POST …/checkpoint) after processing.
 */
async function streamSse(req: FastifyRequest, reply: FastifyReply, start: Positions, signal: AppendSignal,
  read: (positions: Positions) => Promise<ReadResult>, checkpoint?: (positions: Positions) => Promise<unknown>): Promise<void> {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
  let open = true;
  req.raw.on('close', () => { open = false; signal.notify(); });
  res.write(': corral events\n\n');
  let positions = start;
  let lastBeat = Date.now();
  while (open) {
    try {
      const r = await read(positions);
      positions = r.positions;
      if (r.events.length > 0) {
        const ok = res.write(`id: ${encodePositions(positions)}\nevent: events\ndata: ${JSON.stringify({ events: r.events, positions })}\n\n`);
        if (!ok) await new Promise<void>((resolve) => { res.once('drain', resolve); res.once('close', resolve); });
        if (checkpoint && open) await checkpoint(positions);
        continue;
      }
      if (Date.now() - lastBeat > 15_000) { res.write(': keep-alive\n\n'); lastBeat = Date.now(); }
      await signal.wait(250);
    } catch (err) {
      res.write(`event: error\ndata: ${JSON.stringify({ message: (err as Error).message })}\n\n`);
      break;
    }
  }
  res.end();
}

/**
 * The EventLog from outside, under `/corral/v1`:
 * - `GET events?start=&position=&limit=&deviceId=&source=&view=&waitMs=` paged reads, `GET events/stream` as SSE;
 * - consumer groups: `PUT/GET/DELETE consumer-groups/{name}`, `GET consumer-groups`, `GET consumer-groups/{name}/events`
 *   (from the checkpoints, or `position`), `POST consumer-groups/{name}/checkpoint` `{positions}`,
 *   `POST consumer-groups/{name}/seek` `{start}`, `GET consumer-groups/{name}/stream` (SSE, `?checkpoint=auto`).
 */
export function registerEventRoutes(app: FastifyInstance, deps: { groups: ConsumerGroups; settings: PipelineSettings; signal: AppendSignal }): void {
  const { groups, signal } = deps;
  const base = `${CORRAL_PREFIX}/events`;
  const gbase = `${CORRAL_PREFIX}/consumer-groups`;
  const plainRead = (q: Query) => (positions: Positions) => groups.read({
    view: viewOf(q), positions, start: parseStartText(q.start), limit: limitOf(q, 100), deviceId: q.deviceId, sources: sourcesOf(q),
  });

  app.get(base, { config: READ }, async (req) => {
    const q = req.query as Query;
    const read = plainRead(q);
    const positions = q.position ? decodePositions(q.position) : {};
    return page(await longPoll(() => read(positions), waitMsOf(q), signal));
  });
  app.get(`${base}/stream`, { config: READ }, async (req, reply) => {
    const q = req.query as Query;
    // Parameters are checked before the stream opens, so a bad one is a 400, not a broken stream.
    viewOf(q); parseStartText(q.start); sourcesOf(q);
    const start = q.position ? decodePositions(q.position) : {};
    await streamSse(req, reply, start, signal, plainRead(q));
  });

  app.get(gbase, { config: READ }, async () => (await deps.settings.list('consumerGroup')).map(settingView));
  app.put(`${gbase}/:name`, { config: MANAGE }, async (req, reply) => {
    const name = (req.params as { name: string }).name;
    await groups.create(name, req.body);
    return reply.code(201).send({ ...settingView(await deps.settings.get('consumerGroup', name)), checkpoints: await groups.checkpoints(name) });
  });
  app.get(`${gbase}/:name`, { config: READ }, async (req) => {
    const name = (req.params as { name: string }).name;
    return { ...settingView(await deps.settings.get('consumerGroup', name)), checkpoints: await groups.checkpoints(name), lag: await groups.lag(name) };
  });
  app.delete(`${gbase}/:name`, { config: MANAGE }, async (req, reply) => {
    await deps.settings.remove('consumerGroup', (req.params as { name: string }).name);
    return reply.code(204).send();
  });
  app.get(`${gbase}/:name/events`, { config: READ }, async (req) => {
    const name = (req.params as { name: string }).name;
    const q = req.query as Query;
    const positions = q.position ? decodePositions(q.position) : undefined;
    return page(await longPoll(() => groups.readGroup(name, { limit: limitOf(q, 100), positions, deviceId: q.deviceId }), waitMsOf(q), signal));
  });
  app.post(`${gbase}/:name/checkpoint`, { config: READ }, async (req) => {
    const name = (req.params as { name: string }).name;
    const body = req.body as { positions?: unknown; position?: unknown } | undefined;
    const positions = typeof body?.position === 'string' ? decodePositions(body.position) : parsePositions(body?.positions);
    return { checkpoints: await groups.checkpoint(name, positions) };
  });
  app.post(`${gbase}/:name/seek`, { config: READ }, async (req) => {
    const name = (req.params as { name: string }).name;
    const start = (req.body as { start?: unknown } | undefined)?.start;
    if (typeof start !== 'string' && typeof start !== 'number') throw new ArgumentInvalid('the body must be {"start": "earliest" | "latest" | "ISO time" | sequence}');
    return { checkpoints: await groups.seek(name, parseStartText(String(start))) };
  });
  app.get(`${gbase}/:name/stream`, { config: READ }, async (req, reply) => {
    const name = (req.params as { name: string }).name;
    const q = req.query as Query;
    const auto = q.checkpoint === 'auto';
    if (q.checkpoint !== undefined && !auto) throw new ArgumentInvalid(`checkpoint must be 'auto' or absent, got '${q.checkpoint}'`);
    const limit = limitOf(q, 100);
    const start = await groups.checkpoints(name);
    await streamSse(req, reply, start, signal, (positions) => groups.readGroup(name, { limit, positions, deviceId: q.deviceId }),
      auto ? (positions) => groups.checkpoint(name, positions) : undefined);
  });
}
