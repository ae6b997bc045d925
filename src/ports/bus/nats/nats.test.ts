import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net';
import { test } from 'node:test';
import { natsUrl, requireNats, skipReason } from '../../../../test/support/services.js';
import { busContract } from '../contract.js';
import { BusClosed, BusError } from '../index.js';
import { NatsBus } from './index.js';

const url = await requireNats();
const skip = skipReason('NATS');
/** Keeps this run's subjects apart from any other run on the same server. */
const run = `nats-${randomBytes(6).toString('hex')}`;

/** Only called once the probe found the server, so url is set. */
function serverUrl(): string {
  assert.ok(url !== undefined);
  return url;
}

busContract({
  test,
  skip,
  make: () => NatsBus.connect(serverUrl(), { name: `corral-bus-contract-${run}` }),
  makePeer: () => NatsBus.connect(serverUrl(), { name: `corral-bus-contract-peer-${run}` }),
});

/** A TCP relay to the NATS server whose connections a test can cut, and which can stop accepting. */
class Relay {
  private readonly sockets = new Set<Socket>();
  private constructor(private readonly server: Server, readonly url: string) {}

  static async start(): Promise<Relay> {
    const target = new URL(natsUrl());
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    assert.ok(address !== null && typeof address === 'object');
    const relay = new Relay(server, `nats://127.0.0.1:${address.port}`);
    server.on('connection', (client) => {
      const upstream = tcpConnect(Number(target.port || 4222), target.hostname);
      for (const [a, b] of [[client, upstream], [upstream, client]]) {
        relay.sockets.add(a);
        a.on('error', () => b.destroy());
        a.on('close', () => { relay.sockets.delete(a); b.destroy(); });
        a.pipe(b);
      }
    });
    return relay;
  }

  /** Resolves at the next connection the relay accepts. */
  nextConnection(): Promise<unknown> {
    return once(this.server, 'connection');
  }

  /** Cuts every relayed connection, as a lost network would. */
  cut(): void {
    for (const s of this.sockets) s.destroy();
  }

  async stop(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.cut();
    await closed;
  }
}

test('connect to an unreachable server rejects with BusError, without the password in the message', { skip }, async () => {
  const relay = await Relay.start();
  const port = new URL(relay.url).port;
  await relay.stop();
  await assert.rejects(NatsBus.connect(`nats://corral:s3cret@127.0.0.1:${port}`), (err: unknown) => {
    assert.ok(err instanceof BusError);
    assert.doesNotMatch(err.message, /s3cret/);
    return true;
  });
});

test('after the connection is lost, subscriptions and servers come back by themselves', { skip }, async () => {
  const relay = await Relay.start();
  const [node, other] = await Promise.all([
    NatsBus.connect(relay.url, { name: `corral-bus-relayed-${run}`, reconnectTimeWaitMs: 20 }),
    NatsBus.connect(serverUrl()),
  ]);
  const p = `${run}.reconnect`;
  try {
    const got: string[] = [];
    let onGot = (): void => undefined;
    await node.subscribe(`${p}.x`, (data) => { got.push(Buffer.from(data).toString()); onGot(); });
    await node.serve(`${p}.svc`, async () => Buffer.from('served'));
    const arrived = (n: number): Promise<void> => new Promise((resolve) => {
      onGot = () => { if (got.length >= n) resolve(); };
      onGot();
    });
    const reconnected = relay.nextConnection();
    relay.cut();
    await reconnected;
    // The client resends its subscriptions before anything it buffered, so its own message proves them back.
    await node.publish(`${p}.x`, Buffer.from('self'));
    await arrived(1);
    await other.publish(`${p}.x`, Buffer.from('other'));
    await arrived(2);
    assert.deepEqual(got, ['self', 'other']);
    assert.equal(Buffer.from(await other.request(`${p}.svc`, new Uint8Array(0), { timeoutMs: 5000 })).toString(), 'served');
  } finally {
    await Promise.all([node.close(), other.close()]);
    await relay.stop();
  }
});

test('close while the server is unreachable resolves, and a subscribe waiting on it rejects with BusClosed', { skip }, async () => {
  const relay = await Relay.start();
  const node = await NatsBus.connect(relay.url, { reconnectTimeWaitMs: 20 });
  await relay.stop();
  const started = performance.now();
  const waiting = node.subscribe(`${run}.down.x`, () => undefined);
  waiting.catch(() => undefined); // judged below, after close
  await node.close();
  assert.ok(performance.now() - started < 8000, `close took ${performance.now() - started} ms`);
  await assert.rejects(node.publish(`${run}.down.x`, new Uint8Array(0)), BusClosed);
  await waiting.then(() => undefined, (err: unknown) => assert.ok(err instanceof BusClosed, String(err)));
});
