/**
 * Message routing as IoT Hub does it: a route takes one source, a condition in the routing query language
 * (`$body.temperature > 30 AND $twin.tags.site = 'lyon'`) and one endpoint; telemetry no enabled route matches goes
 * to the built-in endpoint through `$fallback`; enrichments add static values or twin values to what an endpoint
 * receives. Each route reads the EventLog with its own checkpoint (route:NAME), so one slow endpoint delays no other.
 */

import { ArgumentInvalid } from '../errors/index.js';
import { EVENT_SOURCES, IOT_HUB_SOURCES, type EventSource } from '../events/index.js';
import { evaluateMessageCondition, parseMessageCondition, type MessageCondition, type MessageFacts } from '../query/index.js';
import type { IdentityRecord, JsonObject, JsonValue, Store } from '../../ports/store/index.js';
import type { SettingRecord } from '../../ports/store/pipeline.js';
import { identityKeyText } from '../../ports/store/index.js';
import type { EndpointMessage } from '../../ports/endpoints/index.js';
import { BUILT_IN_ENDPOINT, type Endpoints } from './endpoints.js';
import type { PipelineConsumer } from './cursor.js';
import type { PipelineMessage } from './message.js';
import { objectBody, onlyFields, type PipelineSettings, type SettingsSnapshot } from './settings.js';

export const FALLBACK_ROUTE = '$fallback';
/** The most document bytes one delivery carries (one webhook request, one PostgreSQL insert). */
const MAX_DELIVERY_BYTES = 4 * 1024 * 1024;
/** IoT Hub allows 10 enrichments per hub. */
const MAX_ENRICHMENTS = 10;
const MAX_ENRICHMENT_VALUE = 256;

/** A route as the pipeline runs it. */
export interface CompiledRoute {
  readonly name: string;
  readonly rev: number;
  readonly source: EventSource;
  readonly condition: MessageCondition;
  readonly endpoint: string;
  readonly enabled: boolean;
}

/** The route named `$fallback`, as IoT Hub has it unless it was changed: telemetry to `events`, enabled. */
const DEFAULT_FALLBACK = { source: 'telemetry', condition: 'true', endpointNames: [BUILT_IN_ENDPOINT], isEnabled: true };

function parseSource(value: unknown): EventSource {
  if (typeof value === 'string') {
    if ((EVENT_SOURCES as readonly string[]).includes(value)) return value as EventSource;
    const mapped = IOT_HUB_SOURCES[value];
    if (mapped) return mapped;
  }
  throw new ArgumentInvalid(`route source ${JSON.stringify(value)} is not one of ${[...EVENT_SOURCES, ...Object.keys(IOT_HUB_SOURCES)].join(', ')}`);
}

function endpointNames(value: unknown, what: string, max: number): string[] {
  if (!Array.isArray(value) || value.length < 1 || value.length > max || !value.every((v) => typeof v === 'string')) {
    throw new ArgumentInvalid(`${what}.endpointNames must be an array of 1${max > 1 ? ` to ${max}` : ''} endpoint name${max > 1 ? 's' : ''}, got ${JSON.stringify(value)}`);
  }
  return value as string[];
}

async function checkEndpointsExist(names: readonly string[], settings: PipelineSettings): Promise<void> {
  for (const n of names) {
    if (n !== BUILT_IN_ENDPOINT && !(await settings.find('endpoint', n))) throw new ArgumentInvalid(`no endpoint named '${n}' (create it first, or use '${BUILT_IN_ENDPOINT}')`);
  }
}

/** Validates a route setting (IoT Hub's RouteProperties: source, condition, endpointNames, isEnabled). */
export async function routeValidator(name: string, body: unknown, settings: PipelineSettings): Promise<JsonObject> {
  const doc = objectBody(body, 'route');
  onlyFields(doc, ['source', 'condition', 'endpointNames', 'isEnabled'], `route '${name}'`);
  const source = parseSource(doc.source ?? (name === FALLBACK_ROUTE ? 'telemetry' : undefined));
  if (name === FALLBACK_ROUTE && source !== 'telemetry') throw new ArgumentInvalid(`the ${FALLBACK_ROUTE} route's source is telemetry`);
  const condition = doc.condition ?? 'true';
  if (typeof condition !== 'string') throw new ArgumentInvalid(`route '${name}': condition must be a string, got ${JSON.stringify(condition)}`);
  parseMessageCondition(condition);
  const endpoints = endpointNames(doc.endpointNames ?? (name === FALLBACK_ROUTE ? [BUILT_IN_ENDPOINT] : undefined), `route '${name}'`, 1);
  if (name === FALLBACK_ROUTE && endpoints[0] !== BUILT_IN_ENDPOINT) throw new ArgumentInvalid(`the ${FALLBACK_ROUTE} route sends to '${BUILT_IN_ENDPOINT}' only`);
  await checkEndpointsExist(endpoints, settings);
  const isEnabled = doc.isEnabled ?? true;
  if (typeof isEnabled !== 'boolean') throw new ArgumentInvalid(`route '${name}': isEnabled must be true or false`);
  return { source, condition, endpointNames: endpoints, isEnabled };
}

