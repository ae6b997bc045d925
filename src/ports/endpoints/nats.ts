import { connect, ErrorCode, headers, NatsError, type ConnectionOptions, type JetStreamClient, type MsgHdrs, type NatsConnection } from 'nats';
import { redactUrl } from '../bus/nats/index.js';
import { EndpointFailed, type Endpoint, type EndpointBatch, type EndpointMessage, type EndpointSpec } from './index.js';

export type NatsEndpointSpec = Extract<EndpointSpec, { readonly type: 'nats' }>;

const DEFAULT_NATS_PORT = 4222;
/** Where a subject takes the record's device id. */
export const DEVICE_ID_PLACEHOLDER = '{deviceId}';
/** How long one delivery may wait on the server (flush or every JetStream ack) before it is called retryable. */
const DELIVER_TIMEOUT_MS = 10_000;
/** How long close() lets a drain run before it closes at once: a drain waits on the server, which may be gone. */
const DRAIN_LIMIT_MS = 5000;
/** What a subject token cannot hold: the separator, wildcards, whitespace and control characters. */
const NOT_IN_TOKEN = /[.*>\s\x00-\x1f\x7f]/g;

const utf8 = new TextEncoder();

/**
 * Publishes each record as one NATS message on its own connection, opened at the first delivery (a failed open is
 * retryable). Core NATS: everything is published, then one flush. JetStream: every ack is awaited; `Nats-Msg-Id` is
 * `partition:sequence` so the stream drops redeliveries; no stream on the subject is not retryable.
 */
export class NatsEndpoint implements Endpoint {
  private connection: Promise<NatsConnection> | undefined;
  private isClosed = false;
  private readonly timeoutMs: number;

  /** `timeoutMs` bounds the wait for a connection, a flush or the acks of one delivery (DELIVER_TIMEOUT_MS by default). */
  constructor(private readonly name: string, private readonly spec: NatsEndpointSpec, opts: { readonly timeoutMs?: number } = {}) {
    this.timeoutMs = opts.timeoutMs ?? DELIVER_TIMEOUT_MS;
  }

  async deliver(batch: EndpointBatch): Promise<void> {
    if (batch.messages.length === 0) return;
    const nc = await this.connected();
    if (nc.isClosed()) {
      // Closed for good by the server (an expired credential, say): the next delivery opens a new connection.
      this.connection = undefined;
      throw new EndpointFailed(this.name, `the connection to NATS at ${redactUrl(this.spec.url)} was closed`, true);
    }
    const deadline = new Deadline(this.timeoutMs);
    try {
      if (this.spec.jetstream === true) await deadline.race(this.publishToStream(nc.jetstream({ timeout: this.timeoutMs }), batch));
      else await deadline.race(this.publishAndFlush(nc, batch));
    } catch (err) {
      throw this.failure(err);
    } finally {
      deadline.clear();
    }
  }

  async close(): Promise<void> {
    this.isClosed = true;
    const pending = this.connection;
    this.connection = undefined;
    const nc = await pending?.catch(() => undefined);
    if (nc === undefined || nc.isClosed()) return;
    const limit = new Deadline(DRAIN_LIMIT_MS);
    await limit.race(nc.drain()).catch(() => undefined);
    limit.clear();
    if (!nc.isClosed()) await nc.close().catch(() => undefined);
  }

  private async publishAndFlush(nc: NatsConnection, batch: EndpointBatch): Promise<void> {
    for (const m of batch.messages) {
      nc.publish(subjectFor(this.spec.subject, m.deviceId), utf8.encode(m.json), { headers: recordHeaders(batch.route, m) });
    }
    await nc.flush();
  }

