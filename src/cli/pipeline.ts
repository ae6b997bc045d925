import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { IOT_HUB_SOURCES } from '../core/events/index.js';
import { CliError, CONNECTION_OPTIONS, runVerbs, type HubClient } from './client.js';
import { EVENTS_USAGE, eventsCommand, groupCommand } from './events.js';
import { print, table, type OutputFormat } from './output.js';

const ROUTING = '/corral/v1/routing';

const ROUTE_OPTIONS = {
  ...CONNECTION_OPTIONS, source: { type: 'string' }, condition: { type: 'string' }, endpoint: { type: 'string' },
  disabled: { type: 'boolean' }, replace: { type: 'boolean' }, body: { type: 'string' }, device: { type: 'string' },
  module: { type: 'string' }, 'app-property': { type: 'string', multiple: true }, 'system-property': { type: 'string', multiple: true },
} as const;
const ENDPOINT_OPTIONS = {
  ...CONNECTION_OPTIONS, type: { type: 'string' }, url: { type: 'string' }, header: { type: 'string', multiple: true },
  secret: { type: 'string' }, 'ca-file': { type: 'string' }, 'timeout-ms': { type: 'string' }, subject: { type: 'string' },
  jetstream: { type: 'boolean' }, table: { type: 'string' }, schema: { type: 'string' }, json: { type: 'string' }, replace: { type: 'boolean' },
} as const;
const ENRICHMENT_OPTIONS = { ...CONNECTION_OPTIONS, value: { type: 'string' }, endpoint: { type: 'string', multiple: true }, replace: { type: 'boolean' } } as const;

type RouteValues = ReturnType<typeof parseArgs<{ options: typeof ROUTE_OPTIONS; allowPositionals: true }>>['values'];
type EndpointValues = ReturnType<typeof parseArgs<{ options: typeof ENDPOINT_OPTIONS; allowPositionals: true }>>['values'];
type Setting = 'routes' | 'endpoints' | 'enrichments';

export const PIPELINE_USAGE = `corral route add NAME --endpoint E [--source telemetry] [--condition "$body.temperature > 30"] [--disabled] [--replace]
  corral route list | show NAME | remove NAME | health
  corral route test (NAME | [--source S] [--condition C] [--endpoint E]) [--body TEXT] [--app-property k=v ...]
                [--system-property contentType=application/json ...] [--device ID] [--module M]
  corral endpoint add NAME --type webhook --url https://… [--header K=V ...] [--secret S] [--ca-file PEM] [--timeout-ms N]
  corral endpoint add NAME --type nats --url nats://… --subject S [--jetstream]
  corral endpoint add NAME --type postgres --url postgres://… --table T [--schema S]
  corral endpoint add NAME --json '{"type":…}'   (any spec, retry policy included; flags override its fields)
  corral endpoint list | show NAME | remove NAME
  corral enrichment add NAME --value V --endpoint E [--endpoint E2 ...] [--replace]
  corral enrichment list | show NAME | remove NAME
  ${EVENTS_USAGE}`;

const ROUTE_COLUMNS = ['name', 'source', 'condition', 'endpointNames', 'isEnabled'];
const ENDPOINT_COLUMNS = ['name', 'type', 'url', 'target', 'updatedTime'];
const ENRICHMENT_COLUMNS = ['name', 'value', 'endpointNames'];

function enc(name: string): string {
  return encodeURIComponent(name);
}

function needName(pos: string[], what: string): string {
  if (!pos[0]) throw new CliError(`${what} needs a name`);
  return pos[0];
}