/** Validates an enrichment: a static value, or `$twin.tags.…` / `$twin.properties.desired|reported.…`, or `$iothubname`. */
export async function enrichmentValidator(name: string, body: unknown, settings: PipelineSettings): Promise<JsonObject> {
  const doc = objectBody(body, 'enrichment');
  onlyFields(doc, ['value', 'endpointNames'], `enrichment '${name}'`);
  if (typeof doc.value !== 'string' || doc.value.length === 0 || doc.value.length > MAX_ENRICHMENT_VALUE) {
    throw new ArgumentInvalid(`enrichment '${name}': value must be a string of 1 to ${MAX_ENRICHMENT_VALUE} characters`);
  }
  if (doc.value.startsWith('$')) twinPath(doc.value, name);
  const endpoints = endpointNames(doc.endpointNames, `enrichment '${name}'`, 100);
  await checkEndpointsExist(endpoints, settings);
  const existing = await settings.list('enrichment');
  if (existing.length >= MAX_ENRICHMENTS && !existing.some((e) => e.name === name)) {
    throw new ArgumentInvalid(`a hub has at most ${MAX_ENRICHMENTS} enrichments`);
  }
  return { value: doc.value, endpointNames: endpoints };
}

/** `$twin.tags.a.b` → ['tags','a','b']; `$iothubname` → []; anything else starting with `$` is refused. */
function twinPath(value: string, name: string): string[] {
  if (value.toLowerCase() === '$iothubname') return [];
  const m = /^\$twin\.(tags|properties\.desired|properties\.reported)((\.[^.\s]+)+)$/.exec(value);
  if (!m) throw new ArgumentInvalid(`enrichment '${name}': ${JSON.stringify(value)} must be static text, $iothubname, $twin.tags.…, $twin.properties.desired.… or $twin.properties.reported.…`);
  return [...m[1].split('.'), ...m[2].slice(1).split('.')];
}

function compile(r: SettingRecord): CompiledRoute {
  const doc = r.doc as { source: EventSource; condition: string; endpointNames: string[]; isEnabled: boolean };
  return { name: r.name, rev: r.rev, source: doc.source, condition: parseMessageCondition(doc.condition), endpoint: doc.endpointNames[0], enabled: doc.isEnabled };
}

/** The routes and enrichments of one settings snapshot, compiled once. */
export class RouteTable {
  readonly routes: readonly CompiledRoute[];
  readonly fallback: CompiledRoute;
  /** Whether deciding what reaches the built-in endpoint reads twins (a route's condition reads `$twin`). */
  readonly builtInNeedsTwin: boolean;
  private readonly enrichments: readonly { name: string; value: string; endpoints: readonly string[] }[];

  constructor(snapshot: SettingsSnapshot, readonly hubName: string) {
    const all = (snapshot.byKind.get('route') ?? []);
    const fallback = all.find((r) => r.name === FALLBACK_ROUTE);
    this.fallback = compile(fallback ?? { kind: 'route', name: FALLBACK_ROUTE, doc: DEFAULT_FALLBACK, createdMs: 0, updatedMs: 0, rev: 0 });
    this.routes = all.filter((r) => r.name !== FALLBACK_ROUTE).map(compile);
    this.builtInNeedsTwin = [...this.routes, this.fallback].some((r) => r.enabled && r.condition.usesTwin);
    this.enrichments = (snapshot.byKind.get('enrichment') ?? []).map((e) => ({ name: e.name, value: e.doc.value as string, endpoints: e.doc.endpointNames as string[] }));
  }

  /** Whether any route of this source needs the device's twin (a `$twin` condition or enrichment). */
  needsTwin(route: CompiledRoute): boolean {
    return route.condition.usesTwin || this.enrichments.some((e) => e.endpoints.includes(route.endpoint) && e.value.startsWith('$twin'));
  }

  /** The enrichments an endpoint's messages get, resolved for one device. */
  enrich(endpoint: string, twin: IdentityRecord | undefined): Record<string, string> | undefined {
    let out: Record<string, string> | undefined;
    for (const e of this.enrichments) {
      if (!e.endpoints.includes(endpoint)) continue;
      const value = e.value.startsWith('$') ? this.resolve(e.value, twin) : e.value;
      if (value !== undefined) (out ??= {})[e.name] = value;
    }
    return out;
  }