  private async publishToStream(js: JetStreamClient, batch: EndpointBatch): Promise<void> {
    // Headers first: one that throws must do so before any publish is in flight, not leave acks nobody awaits.
    const outgoing = batch.messages.map((m) => ({ m, subject: subjectFor(this.spec.subject, m.deviceId), hdrs: recordHeaders(batch.route, m) }));
    // All in flight at once (one connection keeps them in order); every ack is awaited before the first error counts.
    const acks = await Promise.allSettled(outgoing.map(({ m, subject, hdrs }) => js.publish(subject, utf8.encode(m.json), {
      headers: hdrs,
      msgID: `${m.partition}:${m.sequence}`,
    })));
    const failed = acks.find((a): a is PromiseRejectedResult => a.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }

  /** The connection, opened on first use and again after a failed open. */
  private connected(): Promise<NatsConnection> {
    if (this.isClosed) return Promise.reject(new EndpointFailed(this.name, 'endpoint is closed', true));
    // Reconnects forever once connected: publishes wait in the client meanwhile, and deliver's deadline bounds them.
    const open = async (): Promise<NatsConnection> => connect({ ...serverOptions(this.spec.url), name: `corral-endpoint-${this.name}`, maxReconnectAttempts: -1, timeout: this.timeoutMs });
    this.connection ??= open().catch((err: unknown) => {
      this.connection = undefined;
      throw new EndpointFailed(this.name, `cannot connect to NATS at ${redactUrl(this.spec.url)}: ${reason(err)}`, true, { cause: err });
    });
    return this.connection;
  }

  private failure(err: unknown): EndpointFailed {
    if (err instanceof EndpointFailed) return err;
    const subject = this.spec.subject;
    if (err instanceof DeadlineExceeded) return new EndpointFailed(this.name, `NATS gave no answer on '${subject}' within ${err.ms} ms`, true);
    if (err instanceof NatsError) {
      if (err.code === ErrorCode.NoResponders && this.spec.jetstream === true) {
        return new EndpointFailed(this.name, `no JetStream stream takes subject '${subject}'`, false, { cause: err });
      }
      if (err.code === ErrorCode.Timeout) return new EndpointFailed(this.name, `JetStream ack on '${subject}' timed out`, true, { cause: err });
      const api = err.jsError();
      if (api !== null) {
        // JetStream's own refusals: 503 (no quorum, temporarily unavailable) may pass; 4xx (too big, sealed) will not.
        return new EndpointFailed(this.name, `JetStream refused a message on '${subject}': ${api.description} (${api.code})`, api.code >= 500, { cause: err });
      }
      if (err.code === ErrorCode.MaxPayloadExceeded || err.code === ErrorCode.BadHeader || err.code === ErrorCode.BadSubject) {
        return new EndpointFailed(this.name, `NATS refused a message on '${subject}': ${err.message}`, false, { cause: err });
      }
      if (err.isPermissionError()) return new EndpointFailed(this.name, `NATS denies publishing on '${subject}': ${err.message}`, false, { cause: err });
    }
    return new EndpointFailed(this.name, `publish on '${subject}' failed: ${reason(err)}`, true, { cause: err });
  }
}

/** The subject for one record: `{deviceId}` becomes the device id with what a token cannot hold replaced by '_'. */
export function subjectFor(subject: string, deviceId: string): string {
  if (!subject.includes(DEVICE_ID_PLACEHOLDER)) return subject;
  const token = deviceId.length === 0 ? '_' : deviceId.replace(NOT_IN_TOKEN, '_');
  return subject.replaceAll(DEVICE_ID_PLACEHOLDER, token);
}

/**
 * The server and credentials in `nats://[user:password@]host[:port]` (`nats://token@host` for a token), given to the
 * client apart: it ignores credentials in a server URL, and a numeric password would be read as the port.
 */
function serverOptions(text: string): ConnectionOptions {
  const url = new URL(text);
  const servers = `${url.hostname}:${url.port || DEFAULT_NATS_PORT}`;
  const user = decodeURIComponent(url.username);
  const pass = decodeURIComponent(url.password);
  if (user === '') return { servers };
  return pass === '' ? { servers, token: user } : { servers, user, pass };
}

function recordHeaders(route: string, m: EndpointMessage): MsgHdrs {
  const h = headers();
  h.set('corral-partition', m.partition);
  h.set('corral-sequence', String(m.sequence));
  h.set('corral-device-id', m.deviceId);
  h.set('corral-module-id', m.moduleId);
  h.set('corral-source', m.source);
  h.set('corral-route', route);
  return h;
}

function reason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

class DeadlineExceeded extends Error {
  constructor(readonly ms: number) {
    super(`deadline of ${ms} ms passed`);
  }
}

/** A timer that a promise can be raced against, so a wait on a silent server ends. */
class Deadline {
  private timer: NodeJS.Timeout | undefined;
  private readonly expired: Promise<never>;

  constructor(ms: number) {
    this.expired = new Promise<never>((_resolve, reject) => {
      this.timer = setTimeout(() => reject(new DeadlineExceeded(ms)), ms);
    });
    this.expired.catch(() => undefined); // only ever awaited through a race
  }

  race<T>(work: Promise<T>): Promise<T> {
    return Promise.race([work, this.expired]);
  }

  clear(): void {
    clearTimeout(this.timer);
  }
}
