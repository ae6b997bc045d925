import { connect, ErrorCode, Events, headers, NatsError, type ConnectionOptions, type Msg, type NatsConnection } from 'nats';
import { BusClosed, BusError, BusNoResponders, BusRemoteError, BusTimeout, type Bus } from '../index.js';
import { checkTimeoutMs, thrownMessage } from '../request-rules.js';
import { subjectTokens } from '../subject.js';

/** Marks a reply as a serve handler's error; the body is the thrown message in UTF-8 (headers cannot carry newlines). */
const ERROR_HEADER = 'Corral-Error';
/** Longest error message sent back, so a huge message cannot push the reply past the server's max_payload. */
const MAX_ERROR_CHARS = 64 * 1024;
/** How long close() lets a drain run before it closes at once: a drain waits on the server, which may be gone. */
const DRAIN_LIMIT_MS = 5000;

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

export interface NatsBusOptions {
  /** The connection's name as the NATS server shows it (monitoring, `nats server report connections`). */
  readonly name?: string;
  /** Wait between reconnect attempts to one server; the nats client's default (2 s) when absent. */
  readonly reconnectTimeWaitMs?: number;
}

/**
 * The scale-out Bus on NATS core. A lost connection is retried forever by the nats client (subscriptions and servers
 * come back with it; publishes are buffered meanwhile); nothing is thrown or logged from the background.
 * `serve` joins a queue group named after its subject, so with several servers exactly one gets each request.
 */
export class NatsBus implements Bus {
  private isClosing = false;
  private isConnected = true;
  /** Settles when closing starts, so waits on the server (flushes) end instead of hanging. */
  private readonly closing: Promise<never>;
  private startClosing: () => void = () => undefined;

  private constructor(private readonly nc: NatsConnection) {
    this.closing = new Promise<never>((_resolve, reject) => {
      this.startClosing = () => {
        this.isClosing = true;
        reject(new BusClosed('wait for the NATS server'));
      };
    });
    this.closing.catch(() => undefined); // only ever awaited through a race
    void nc.closed().then(() => this.startClosing());
    void this.watchStatus();
  }

  /** Connects to `url` (`nats://[user:pass@]host:port`); rejects with BusError when the first connection fails. */
  static async connect(url: string, opts: NatsBusOptions = {}): Promise<NatsBus> {
    const options: ConnectionOptions = { servers: url, maxReconnectAttempts: -1 };
    if (opts.name !== undefined) options.name = opts.name;
    if (opts.reconnectTimeWaitMs !== undefined) options.reconnectTimeWait = opts.reconnectTimeWaitMs;
    try {
      return new NatsBus(await connect(options));
    } catch (err) {
      throw new BusError(`cannot connect to NATS at ${redactUrl(url)}: ${thrownMessage(err)}`, { cause: err });
    }
  }

  async publish(subject: string, data: Uint8Array): Promise<void> {
    const operation = `publish to '${subject}'`;
    this.ensureOpen(operation);
    subjectTokens(subject, 'literal');
    this.engine(operation, () => this.nc.publish(subject, data));
  }

