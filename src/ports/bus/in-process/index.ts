import { BusClosed, BusNoResponders, BusRemoteError, BusTimeout, type Bus } from '../index.js';
import { checkTimeoutMs, thrownMessage } from '../request-rules.js';
import { subjectTokens } from '../subject.js';
import { Registry, type Listener } from './fabric.js';

interface Subscription extends Listener {
  active: boolean;
  readonly onMessage: (data: Uint8Array, subject: string) => void;
}

interface Server extends Listener {
  readonly handler: (data: Uint8Array) => Promise<Uint8Array>;
  /** False once the serving bus has closed: its answers are lost, as over a network. */
  readonly isLive: () => boolean;
}

/**
 * What several in-process "nodes" share: every subscription and server of every InProcessBus built on it. One per
 * process in embedded mode; tests build two buses on one fabric to act as two nodes.
 */
export class InProcessFabric {
  readonly subscriptions = new Registry<Subscription>();
  readonly servers = new Registry<Server>();
  private turn = 0;

  /** One of the servers of `subject`, taking turns when there are several; undefined when nobody serves it. */
  pickServer(subject: string, tokens: readonly string[]): Server | undefined {
    const candidates = this.servers.matching(subject, tokens);
    if (candidates.length === 0) return undefined;
    this.turn = (this.turn + 1) % Number.MAX_SAFE_INTEGER;
    return candidates[this.turn % candidates.length];
  }
}

/**
 * The embedded Bus: one node on an InProcessFabric (a fresh one unless given). Deliveries run as microtasks, so
 * `publish` never runs a subscriber inside the caller's stack; each delivery and each request gets its own copy of the
 * bytes, as it would over a network.
 */
export class InProcessBus implements Bus {
  private isClosed = false;
  /** Undoes each registration this node made, for close(). */
  private readonly registrations = new Set<() => void>();
  /** Rejects each request this node is waiting on, for close(). */
  private readonly waiting = new Set<(err: Error) => void>();

  constructor(readonly fabric: InProcessFabric = new InProcessFabric()) {}

  async publish(subject: string, data: Uint8Array): Promise<void> {
    this.ensureOpen(`publish to '${subject}'`);
    const tokens = subjectTokens(subject, 'literal');
    for (const sub of this.fabric.subscriptions.matching(subject, tokens)) {
      const copy = new Uint8Array(data);
      queueMicrotask(() => deliver(sub, copy, subject));
    }
  }

  async subscribe(subject: string, onMessage: (data: Uint8Array, subject: string) => void): Promise<() => Promise<void>> {
    this.ensureOpen(`subscribe to '${subject}'`);
    const sub: Subscription = { subject, tokens: subjectTokens(subject, 'pattern'), active: true, onMessage };
    const undo = this.register(() => {
      sub.active = false;
      this.fabric.subscriptions.remove(sub);
    });
    this.fabric.subscriptions.add(sub);
    return async () => undo();
  }

  async request(subject: string, data: Uint8Array, opts: { readonly timeoutMs: number }): Promise<Uint8Array> {
    this.ensureOpen(`request on '${subject}'`);
    const tokens = subjectTokens(subject, 'literal');
    checkTimeoutMs(opts.timeoutMs);
    const server = this.fabric.pickServer(subject, tokens);
    if (server === undefined) throw new BusNoResponders(subject);
    const input = new Uint8Array(data);
    return new Promise<Uint8Array>((resolve, reject) => {
      const fail = (err: Error): void => {
        clearTimeout(timer);
        this.waiting.delete(fail);
        reject(err);
      };
      const timer = setTimeout(() => fail(new BusTimeout(subject, opts.timeoutMs)), opts.timeoutMs);
      this.waiting.add(fail);
      answer(server, input).then(
        (reply) => {
          if (!server.isLive()) return; // the serving node closed: its answer never leaves it
          clearTimeout(timer);
          this.waiting.delete(fail);
          resolve(reply);
        },
        (err: unknown) => {
          if (server.isLive()) fail(new BusRemoteError(subject, thrownMessage(err)));
        },
      );
    });
  }

  async serve(subject: string, handler: (data: Uint8Array) => Promise<Uint8Array>): Promise<() => Promise<void>> {
    this.ensureOpen(`serve '${subject}'`);
    const server: Server = { subject, tokens: subjectTokens(subject, 'pattern'), handler, isLive: () => !this.isClosed };
    const undo = this.register(() => this.fabric.servers.remove(server));
    this.fabric.servers.add(server);
    return async () => undo();
  }

  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    for (const undo of [...this.registrations]) undo();
    for (const fail of [...this.waiting]) fail(new BusClosed('wait for a reply'));
  }

  /** Records how to undo a registration; the returned function undoes it once, whether called first or by close(). */
  private register(undoOnce: () => void): () => void {
    const undo = (): void => {
      if (!this.registrations.delete(undo)) return;
      undoOnce();
    };
    this.registrations.add(undo);
    return undo;
  }

  private ensureOpen(operation: string): void {
    if (this.isClosed) throw new BusClosed(operation);
  }
}

function deliver(sub: Subscription, data: Uint8Array, subject: string): void {
  if (!sub.active) return;
  try {
    sub.onMessage(data, subject);
  } catch {
    // Bus.subscribe: a subscriber's error is its own and must not reach the publisher or the other subscribers.
  }
}

/** Runs the handler outside the requester's stack; a synchronous throw becomes a rejection like an async one. */
async function answer(server: Server, input: Uint8Array): Promise<Uint8Array> {
  await Promise.resolve();
  return new Uint8Array(await server.handler(input));
}
