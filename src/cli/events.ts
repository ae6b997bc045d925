import type { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { CliError, CONNECTION_OPTIONS, runVerbs, type HubClient } from './client.js';
import { print, table, type OutputFormat } from './output.js';
import { SseParser } from './sse.js';

const EVENTS = '/corral/v1/events';
const GROUPS = '/corral/v1/consumer-groups';

const EVENTS_OPTIONS = {
  ...CONNECTION_OPTIONS, device: { type: 'string' }, group: { type: 'string' }, source: { type: 'string' }, start: { type: 'string' },
  view: { type: 'string' }, checkpoint: { type: 'boolean' }, limit: { type: 'string' }, position: { type: 'string' }, 'wait-ms': { type: 'string' },
} as const;
const GROUP_OPTIONS = { ...CONNECTION_OPTIONS, start: { type: 'string' }, view: { type: 'string' }, source: { type: 'string' }, position: { type: 'string' } } as const;
const DEVICE_OPTIONS = { ...CONNECTION_OPTIONS, module: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' }, limit: { type: 'string' } } as const;

type EventsValues = ReturnType<typeof parseArgs<{ options: typeof EVENTS_OPTIONS; allowPositionals: true }>>['values'];

export const EVENTS_USAGE = `corral events tail [--device ID] [--source telemetry,twinChange,…] [--start earliest|latest|ISO|SEQ] [--view all|events]
                [--position TOKEN]            (follows the EventLog, one JSON line per event, until Ctrl-C)
  corral events tail --group NAME [--device ID] [--checkpoint]   (from the group's checkpoints; --checkpoint moves them)
  corral events read [--group NAME [--checkpoint]] [--limit N] [--position TOKEN] [--wait-ms N] [--device ID]
                [--source …] [--start …] [--view …]    (one page: {events, next}; pass next back as --position)
  corral group create NAME [--start earliest|latest|ISO|SEQ] [--view events|all] [--source telemetry,…]
  corral group list | show NAME | remove NAME
  corral group checkpoint NAME --position TOKEN
  corral group seek NAME --start earliest|latest|ISO|SEQ
  corral device state ID [--module M]      (last-known telemetry values, last seen, health)
  corral device telemetry ID [--module M] [--from ISO] [--to ISO] [--limit N]`;

const EVENT_COLUMNS = ['enqueuedTime', 'device', 'source', 'body'];

interface EventDoc {
  readonly enqueuedTime: string;
  readonly source: string;
  readonly deviceId: string;
  readonly moduleId?: string;
  readonly body: unknown;
}

function enc(name: string): string {
  return encodeURIComponent(name);
}

/** Query parameters, leaving out the absent ones. */
function query(params: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.set(k, v);
  return q.size ? `?${q}` : '';
}

function eventRow(e: EventDoc): Record<string, unknown> {
  return { enqueuedTime: e.enqueuedTime, device: e.moduleId ? `${e.deviceId}/${e.moduleId}` : e.deviceId, source: e.source, body: e.body };
}

function eventLine(e: EventDoc, out: OutputFormat): string {
  if (out === 'json') return JSON.stringify(e);
  const r = eventRow(e);
  return `${String(r.enqueuedTime)}  ${String(r.device)}  ${r.source}  ${typeof e.body === 'string' ? e.body : JSON.stringify(e.body)}`;
}

/** --source, --start and --view belong to a group (set at `group create`), not to a read of it. */
function checkGroupFlags(v: EventsValues, verb: string): void {
  if (v.group === undefined) {
    if (v.checkpoint) throw new CliError(`events ${verb} --checkpoint needs --group NAME: only a group has checkpoints`);
    return;
  }
  for (const flag of ['source', 'start', 'view'] as const) {
    if (v[flag] !== undefined) throw new CliError(`--${flag} is the group's own (set by group create); events ${verb} --group takes --device, --limit, --position, --checkpoint`);
  }
  if (verb === 'tail' && v.position !== undefined) throw new CliError("events tail --group starts at the group's checkpoints; move them with group seek or group checkpoint");
}

/** A refused request's answer, as client.call reports it (IoT Hub's `Message`, else the text). */
async function refusal(status: number, stream: Readable): Promise<CliError> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    const body = JSON.parse(text) as { Message?: unknown };
    if (typeof body.Message === 'string') return new CliError(`${status}: ${body.Message}`);
  } catch { /* not JSON: the text */ }
  return new CliError(`${status}: ${text}`);
}

