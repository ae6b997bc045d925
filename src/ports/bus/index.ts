/**
 * The cross-node message bus. Method calls reach the node holding a device's connection through `request`/`serve`;
 * desired-property notices, C2D pushes and "disconnect device X" fan out to every node through `publish`/`subscribe`.
 *
 * Subjects are NATS-style: tokens separated by '.', none empty, no whitespace. `subscribe` and `serve` may use `*`
 * (exactly one token) and a final `>` (one or more tokens); `publish` and `request` take literal subjects only. Build
 * a token from an outside id with `subjectToken`, never by pasting the id in.
 */
export interface Bus {
  /** Fire-and-forget to every current subscriber of `subject` on every node; resolves once handed to the bus. */
  publish(subject: string, data: Uint8Array): Promise<void>;
  /**
   * Delivers every later publish matching `subject` (registered on the whole fabric when this resolves), in publish
   * order per publisher. Each delivery gets its own bytes. A throwing `onMessage` affects no other delivery; its error
   * is dropped, so handlers own their errors. The returned function unsubscribes: once it resolves, no more deliveries.
   */
  subscribe(subject: string, onMessage: (data: Uint8Array, subject: string) => void): Promise<() => Promise<void>>;
  /**
   * Asks the server of `subject` and resolves with its answer. Rejects with BusNoResponders at once when nobody serves
   * it, BusTimeout after `timeoutMs` (> 0), BusRemoteError when the handler threw, BusClosed when this bus closes first.
   */
  request(subject: string, data: Uint8Array, opts: { readonly timeoutMs: number }): Promise<Uint8Array>;
  /**
   * Answers requests on `subject` (one server per subject is expected; with several, exactly one answers each request).
   * A handler that throws makes the requester reject with BusRemoteError carrying the thrown message. The returned
   * function stops serving new requests; answers already being worked on are still sent.
   */
  serve(subject: string, handler: (data: Uint8Array) => Promise<Uint8Array>): Promise<() => Promise<void>>;
  /** Ends this node's subscriptions and servers; idempotent. Every later call, and every pending request, rejects with BusClosed. */
  close(): Promise<void>;
}

/** The family of Bus errors; an adapter wraps any engine failure it cannot name more precisely in this class. */
export class BusError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Nobody serves the subject of a request. */
export class BusNoResponders extends BusError {
  constructor(readonly subject: string) {
    super(`no server for bus subject '${subject}'`);
  }
}

/** The server of a request did not answer within its time. */
export class BusTimeout extends BusError {
  constructor(readonly subject: string, readonly timeoutMs: number) {
    super(`no answer on bus subject '${subject}' within ${timeoutMs} ms`);
  }
}

/** The server's handler threw; `message` is exactly the thrown error's message. */
export class BusRemoteError extends BusError {
  constructor(readonly subject: string, message: string) {
    super(message);
  }
}

/** The bus was closed (by `close()`, or by its engine for good) before or while the call ran. */
export class BusClosed extends BusError {
  constructor(operation: string) {
    super(`bus is closed: cannot ${operation}`);
  }
}

export { subjectToken, idFromSubjectToken } from './subject.js';