/** `k=v` flags into an object; the value may hold '='. */
function keyValues(items: readonly string[] | undefined, flag: string): Record<string, string> | undefined {
  if (!items || items.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq < 1) throw new CliError(`--${flag} must be key=value, got ${item}`);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

/** The verbs every setting kind shares: list, show, remove; `add` is each kind's own. */
async function runSharedVerb(client: HubClient, kind: Setting, noun: string, verb: string, pos: string[], out: OutputFormat, columns: readonly string[],
  rows: (items: unknown) => unknown = (x) => x): Promise<boolean> {
  const path = `${ROUTING}/${kind}`;
  switch (verb) {
    case 'list': {
      const body = (await client.call('GET', path)).body;
      print(out === 'table' ? rows(body) : body, out, columns);
      return true;
    }
    case 'show': {
      const body = (await client.call('GET', `${path}/${enc(needName(pos, `${noun} show`))}`)).body;
      print(out === 'table' ? rows([body]) : body, out, columns);
      return true;
    }
    case 'remove': {
      const name = needName(pos, `${noun} remove`);
      await client.call('DELETE', `${path}/${enc(name)}`);
      print({ name, removed: true }, out, ['name', 'removed']);
      return true;
    }
    default: return false;
  }
}

/** PUT with `?create=true` unless --replace: `add` must not overwrite a setting by accident. */
async function putSetting(client: HubClient, kind: Setting, name: string, body: unknown, replace: boolean | undefined): Promise<unknown> {
  return (await client.call('PUT', `${ROUTING}/${kind}/${enc(name)}${replace ? '' : '?create=true'}`, { body })).body;
}

/** A source as a sample message carries it: IoT Hub's names (DeviceMessages) mapped to Corral's (telemetry). */
function sourceOf(text: string): string {
  return Object.hasOwn(IOT_HUB_SOURCES, text) ? IOT_HUB_SOURCES[text] : text;
}

async function routeTest(client: HubClient, name: string | undefined, v: RouteValues, out: OutputFormat): Promise<void> {
  let source = v.source === undefined ? undefined : sourceOf(v.source);
  let request: Record<string, unknown>;
  if (name !== undefined) {
    if (v.source || v.condition || v.endpoint) throw new CliError('route test NAME tests the stored route: give NAME or --source/--condition/--endpoint, not both');
    request = { routeName: name };
    // The sample comes from the route's source, so a twinChange route is tried on a twinChange message; a route that
    // cannot be read is left to the test call, which names what is wrong.
    source = await client.call('GET', `${ROUTING}/routes/${enc(name)}`).then((r) => (r.body as { source?: string }).source, () => undefined);
  } else {
    request = { route: { source: v.source ?? 'telemetry', condition: v.condition ?? 'true', endpointNames: [v.endpoint ?? 'events'] } };
  }
  request.message = {
    ...(v.device === undefined ? {} : { deviceId: v.device }), ...(v.module === undefined ? {} : { moduleId: v.module }),
    ...(source === undefined ? {} : { source }), body: v.body ?? '',
    appProperties: keyValues(v['app-property'], 'app-property'), systemProperties: keyValues(v['system-property'], 'system-property'),
  };
  print((await client.call('POST', `${ROUTING}/test`, { body: request })).body, out, ['route', 'result', 'endpoint', 'reason']);
}

interface RoutingHealth {
  node: string;
  routes: { name: string; endpoint: string; enabled: boolean; delivered: number; partitions: Record<string, { lag: number }> }[];
  endpoints: Record<string, { status: string; delivered: number; failedAttempts: number; deadLettered: number; lastError: string | null }>;
}

async function routeHealth(client: HubClient, out: OutputFormat): Promise<void> {
  const health = (await client.call('GET', `${ROUTING}/health`)).body as RoutingHealth;
  if (out === 'json') return print(health, out, []);
  const routes = health.routes.map((r) => ({ ...r, lag: Object.values(r.partitions).reduce((sum, p) => sum + p.lag, 0) }));
  process.stdout.write(`node ${health.node}\n\n`);
  process.stdout.write(table(routes, ['name', 'endpoint', 'enabled', 'delivered', 'lag']) + '\n');
  process.stdout.write(table(Object.entries(health.endpoints).map(([name, h]) => ({ name, ...h })), ['name', 'status', 'delivered', 'failedAttempts', 'deadLettered', 'lastError']));
}

async function route(client: HubClient, verb: string, pos: string[], v: RouteValues, out: OutputFormat): Promise<void> {
  if (await runSharedVerb(client, 'routes', 'route', verb, pos, out, ROUTE_COLUMNS)) return;
  switch (verb) {
    case 'add': {
      const name = needName(pos, 'route add');
      if (!v.endpoint) throw new CliError("route add needs --endpoint NAME (an endpoint's name, or events for the built-in endpoint)");
      const body = { source: v.source ?? 'telemetry', condition: v.condition ?? 'true', endpointNames: [v.endpoint], isEnabled: v.disabled !== true };
      return print(await putSetting(client, 'routes', name, body, v.replace), out, ROUTE_COLUMNS);
    }
    case 'test': return routeTest(client, pos[0], v, out);
    case 'health': return routeHealth(client, out);
    default: throw new CliError(`unknown verb 'route ${verb}': add, list, show, remove, test, health`);
  }
}

/** Which flags each endpoint type takes (the spec's fields, see src/ports/endpoints). */
const TYPE_FLAGS: Readonly<Record<string, readonly (keyof EndpointValues)[]>> = {
  webhook: ['url', 'header', 'secret', 'ca-file', 'timeout-ms'],
  nats: ['url', 'subject', 'jetstream'],
  postgres: ['url', 'table', 'schema'],
};
const SPEC_FLAGS = ['url', 'header', 'secret', 'ca-file', 'timeout-ms', 'subject', 'jetstream', 'table', 'schema'] as const;

function jsonObject(text: string, flag: string): Record<string, unknown> {
  let value: unknown;
  try { value = JSON.parse(text); } catch { throw new CliError(`--${flag} must be JSON, got ${text}`); }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new CliError(`--${flag} must be a JSON object, got ${text}`);
  return value as Record<string, unknown>;
}

function readCa(file: string): string {
  try { return readFileSync(file, 'utf8'); } catch (err) { throw new CliError(`--ca-file ${file}: ${(err as Error).message}`); }
}

/** The endpoint document: --json (if any), with each flag over it; a flag that is not its type's is refused. */
function endpointBody(v: EndpointValues): Record<string, unknown> {
  const doc = v.json === undefined ? {} : jsonObject(v.json, 'json');
  if (v.type !== undefined) doc.type = v.type;
  const type = doc.type;
  if (type === undefined) throw new CliError('endpoint add needs --type webhook|nats|postgres (or --json with a "type")');
  const allowed = typeof type === 'string' ? TYPE_FLAGS[type] : undefined;
  if (!allowed) throw new CliError(`--type must be webhook, nats or postgres, got ${JSON.stringify(type)}`);
  for (const flag of SPEC_FLAGS) {
    if (v[flag] !== undefined && !allowed.includes(flag)) throw new CliError(`--${flag} is not for a ${type} endpoint (its flags: ${allowed.map((f) => `--${f}`).join(', ')})`);
  }
  if (v.url !== undefined) doc.url = v.url;
  const headers = keyValues(v.header, 'header');
  if (headers) doc.headers = { ...(doc.headers as Record<string, string> | undefined), ...headers };
  if (v.secret !== undefined) doc.secret = v.secret;
  if (v['ca-file'] !== undefined) doc.caCertificate = readCa(v['ca-file']);
  if (v['timeout-ms'] !== undefined) {
    const ms = Number(v['timeout-ms']);
    if (!Number.isInteger(ms)) throw new CliError(`--timeout-ms must be a whole number of milliseconds, got ${v['timeout-ms']}`);
    doc.timeoutMs = ms;
  }
  if (v.subject !== undefined) doc.subject = v.subject;
  if (v.jetstream !== undefined) doc.jetstream = v.jetstream;
  if (v.table !== undefined) doc.table = v.table;
  if (v.schema !== undefined) doc.schema = v.schema;
  return doc;
}

/** A URL for a table: its password masked (the JSON output is the hub's answer, as it is). */
function shownUrl(text: unknown): string {
  if (typeof text !== 'string') return '';
  try {
    const url = new URL(text);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return text;
  }
}

function endpointRows(items: unknown): unknown {
  return (items as Record<string, unknown>[]).map((e) => ({
    ...e, url: shownUrl(e.url),
    target: e.type === 'nats' ? e.subject : e.type === 'postgres' ? `${e.schema ? `${String(e.schema)}.` : ''}${String(e.table)}` : '',
  }));
}

async function endpoint(client: HubClient, verb: string, pos: string[], v: EndpointValues, out: OutputFormat): Promise<void> {
  if (await runSharedVerb(client, 'endpoints', 'endpoint', verb, pos, out, ENDPOINT_COLUMNS, endpointRows)) return;
  if (verb !== 'add') throw new CliError(`unknown verb 'endpoint ${verb}': add, list, show, remove`);
  const name = needName(pos, 'endpoint add');
  const saved = await putSetting(client, 'endpoints', name, endpointBody(v), v.replace);
  print(out === 'table' ? endpointRows([saved]) : saved, out, ENDPOINT_COLUMNS);
}

/** `corral route …` over /corral/v1/routing/routes, /test and /health. */
async function routeCommand(args: string[]): Promise<number> {
  return runVerbs(args, ROUTE_OPTIONS, route);
}

/** `corral endpoint …` over /corral/v1/routing/endpoints. */
async function endpointCommand(args: string[]): Promise<number> {
  return runVerbs(args, ENDPOINT_OPTIONS, endpoint);
}

/** `corral enrichment …` over /corral/v1/routing/enrichments. */
async function enrichmentCommand(args: string[]): Promise<number> {
  return runVerbs(args, ENRICHMENT_OPTIONS, async (client, verb, pos, v, out) => {
    if (await runSharedVerb(client, 'enrichments', 'enrichment', verb, pos, out, ENRICHMENT_COLUMNS)) return;
    if (verb !== 'add') throw new CliError(`unknown verb 'enrichment ${verb}': add, list, show, remove`);
    const name = needName(pos, 'enrichment add');
    if (v.value === undefined) throw new CliError('enrichment add needs --value V (static text, $iothubname, or $twin.tags.… / $twin.properties.desired|reported.…)');
    if (!v.endpoint?.length) throw new CliError('enrichment add needs --endpoint NAME (one or more)');
    print(await putSetting(client, 'enrichments', name, { value: v.value, endpointNames: v.endpoint }, v.replace), out, ENRICHMENT_COLUMNS);
  });
}

const COMMANDS: ReadonlyMap<string, (args: string[]) => Promise<number>> = new Map([
  ['route', routeCommand], ['endpoint', endpointCommand], ['enrichment', enrichmentCommand],
  ['events', eventsCommand], ['group', groupCommand],
]);

/** The telemetry pipeline's nouns (`route`, `endpoint`, `enrichment`, `events`, `group`): the command for one, if it is one. */
export function pipelineCommand(noun: string): ((args: string[]) => Promise<number>) | undefined {
  return COMMANDS.get(noun);
}
