/**
 * The Endpoints port: where routing delivers. An endpoint makes one attempt per call and says whether trying again
 * could help; retries, back-off, dead-lettering and checkpoints are core's (core/pipeline). Messages arrive already
 * rendered as JSON objects, so every endpoint carries the same document.
 */

export interface EndpointMessage {
  /** The EventLog partition and sequence: (partition, sequence) identifies a record for ever (idempotent writes). */
  readonly partition: string;
  readonly sequence: number;
  readonly deviceId: string;
  readonly moduleId: string;
  /** The route's source: 'telemetry', 'twinChange', 'lifecycle', 'connectionState', 'jobs', 'alerts'. */
  readonly source: string;
  readonly enqueuedTimeMs: number;
  /** The whole message as one JSON object text (see docs/pipeline.md for its fields). */
  readonly json: string;
}

export interface EndpointBatch {
  /** The route that matched (webhooks send it as `x-corral-route`; PostgreSQL stores it). */
  readonly route: string;
  readonly messages: readonly EndpointMessage[];
}

export type EndpointSpec =
  /**
   * HTTPS POST of a JSON array, `content-type: application/json`. `headers` are added to each request (an
   * Authorization header, say); with `secret`, `x-corral-signature: sha256=<hex HMAC-SHA256 of the body>`.
   * `caCertificate` (PEM) is trusted besides the system's CAs. Plain http is refused.
   */
  | { readonly type: 'webhook'; readonly url: string; readonly headers?: Readonly<Record<string, string>>; readonly secret?: string; readonly caCertificate?: string; readonly timeoutMs?: number }
  /**
   * One NATS message per record on `subject`, the JSON as payload, headers `corral-partition`, `corral-sequence`,
   * `corral-device-id`, `corral-source`; with `jetstream`, each is published to JetStream and its ack awaited
   * (`Nats-Msg-Id` = partition:sequence, so the stream drops redeliveries), else published and flushed.
   */
  | { readonly type: 'nats'; readonly url: string; readonly subject: string; readonly jetstream?: boolean }
  /**
   * Rows in a PostgreSQL table (created when absent): `(partition, sequence, route)` is its primary key, so a
   * redelivery inserts nothing.
   */
  | { readonly type: 'postgres'; readonly url: string; readonly table: string; readonly schema?: string };

export interface Endpoint {
  /** One attempt: resolves when every message is accepted by the far side, else rejects with EndpointFailed. */
  deliver(batch: EndpointBatch): Promise<void>;
  close(): Promise<void>;
}

/** A delivery attempt failed; `retryable` is false when trying the same batch again cannot help (a 4xx, say). */
export class EndpointFailed extends Error {
  constructor(readonly endpoint: string, message: string, readonly retryable: boolean, options?: ErrorOptions) {
    super(`endpoint '${endpoint}': ${message}`, options);
    this.name = new.target.name;
  }
}

/** A spec document was refused; the message names the field and the value seen (never a secret's or header's value). */
export class InvalidEndpointSpec extends Error {
  constructor(readonly field: string, message: string) {
    super(`endpoint spec: ${field} ${message}`);
    this.name = new.target.name;
  }
}

/** Checks a JSON document into an EndpointSpec; throws InvalidEndpointSpec naming the field. */
export { checkEndpointSpec } from './spec.js';
/** The adapter for a spec, connecting lazily (at its first delivery); throws InvalidEndpointSpec for a bad one. */
export { openEndpoint } from './open.js';