  async subscribe(subject: string, onMessage: (data: Uint8Array, subject: string) => void): Promise<() => Promise<void>> {
    const operation = `subscribe to '${subject}'`;
    this.ensureOpen(operation);
    subjectTokens(subject, 'pattern');
    let isActive = true;
    const sub = this.engine(operation, () => this.nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err !== null || !isActive) return;
        try {
          onMessage(msg.data, msg.subject);
        } catch {
          // Bus.subscribe: a subscriber's error is its own and must not reach the connection or other subscribers.
        }
      },
    }));
    await this.registered(operation);
    return async () => {
      isActive = false; // deliveries already in the client are dropped from here on
      if (!sub.isClosed()) sub.unsubscribe();
    };
  }

  async request(subject: string, data: Uint8Array, opts: { readonly timeoutMs: number }): Promise<Uint8Array> {
    this.ensureOpen(`request on '${subject}'`);
    subjectTokens(subject, 'literal');
    checkTimeoutMs(opts.timeoutMs);
    let reply: Msg;
    try {
      reply = await this.nc.request(subject, data, { timeout: opts.timeoutMs });
    } catch (err) {
      throw this.requestError(subject, opts.timeoutMs, err);
    }
    if (reply.headers?.has(ERROR_HEADER)) throw new BusRemoteError(subject, fromUtf8.decode(reply.data));
    return reply.data;
  }

  async serve(subject: string, handler: (data: Uint8Array) => Promise<Uint8Array>): Promise<() => Promise<void>> {
    const operation = `serve '${subject}'`;
    this.ensureOpen(operation);
    subjectTokens(subject, 'pattern');
    const sub = this.engine(operation, () => this.nc.subscribe(subject, {
      queue: subject,
      callback: (err, msg) => {
        if (err === null) void answer(msg, handler);
      },
    }));
    await this.registered(operation);
    // A drain, not an unsubscribe: requests the server already routed here are still answered.
    return async () => {
      if (!sub.isClosed()) await sub.drain().catch(() => undefined);
    };
  }

  async close(): Promise<void> {
    if (!this.isClosing) {
      this.startClosing();
      await this.shutDown();
    }
    await this.nc.closed();
  }

  private async shutDown(): Promise<void> {
    if (this.nc.isClosed()) return;
    if (this.isConnected) {
      let timer: NodeJS.Timeout | undefined;
      const limit = new Promise<void>((resolve) => { timer = setTimeout(resolve, DRAIN_LIMIT_MS); });
      await Promise.race([this.nc.drain().catch(() => undefined), limit]);
      clearTimeout(timer);
    }
    if (!this.nc.isClosed()) await this.nc.close().catch(() => undefined);
  }

  /** Follows connection state for close(); ends by itself when the connection closes. */
  private async watchStatus(): Promise<void> {
    try {
      for await (const status of this.nc.status()) {
        if (status.type === Events.Disconnect) this.isConnected = false;
        if (status.type === Events.Reconnect) this.isConnected = true;
      }
    } catch {
      // The iterator only ends with the connection, which close() and closed() already account for.
    }
  }

  /**
   * Resolves once the server has seen this connection's subscriptions. While disconnected, the client sends them on
   * reconnect, so a failed round trip still leaves the subscription in place; only closing ends the wait early.
   */
  private async registered(operation: string): Promise<void> {
    try {
      await Promise.race([this.nc.flush(), this.closing]);
    } catch {
      this.ensureOpen(operation);
    }
  }

  private requestError(subject: string, timeoutMs: number, err: unknown): BusError {
    if (this.isClosing) return new BusClosed(`wait for a reply on '${subject}'`);
    if (err instanceof NatsError) {
      if (err.code === ErrorCode.NoResponders) return new BusNoResponders(subject);
      if (err.code === ErrorCode.Timeout) return new BusTimeout(subject, timeoutMs);
    }
    return asBusError(`request on '${subject}'`, err);
  }

  /** Runs a synchronous client call, naming its failure in the Bus's own errors. */
  private engine<T>(operation: string, call: () => T): T {
    try {
      return call();
    } catch (err) {
      throw asBusError(operation, err);
    }
  }

  private ensureOpen(operation: string): void {
    if (this.isClosing || this.nc.isClosed()) throw new BusClosed(operation);
  }
}

/** Runs the handler for one request and sends its answer, or its error under ERROR_HEADER. */
async function answer(msg: Msg, handler: (data: Uint8Array) => Promise<Uint8Array>): Promise<void> {
  let reply: Uint8Array;
  try {
    reply = await handler(msg.data);
  } catch (err) {
    respondError(msg, thrownMessage(err));
    return;
  }
  try {
    msg.respond(reply);
  } catch (err) {
    respondError(msg, `reply on '${msg.subject}' could not be sent: ${thrownMessage(err)}`);
  }
}

function respondError(msg: Msg, message: string): void {
  const hdrs = headers();
  hdrs.set(ERROR_HEADER, 'handler-error');
  try {
    msg.respond(utf8.encode(message.slice(0, MAX_ERROR_CHARS)), { headers: hdrs });
  } catch {
    // The connection is gone: the requester sees a timeout, which is all a lost reply can tell it.
  }
}

function asBusError(operation: string, err: unknown): BusError {
  if (err instanceof BusError) return err;
  if (err instanceof NatsError && (err.code === ErrorCode.ConnectionClosed || err.code === ErrorCode.ConnectionDraining)) {
    return new BusClosed(operation);
  }
  return new BusError(`bus could not ${operation}: ${thrownMessage(err)}`, { cause: err });
}

/** The URL without its password, for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable URL)';
  }
}