function errorMessage(data: string): string {
  try {
    const m = (JSON.parse(data) as { message?: unknown }).message;
    return typeof m === 'string' ? m : data;
  } catch {
    return data;
  }
}

/**
 * Prints each event of an SSE stream as it comes; resolves on SIGINT/SIGTERM (or when stdout is closed, as by
 * `| head`), rejects with the hub's message on an `error` frame, and when the hub ends the stream.
 */
export function follow(stream: Readable, out: OutputFormat, resumeHint: (lastId: string) => string): Promise<void> {
  return new Promise((resolve, reject) => {
    const parser = new SseParser();
    let lastId = '';
    const cleanup = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      process.stdout.off('error', onStdoutError);
      stream.destroy();
    };
    const stop = (): void => { cleanup(); resolve(); };
    const fail = (message: string): void => { cleanup(); reject(new CliError(message)); };
    const onStdoutError = (err: NodeJS.ErrnoException): void => (err.code === 'EPIPE' ? stop() : fail(`cannot write: ${err.message}`));
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    process.stdout.on('error', onStdoutError);
    stream.setEncoding('utf8');
    stream.on('data', (text: string) => {
      for (const frame of parser.push(text)) {
        lastId = frame.id;
        if (frame.event === 'error') return fail(`the hub ended the stream: ${errorMessage(frame.data)}`);
        if (frame.event !== 'events') continue;
        let events: EventDoc[];
        try {
          events = (JSON.parse(frame.data) as { events: EventDoc[] }).events;
        } catch {
          return fail(`the hub sent a frame that is not JSON: ${frame.data.slice(0, 200)}`);
        }
        process.stdout.write(events.map((e) => eventLine(e, out) + '\n').join(''));
      }
    });
    stream.on('end', () => fail(`the hub closed the stream${resumeHint(lastId)}`));
    stream.on('error', (err) => fail(`the stream broke: ${err.message}`));
  });
}

async function tail(client: HubClient, v: EventsValues, out: OutputFormat): Promise<void> {
  checkGroupFlags(v, 'tail');
  const path = v.group !== undefined
    ? `${GROUPS}/${enc(v.group)}/stream${query({ deviceId: v.device, limit: v.limit, checkpoint: v.checkpoint ? 'auto' : undefined })}`
    : `${EVENTS}/stream${query({ deviceId: v.device, source: v.source, start: v.start, view: v.view, limit: v.limit, position: v.position })}`;
  const res = await client.raw('GET', path, { headers: { accept: 'text/event-stream' } });
  if (res.status >= 400) throw await refusal(res.status, res.stream);
  if (out === 'table') process.stdout.write('time  device  source  body\n');
  await follow(res.stream, out, (lastId) => {
    if (v.group !== undefined) return v.checkpoint ? "; run it again to go on from the group's checkpoints" : '';
    return lastId ? `; go on with --position ${lastId}` : '';
  });
}

async function read(client: HubClient, v: EventsValues, out: OutputFormat): Promise<void> {
  checkGroupFlags(v, 'read');
  const shared = { deviceId: v.device, limit: v.limit, position: v.position, waitMs: v['wait-ms'] };
  const path = v.group !== undefined
    ? `${GROUPS}/${enc(v.group)}/events${query(shared)}`
    : `${EVENTS}${query({ ...shared, source: v.source, start: v.start, view: v.view })}`;
  const page = (await client.call('GET', path)).body as { events: EventDoc[]; next: string };
  // At least once: the page is printed before the checkpoint moves past it.
  if (out === 'json') print({ events: page.events, next: page.next }, out, []);
  else print(page.events.map(eventRow), out, EVENT_COLUMNS);
  if (v.checkpoint && v.group !== undefined) await client.call('POST', `${GROUPS}/${enc(v.group)}/checkpoint`, { body: { position: page.next } });
  if (out === 'table') process.stderr.write(`next: ${page.next}\n`);
}

/** `corral events tail|read …` over /corral/v1/events and /corral/v1/consumer-groups/{name}. */
export async function eventsCommand(args: string[]): Promise<number> {
  return runVerbs(args, EVENTS_OPTIONS, async (client, verb, pos, v, out) => {
    if (pos.length) throw new CliError(`events ${verb} takes flags only, got ${pos.join(' ')}`);
    if (verb === 'tail') return tail(client, v, out);
    if (verb === 'read') return read(client, v, out);
    throw new CliError(`unknown verb 'events ${verb}': tail, read`);
  });
}