  /**
   * Whether the built-in endpoint gets the message: a route to it matches, or (telemetry only) no enabled telemetry
   * route matches and the fallback is enabled.
   */
  reachesBuiltIn(m: PipelineMessage, twin: IdentityRecord | undefined): boolean {
    let matchedAny = false;
    for (const r of this.routes) {
      if (!r.enabled || r.source !== m.source || !matches(r, m, twin)) continue;
      if (r.endpoint === BUILT_IN_ENDPOINT) return true;
      matchedAny = true;
    }
    return m.source === 'telemetry' && !matchedAny && this.fallback.enabled && this.fallback.endpoint === BUILT_IN_ENDPOINT && matches(this.fallback, m, twin);
  }

  private resolve(value: string, twin: IdentityRecord | undefined): string | undefined {
    if (value.toLowerCase() === '$iothubname') return this.hubName;
    if (!twin) return undefined;
    const path = value.slice('$twin.'.length).split('.');
    const root: JsonObject = { tags: twin.twin.tags, properties: { desired: twin.twin.desired, reported: twin.twin.reported } };
    let v: JsonValue | undefined = root;
    for (const seg of path) v = v !== null && typeof v === 'object' && !Array.isArray(v) ? v[seg] : undefined;
    if (v === undefined) return undefined;
    return typeof v === 'string' ? v : JSON.stringify(v);
  }
}

/** The facts a condition reads from a message (and the twin, when it reads `$twin`). */
export function messageFacts(m: PipelineMessage, twin: IdentityRecord | undefined): MessageFacts {
  return {
    // Read only by conditions that name a system property; built once per message (PipelineMessage caches it).
    get system() { return m.routingSystemProperties(); },
    get app() { return m.appProperties; },
    get body() { return m.json; },
    ...(twin ? { twin: { tags: twin.twin.tags, properties: { desired: twin.twin.desired, reported: twin.twin.reported } } } : {}),
  };
}

export function matches(route: CompiledRoute, m: PipelineMessage, twin: IdentityRecord | undefined): boolean {
  return evaluateMessageCondition(route.condition, messageFacts(m, twin));
}

/** The twins of the messages' devices, read in one call. */
export async function twinsOf(store: Store, messages: readonly PipelineMessage[]): Promise<Map<string, IdentityRecord>> {
  const keys = new Map<string, { deviceId: string; moduleId: string }>();
  for (const m of messages) if (m.event.deviceId !== '') keys.set(identityKeyText(m.key), m.key);
  if (keys.size === 0) return new Map();
  const found = await store.identities.getMany([...keys.values()]);
  return new Map(found.map((r) => [identityKeyText(r), r]));
}

/** One route's consumer: filter, enrich, deliver (with retries and dead letters), then the cursor checkpoints. */
export class RouteConsumer implements PipelineConsumer {
  readonly name: string;
  /** Deliveries gather 20 ms of records at most: one request per batch, and messages a few ms later. */
  readonly readIntervalMs = 20;
  delivered = 0;

  constructor(
    private readonly route: CompiledRoute,
    private readonly table: () => RouteTable,
    private readonly deps: { store: Store; endpoints: Endpoints; isStopping: () => boolean },
  ) {
    this.name = routeCheckpoint(route.name);
  }

  async handle(partition: string, messages: readonly PipelineMessage[]): Promise<void> {
    const table = this.table();
    const route = this.route;
    const relevant = messages.filter((m) => m.source === route.source);
    if (relevant.length === 0 || route.endpoint === BUILT_IN_ENDPOINT) return;
    const twins = table.needsTwin(route) ? await twinsOf(this.deps.store, relevant) : new Map<string, IdentityRecord>();
    const out: EndpointMessage[] = [];
    for (const m of relevant) {
      const twin = twins.get(identityKeyText(m.key));
      if (!matches(route, m, twin)) continue;
      const e = m.event;
      out.push({
        partition, sequence: e.sequence, deviceId: e.deviceId, moduleId: e.moduleId, source: e.kind, enqueuedTimeMs: e.enqueuedTimeMs,
        json: m.toJsonText({ route: route.name, enrichments: table.enrich(route.endpoint, twin) }),
      });
    }
    // In order, in requests of at most MAX_DELIVERY_BYTES of documents (a receiver's body limit is often a few MB).
    for (let start = 0; start < out.length;) {
      let end = start;
      for (let bytes = 0; end < out.length && (end === start || bytes + out[end].json.length <= MAX_DELIVERY_BYTES); end++) bytes += out[end].json.length;
      await this.deps.endpoints.deliver(route.endpoint, { route: route.name, messages: out.slice(start, end) }, this.deps.isStopping);
      this.delivered += end - start;
      start = end;
    }
  }
}

/** A route's checkpoint name in the Store. */
export function routeCheckpoint(route: string): string {
  return `route:${route}`;
}
