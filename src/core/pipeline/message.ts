/**
 * An EventLog record as the pipeline sees it: its properties split into system and application properties, its body
 * decoded once (JSON when it parses as JSON, else text, else base64), and its JSON rendering, which every endpoint,
 * consumer group and `corral events tail` carries (docs/pipeline.md).
 */

import { isUtf8 } from 'node:buffer';
import { isoTime } from '../../ports/clock/index.js';
import type { StoredEvent } from '../../ports/eventlog/index.js';
import type { JsonObject, JsonValue } from '../../ports/store/index.js';

/** Stored properties with this prefix are system properties written by the device (`$.content-type`). */
const SYSTEM_PREFIX = '$.';
/** Annotations the hub adds (`iothub-connection-device-id`, `iothub-enqueuedtime`, `iothub-message-source`, …). */
const ANNOTATION_PREFIX = 'iothub-';

/** IoT Hub's routing-query names for the system properties (`$contentType`, `$connectionDeviceId`, …). */
const ROUTING_NAMES: Readonly<Record<string, string>> = {
  'message-id': 'messageId', 'correlation-id': 'correlationId', 'user-id': 'userId', to: 'to',
  'content-type': 'contentType', 'content-encoding': 'contentEncoding', 'absolute-expiry-time': 'absoluteExpiryTime',
  'interface-id': 'iothub-interface-id', 'component-name': 'dt-subject', 'output-name': 'outputName',
  'iothub-connection-device-id': 'connectionDeviceId', 'iothub-connection-module-id': 'connectionModuleId',
  'iothub-connection-auth-method': 'connectionAuthMethod', 'iothub-connection-auth-generation-id': 'connectionDeviceGenerationId',
  'iothub-enqueuedtime': 'enqueuedTime',
};

/** The last enqueued time formatted: records of one commit share their millisecond. */
const lastIso = { ms: Number.NaN, text: '' };

export interface JsonExtra {
  readonly route?: string;
  readonly enrichments?: Readonly<Record<string, string>>;
}

export type BodyEncoding = 'json' | 'utf-8' | 'base64';

export interface DecodedBody {
  readonly encoding: BodyEncoding;
  /** The parsed JSON, the text, or the base64 text. */
  readonly value: JsonValue;
  /** With `json`: the text it was parsed from (a leading byte order mark dropped), to carry on without serialising. */
  readonly text?: string;
}

/**
 * JSON when the content type is absent or JSON and the bytes parse (Corral reads `$body` without the content type
 * IoT Hub insists on, since the SDKs send none by default); UTF-8 text when they decode; else base64.
 */
export function decodeBody(body: Uint8Array, contentType: string | undefined, utf8 = isUtf8(body)): DecodedBody {
  const bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (!utf8) return { encoding: 'base64', value: bytes.toString('base64') };
  let text = bytes.toString('utf8');
  // A leading byte order mark is dropped, as UTF-8 decoders do: JSON.parse would refuse it.
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const jsonish = contentType === undefined || contentType === '' || /json/i.test(contentType);
  if (jsonish && text.length > 0 && mayBeJson(text)) {
    try {
      return { encoding: 'json', value: JSON.parse(text) as JsonValue, text };
    } catch { /* not JSON: text */ }
  }
  return { encoding: 'utf-8', value: text };
}

/**
 * Whether the text's first non-space character can start a JSON document: a cheap test that spares most non-JSON
 * bodies a JSON.parse that throws (an exception costs far more than the parse).
 */
function mayBeJson(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) continue;
    // { [ " - 0-9 t f n
    return c === 0x7b || c === 0x5b || c === 0x22 || c === 0x2d || (c >= 0x30 && c <= 0x39) || c === 0x74 || c === 0x66 || c === 0x6e;
  }
  return false;
}

/** A record read from a partition, with what every consumer needs decoded once. */
export class PipelineMessage {
  private decoded: DecodedBody | undefined;
  private systemBag: Record<string, string> | undefined;
  private appBag: Record<string, string> | undefined;

  constructor(readonly partition: string, readonly event: StoredEvent) {}

  get source(): string {
    return this.event.kind;
  }

  get key(): { deviceId: string; moduleId: string } {
    return { deviceId: this.event.deviceId, moduleId: this.event.moduleId };
  }

