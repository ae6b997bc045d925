import { performance } from 'node:perf_hooks';
import { closeAll, connectPacket, openClient, openMany, parsePublish, PUBLISH, publishPacket, subscribePacket, type Endpoint, type RawClient } from './wire.js';

/**
 * Figure 3's devices and its peer's whole loop. Devices answer a request the moment it arrives, QoS 0 both ways,
 * as IoT Hub's method topics are.
 */

const CONNECT_CONCURRENCY = 50;
const ANSWER = Buffer.from('{"ok":true}');
const REPLY_TIMEOUT_MS = 10_000;

/**
 * Connects devices that subscribe to `subscribeTopic(i)` and answer every PUBLISH whose topic carries `$rid=R` on
 * `answerTopic(R)`. Resolves with the connected clients (close them with closeAll).
 */
export async function answeringDevices(o: {
  endpoint: Endpoint; count: number; connectOf: (i: number) => Buffer; subscribeTopic: (i: number) => string; answerTopic: (rid: string) => string;
}): Promise<RawClient[]> {
  const clients = await openMany(o.count, CONNECT_CONCURRENCY, (i) => openClient(o.endpoint, o.connectOf(i), { subscribe: subscribePacket(o.subscribeTopic(i), 0) }));
  for (const c of clients) {
    c.handler.current = (type, flags, body) => {
      if (type !== PUBLISH) return;
      const { topic } = parsePublish(flags, body);
      const at = topic.lastIndexOf('$rid=');
      if (at < 0) return;
      const rid = decodeURIComponent(topic.slice(at + '$rid='.length).split('&')[0]);
      c.socket.write(publishPacket(o.answerTopic(rid), ANSWER, 0));
    };
  }
  return clients;
}

export interface RttResult {
  readonly calls: number;
  readonly perSecond: number;
  readonly latenciesMs: Float64Array;
}

/**
 * The peer over a plain broker: C requesters, each on its own connection subscribed to `bench/replies/<c>/#`,
 * each in a closed loop publishing a request to device d's topic (round robin over the devices) and waiting for
 * the reply on its own topic. A warm-up runs first and is not counted.
 */
export async function brokerRequestReply(o: {
  endpoint: Endpoint; requesters: number; devices: readonly string[]; warmupSeconds: number; seconds: number;
  requestTopic: (deviceId: string, rid: string) => string;
}): Promise<RttResult> {
  const clients = await openMany(o.requesters, CONNECT_CONCURRENCY, (c) => openClient(o.endpoint, connectAnonymous(`bench-requester-${c}`), {
    subscribe: subscribePacket(`bench/replies/${c}/#`, 0),
  }));
  let nextDevice = 0;
  const latencies: number[] = [];
  const started = performance.now();
  const countFrom = started + o.warmupSeconds * 1000;
  const stopAt = countFrom + o.seconds * 1000;
  const REQUEST = Buffer.from('null');
  const loop = (c: number) => new Promise<void>((resolve, reject) => {
    const client = clients[c];
    let n = 0;
    let sentAt = 0;
    const sendNext = () => {
      const now = performance.now();
      if (now >= stopAt) { clearTimeout(timer); resolve(); return; }
      const rid = `${c}/${++n}`;
      sentAt = now;
      const device = o.devices[nextDevice++ % o.devices.length];
      client.socket.write(publishPacket(o.requestTopic(device, rid), REQUEST, 0));
      timer.refresh();
    };
    const timer = setTimeout(() => reject(new Error(`requester ${c}: no reply in ${REPLY_TIMEOUT_MS} ms`)), REPLY_TIMEOUT_MS);
    client.socket.once('close', () => { clearTimeout(timer); reject(new Error(`the broker closed requester ${c}'s connection`)); });
    client.handler.current = (type, flags, body) => {
      if (type !== PUBLISH) return;
      const { topic } = parsePublish(flags, body);
      if (!topic.endsWith(`$rid=${c}/${n}`)) return; // a late answer to an earlier request: none are expected
      const now = performance.now();
      if (now >= countFrom && now <= stopAt) latencies.push(now - sentAt);
      sendNext();
    };
    sendNext();
  });
  try {
    await Promise.all(clients.map((_, c) => loop(c)));
  } finally {
    await closeAll(clients);
  }
  const sorted = Float64Array.from(latencies).sort();
  return { calls: sorted.length, perSecond: sorted.length / o.seconds, latenciesMs: sorted };
}

/** An anonymous CONNECT (the broker allows it). */
export function connectAnonymous(clientId: string): Buffer {
  return connectPacket({ clientId, keepalive: 300 });
}
