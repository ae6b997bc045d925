/**
 * The telemetry pipeline: routing to endpoints, consumer groups, device state, rules, alerts and wellness, all
 * reading the EventLog behind the writer (ARCHITECTURE.md, "Telemetry in"). `Routing` is the management surface the
 * REST edge and the CLI use for routes, endpoints and enrichments.
 */

import { ArgumentInvalid } from '../errors/index.js';
import type { IdentityRecord, JsonObject, Store } from '../../ports/store/index.js';
import { BUILT_IN_ENDPOINT } from './endpoints.js';
import { PipelineMessage } from './message.js';
import type { Pipeline } from './pipeline.js';
import { FALLBACK_ROUTE, matches, RouteTable, routeCheckpoint, routeValidator } from './routing.js';
import { objectBody, type PipelineSettings, type SettingsSnapshot } from './settings.js';
import type { SettingRecord } from '../../ports/store/pipeline.js';

export { AppendSignal, PartitionCursor, signalAppends, type PipelineConsumer } from './cursor.js';
export { BUILT_IN_ENDPOINT, DEFAULT_RETRY, HIDDEN_SECRET, endpointRemovalCheck, endpointValidator, Endpoints, type EndpointHealth } from './endpoints.js';
export { PipelineMessage, decodeBody } from './message.js';
export { Pipeline, type Sweeper } from './pipeline.js';
export { enrichmentValidator, FALLBACK_ROUTE, RouteTable, routeValidator } from './routing.js';
export { PipelineSettings, settingView, KIND_NAMES } from './settings.js';
export { DeviceStateConsumer, STATE_CONSUMER } from './state.js';
export {
  ConsumerGroups, decodePositions, encodePositions, MAX_READ, parsePositions, parseSources, parseStartText, type Positions, type ReadResult,
} from './consumers.js';

/** A sample message for `route test`: what a device would send. */
interface SampleMessage {
  readonly deviceId: string;
  readonly moduleId: string;
  readonly source: string;
  readonly body: Uint8Array;
  readonly properties: Record<string, string>;
}

function stringBag(value: unknown, what: string): Record<string, string> {
  if (value === undefined) return {};
  const bag = objectBody(value, what);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(bag)) {
    if (typeof v !== 'string') throw new ArgumentInvalid(`${what}['${k}'] must be a string, got ${JSON.stringify(v)}`);
    out[k] = v;
  }
  return out;
}

/** IoT Hub's system property names in a sample, as the wire stores them. */
const SAMPLE_SYSTEM: Readonly<Record<string, string>> = {
  contentType: '$.content-type', contentEncoding: '$.content-encoding', messageId: '$.message-id', correlationId: '$.correlation-id', userId: '$.user-id',
};

function parseSample(value: unknown): SampleMessage {
  const m = objectBody(value ?? {}, 'message');
  const deviceId = m.deviceId ?? 'sample-device';
  if (typeof deviceId !== 'string') throw new ArgumentInvalid('message.deviceId must be a string');
  const body = m.body === undefined ? '' : typeof m.body === 'string' ? m.body : JSON.stringify(m.body);
  const properties: Record<string, string> = { ...stringBag(m.appProperties, 'message.appProperties') };
  for (const [k, v] of Object.entries(stringBag(m.systemProperties, 'message.systemProperties'))) {
    const stored = SAMPLE_SYSTEM[k];
    if (!stored) throw new ArgumentInvalid(`message.systemProperties: '${k}' is not one of ${Object.keys(SAMPLE_SYSTEM).join(', ')}`);
    properties[stored] = v;
  }
  properties['iothub-connection-device-id'] = deviceId;
  return { deviceId, moduleId: typeof m.moduleId === 'string' ? m.moduleId : '', source: typeof m.source === 'string' ? m.source : 'telemetry', body: Buffer.from(body), properties };
}

export class Routing {
  constructor(private readonly deps: { settings: PipelineSettings; pipeline: Pipeline; store: Store; hubName: string }) {}

  /** Creates or replaces a route; an enabled route starts with the messages after this moment. */
  async putRoute(name: string, body: unknown, opts: { mode?: 'create' | 'upsert'; ifMatch?: string }): Promise<SettingRecord> {
    const before = await this.deps.settings.find('route', name);
    const r = await this.deps.settings.put('route', name, body, opts);
    const wasEnabled = before ? before.doc.isEnabled === true : undefined;
    await this.deps.pipeline.routeChanged(name, r.doc.isEnabled === true, wasEnabled);
    return r;
  }

  async removeRoute(name: string): Promise<void> {
    await this.deps.settings.remove('route', name);
    await this.deps.store.pipeline.deleteCheckpoints(routeCheckpoint(name));
  }

  /**
   * Evaluates a route (stored, by `routeName`, or given as `route`) against a sample message: whether it matches,
   * and the document its endpoint would receive.
   */
  async test(body: unknown): Promise<JsonObject> {
    const req = objectBody(body, 'route test');
    const snap = await this.deps.settings.snapshot();
    let routeName: string;
    let routeDoc: JsonObject;
    if (typeof req.routeName === 'string') {
      // `$fallback` exists even when never stored: IoT Hub's default, telemetry to `events`.
      const stored = req.routeName === FALLBACK_ROUTE ? await this.deps.settings.find('route', FALLBACK_ROUTE) : await this.deps.settings.get('route', req.routeName);
      routeName = req.routeName;
      routeDoc = stored?.doc ?? await routeValidator(FALLBACK_ROUTE, {}, this.deps.settings);
    } else {
      routeName = '$test';
      routeDoc = await routeValidator(routeName, req.route, this.deps.settings);
    }
    const sample = parseSample(req.message);
    const twin = req.message && (req.message as Record<string, unknown>).deviceId !== undefined
      ? await this.deps.store.identities.get({ deviceId: sample.deviceId, moduleId: sample.moduleId }) : undefined;
    const record: SettingRecord = { kind: 'route', name: routeName, doc: routeDoc, createdMs: 0, updatedMs: 0, rev: 0 };
    const testSnap: SettingsSnapshot = { version: -1, byKind: new Map([...snap.byKind, ['route', [record]]]) };
    const table = new RouteTable(testSnap, this.deps.hubName);
    const route = routeName === FALLBACK_ROUTE ? table.fallback : table.routes[0];
    const message = new PipelineMessage('test', {
      sequence: 0, kind: sample.source, deviceId: sample.deviceId, moduleId: sample.moduleId,
      enqueuedTimeMs: Date.now(), properties: sample.properties, body: sample.body,
    });
    const sourceMatches = route.source === message.source;
    const matched = sourceMatches && matches(route, message, twin as IdentityRecord | undefined);
    return {
      result: matched ? 'true' : 'false',
      route: routeName,
      endpoint: route.endpoint,
      ...(sourceMatches ? {} : { reason: `the route's source is ${route.source}, the message's ${message.source}` }),
      ...(matched && route.endpoint !== BUILT_IN_ENDPOINT ? { document: message.toJson({ route: routeName, enrichments: table.enrich(route.endpoint, twin) }) } : {}),
    };
  }
}
export { pipelineMetrics } from './metrics.js';
export { Alerts, alertView, ALERT_SEVERITIES, ALERT_STATUSES, OpenAlertIndex, type AlertPage, type AlertListRequest } from './alerts.js';
export { RulesEngine, RULES_CONSUMER, type RuleErrorContext, type RulesTuning } from './rules.js';
export { ruleValidator } from './rule-settings.js';
export { Wellness, healthProfileValidator, WELLNESS_RULE, HEARTBEAT_TAG_PATH } from './wellness.js';