  get body(): DecodedBody {
    return (this.decoded ??= decodeBody(this.event.body, this.event.properties['$.content-type'], this.isUtf8Body()));
  }

  /** The parsed JSON body, or undefined when the body is not JSON (found without encoding other bodies). */
  get json(): JsonValue | undefined {
    if (!this.decoded && !this.isUtf8Body()) return undefined;
    return this.body.encoding === 'json' ? this.body.value : undefined;
  }

  private utf8: boolean | undefined;

  /** Whether the body is valid UTF-8, checked once. */
  private isUtf8Body(): boolean {
    return (this.utf8 ??= isUtf8(this.event.body));
  }

  /** System properties and annotations by their wire names (`content-type`, `iothub-connection-device-id`). */
  get systemProperties(): Readonly<Record<string, string>> {
    this.split();
    return this.systemBag as Record<string, string>;
  }

  /** Application properties. */
  get appProperties(): Readonly<Record<string, string>> {
    this.split();
    return this.appBag as Record<string, string>;
  }

  private routingBag: Record<string, string> | undefined;

  /** System properties by IoT Hub's routing-query names too (`contentType`, `connectionDeviceId`, …); computed once. */
  routingSystemProperties(): Readonly<Record<string, string>> {
    if (this.routingBag) return this.routingBag;
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(this.systemProperties)) {
      out[k] = v;
      const alias = ROUTING_NAMES[k];
      if (alias) out[alias] = v;
    }
    out.connectionDeviceId ??= this.event.deviceId;
    if (this.event.moduleId) out.connectionModuleId ??= this.event.moduleId;
    out.enqueuedTime ??= this.enqueuedTimeIso;
    this.routingBag = out;
    return out;
  }

  /** The record as one JSON document (docs/pipeline.md), with the route's enrichments when it has some. */
  toJson(extra?: JsonExtra): JsonObject {
    return JSON.parse(this.toJsonText(extra)) as JsonObject;
  }

  /**
   * The document as JSON text: the hot path of every route, so it is written field by field (every field but the
   * body is the hub's own) and a JSON body goes in as the device sent it, never parsed and serialised again.
   */
  toJsonText(extra?: JsonExtra): string {
    const e = this.event;
    let text = `{"partition":${JSON.stringify(this.partition)},"sequenceNumber":${e.sequence},"enqueuedTime":"${this.enqueuedTimeIso}"`
      + `,"source":${JSON.stringify(e.kind)},"deviceId":${JSON.stringify(e.deviceId)}`;
    if (e.moduleId) text += `,"moduleId":${JSON.stringify(e.moduleId)}`;
    if (extra?.route) text += `,"route":${JSON.stringify(extra.route)}`;
    text += `,"systemProperties":${JSON.stringify(this.systemProperties)},"properties":${JSON.stringify(this.appProperties)}`;
    if (extra?.enrichments && Object.keys(extra.enrichments).length > 0) text += `,"enrichments":${JSON.stringify(extra.enrichments)}`;
    const body = this.body;
    return `${text},"bodyEncoding":"${body.encoding}","body":${body.text ?? JSON.stringify(body.value)}}`;
  }

  /** The enqueued time in ISO 8601: the annotation telemetry carries, else formatted (once per ms in a row). */
  get enqueuedTimeIso(): string {
    const annotated = this.event.properties['iothub-enqueuedtime'];
    if (annotated !== undefined) return annotated;
    if (lastIso.ms !== this.event.enqueuedTimeMs) { lastIso.ms = this.event.enqueuedTimeMs; lastIso.text = isoTime(lastIso.ms); }
    return lastIso.text;
  }

  private split(): void {
    if (this.systemBag) return;
    const system: Record<string, string> = {};
    const app: Record<string, string> = {};
    const props = this.event.properties;
    for (const k in props) {
      const v = props[k];
      if (k.startsWith(SYSTEM_PREFIX)) system[k.slice(SYSTEM_PREFIX.length)] = v;
      else if (k.startsWith(ANNOTATION_PREFIX)) system[k] = v;
      else app[k] = v;
    }
    this.systemBag = system;
    this.appBag = app;
  }
}