/** A group's start as the API's body takes it: "earliest", "latest", {"time": ISO} or {"sequence": n}. */
function startBody(text: string): unknown {
  if (text === 'earliest' || text === 'latest') return text;
  if (/^\d+$/.test(text)) return { sequence: Number(text) };
  if (!Number.isNaN(Date.parse(text))) return { time: text };
  throw new CliError(`--start must be earliest, latest, an ISO 8601 time or a sequence number, got ${text}`);
}

/** `corral group create|list|show|remove|checkpoint|seek` over /corral/v1/consumer-groups. */
export async function groupCommand(args: string[]): Promise<number> {
  return runVerbs(args, GROUP_OPTIONS, async (client, verb, pos, v, out) => {
    const columns = ['name', 'view', 'start', 'sources', 'checkpoints', 'lag'];
    if (verb === 'list') return print((await client.call('GET', GROUPS)).body, out, ['name', 'view', 'start', 'sources', 'createdTime']);
    const name = pos[0];
    if (!name) throw new CliError(`group ${verb || '(verb)'} needs a group name`);
    const path = `${GROUPS}/${enc(name)}`;
    switch (verb) {
      case 'create': {
        const body = {
          ...(v.start === undefined ? {} : { start: startBody(v.start) }), ...(v.view === undefined ? {} : { view: v.view }),
          ...(v.source === undefined ? {} : { sources: v.source.split(',').map((s) => s.trim()) }),
        };
        return print((await client.call('PUT', path, { body })).body, out, columns);
      }
      case 'show': return print((await client.call('GET', path)).body, out, columns);
      case 'remove':
        await client.call('DELETE', path);
        return print({ name, removed: true }, out, ['name', 'removed']);
      case 'checkpoint':
        if (!v.position) throw new CliError('group checkpoint needs --position TOKEN (the next of a read)');
        return print((await client.call('POST', `${path}/checkpoint`, { body: { position: v.position } })).body, out, ['checkpoints']);
      case 'seek':
        if (!v.start) throw new CliError('group seek needs --start earliest|latest|ISO|SEQ');
        startBody(v.start);
        return print((await client.call('POST', `${path}/seek`, { body: { start: v.start } })).body, out, ['checkpoints']);
      default:
        throw new CliError(`unknown verb 'group ${verb}': create, list, show, remove, checkpoint, seek`);
    }
  });
}

interface DeviceState {
  readonly deviceId: string;
  readonly telemetry: Record<string, unknown>;
  readonly $metadata: Record<string, { $lastUpdated?: string }>;
  readonly lastSeenTime: string | null;
  readonly health: string | null;
}

/** `corral device state|telemetry ID` over /corral/v1/devices/{id}[/modules/{m}]/state and /telemetry. */
export async function deviceStateCommand(args: string[]): Promise<number> {
  return runVerbs(args, DEVICE_OPTIONS, async (client, verb, pos, v, out) => {
    if (!pos[0]) throw new CliError(`device ${verb} needs a device id`);
    const path = `/corral/v1/devices/${enc(pos[0])}${v.module ? `/modules/${enc(v.module)}` : ''}`;
    if (verb === 'telemetry') {
      const page = (await client.call('GET', `${path}/telemetry${query({ from: v.from, to: v.to, limit: v.limit })}`)).body as { events: EventDoc[] };
      return print(out === 'json' ? page : page.events.map(eventRow), out, EVENT_COLUMNS);
    }
    if (verb !== 'state') throw new CliError(`unknown verb 'device ${verb}'`);
    const state = (await client.call('GET', `${path}/state`)).body as DeviceState;
    if (out === 'json') return print(state, out, []);
    process.stdout.write(`${pos[0]}  lastSeenTime ${state.lastSeenTime ?? '-'}  health ${state.health ?? '-'}\n\n`);
    const rows = Object.entries(state.telemetry).map(([field, value]) => ({ field, value, lastUpdated: state.$metadata[field]?.$lastUpdated }));
    process.stdout.write(table(rows, ['field', 'value', 'lastUpdated']));
  });
}
