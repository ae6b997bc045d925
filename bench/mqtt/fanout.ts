import { Agent } from 'node:https';
import { performance } from 'node:perf_hooks';
import type { SecureContext } from 'node:tls';
import { API_VERSION, call } from './fleet.js';
import { openClient, openMany, parsePublish, PUBACK, PUBLISH, publishPacket, subscribePacket, type Endpoint, type RawClient } from './wire.js';

/**
 * Figure 4: N connected subscribers, one message each. `subscribers` connects them; `delivery` then runs a sender
 * and resolves once every subscriber has its message, with the time from the sender's first send.
 */

const CONNECT_CONCURRENCY = 100;
/** The whole fan-out must finish in this long. */
export const FANOUT_TIMEOUT_MS = 300_000;

export interface Subscribers {
  readonly clients: RawClient[];
  /** Resolves with performance.now() of the moment the last subscriber got its first message. */
  readonly allReceived: Promise<number>;
}

/** Connects `count` clients, each subscribed to `topicOf(i)`; the first PUBLISH on a topic starting with `prefixOf(i)` counts. */
export async function subscribers(o: {
  endpoint: Endpoint; count: number; connectOf: (i: number) => Buffer; topicOf: (i: number) => string; prefixOf: (i: number) => string;
  progress: (done: number) => void;
}): Promise<Subscribers> {
  const clients = await openMany(o.count, CONNECT_CONCURRENCY, (i) => openClient(o.endpoint, o.connectOf(i), { subscribe: subscribePacket(o.topicOf(i), 0) }), o.progress);
  let received = 0;
  let last = 0;
  let done: (at: number) => void = () => {};
  let fail: (err: Error) => void = () => {};
  const allReceived = new Promise<number>((resolve, reject) => { done = resolve; fail = reject; });
  clients.forEach((c, i) => {
    const prefix = o.prefixOf(i);
    let got = false;
    c.handler.current = (type, flags, body) => {
      if (type !== PUBLISH || got) return;
      if (!parsePublish(flags, body).topic.startsWith(prefix)) return;
      got = true;
      last = performance.now();
      if (++received === o.count) done(last);
    };
    c.socket.once('close', () => { if (!got) fail(new Error(`subscriber ${i}'s connection closed before its message`)); });
  });
  return { clients, allReceived };
}

/**
 * The peer's sender: one connection publishing `count` QoS 1 messages (topic `topicOf(i)`, payload `payloadOf(i)`)
 * with up to `window` unacknowledged, as fast as the broker acknowledges them. Resolves with performance.now() of
 * the first send.
 */
export async function publishAll(o: { endpoint: Endpoint; connect: Buffer; count: number; window: number; topicOf: (i: number) => string; payloadOf: (i: number) => Buffer }): Promise<{ firstSentAt: number; client: RawClient }> {
  const client = await openClient(o.endpoint, o.connect);
  const packets = Array.from({ length: o.count }, (_, i) => publishPacket(o.topicOf(i), o.payloadOf(i), 1, (i % 65535) + 1));
  let next = 0;
  let acked = 0;
  let resolveAll: () => void = () => {};
  const allAcked = new Promise<void>((resolve) => { resolveAll = resolve; });
  client.handler.current = (type) => {
    if (type !== PUBACK) return;
    if (++acked === o.count) resolveAll();
    if (next < o.count) client.socket.write(packets[next++]);
  };
  const firstSentAt = performance.now();
  while (next < Math.min(o.window, o.count)) client.socket.write(packets[next++]);
  await allAcked;
  return { firstSentAt, client };
}

/**
 * Corral's sender: `PATCH /twins/{id}` once for each id, `callers` at a time on keep-alive connections. Resolves
 * with performance.now() of the first request; any answer but 200 fails the run.
 */
export async function patchEach(o: {
  host: string; secureContext: SecureContext; authorization: string; ids: readonly string[]; callers: number; body: (i: number) => string;
}): Promise<{ firstSentAt: number; lastAnsweredAt: number }> {
  // One context for every connection: without it each TLS connection parses the whole trust store again.
  const agent = new Agent({ keepAlive: true, maxSockets: o.callers, maxFreeSockets: o.callers, secureContext: o.secureContext });
  const headers = { authorization: o.authorization, 'content-type': 'application/json; charset=utf-8', 'if-match': '*' };
  let next = 0;
  let lastAnsweredAt = 0;
  const firstSentAt = performance.now();
  const worker = async () => {
    while (next < o.ids.length) {
      const i = next++;
      const res = await call(o.host, 'PATCH', `/twins/${encodeURIComponent(o.ids[i])}?api-version=${API_VERSION}`, headers, o.body(i), agent);
      if (res.status !== 200) throw new Error(`PATCH /twins/${o.ids[i]}: HTTP ${res.status} ${res.text.slice(0, 500)}`);
      lastAnsweredAt = performance.now();
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(o.callers, o.ids.length) }, worker));
  } finally {
    agent.destroy();
  }
  return { firstSentAt, lastAnsweredAt };
}
