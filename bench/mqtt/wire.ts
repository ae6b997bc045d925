import mqttPacket from 'mqtt-packet';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type SecureContext, type TLSSocket } from 'node:tls';

/**
 * A lean MQTT 3.1.1 load generator: raw sockets, a hand-rolled frame reader (no parser object per connection),
 * packets built once where they can be. CONNECT and SUBSCRIBE are made by mqtt-packet (once per connection);
 * PUBLISH buffers by `publishPacket`, normally ahead of the load.
 */

export const CONNACK = 2;
export const PUBLISH = 3;
export const PUBACK = 4;
export const SUBACK = 9;
export const PINGRESP = 13;

/** Called with each whole packet: its type (high nibble), flags (low nibble) and body (after the fixed header). */
export type PacketHandler = (type: number, flags: number, body: Buffer) => void;

/**
 * Splits a socket's bytes into MQTT packets. A chunk holding only whole packets is read in place; only a packet
 * split across chunks is copied.
 */
export function readPackets(socket: Socket, handler: { current: PacketHandler }): void {
  let rest: Buffer | undefined;
  socket.on('data', (chunk: Buffer) => {
    let buf = rest ? Buffer.concat([rest, chunk]) : chunk;
    rest = undefined;
    let off = 0;
    for (;;) {
      if (buf.length - off < 2) break;
      let len = 0;
      let mul = 1;
      let i = off + 1;
      let complete = false;
      while (i < buf.length && i < off + 5) {
        const b = buf[i++];
        len += (b & 0x7f) * mul;
        mul *= 128;
        if ((b & 0x80) === 0) { complete = true; break; }
      }
      if (!complete || buf.length - i < len) break;
      const first = buf[off];
      off = i + len;
      handler.current(first >> 4, first & 0x0f, buf.subarray(i, off));
    }
    if (off < buf.length) rest = Buffer.from(buf.subarray(off));
    buf = chunk; // let the joined buffer go
  });
}

function remainingLength(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

/** A PUBLISH packet: QoS 0, or QoS 1 with `packetId`. */
export function publishPacket(topic: string, payload: Buffer, qos: 0 | 1, packetId = 0): Buffer {
  const t = Buffer.from(topic, 'utf8');
  const bodyLength = 2 + t.length + (qos ? 2 : 0) + payload.length;
  const rl = remainingLength(bodyLength);
  const out = Buffer.allocUnsafe(1 + rl.length + bodyLength);
  let o = 0;
  out[o++] = 0x30 | (qos << 1);
  for (const b of rl) out[o++] = b;
  out.writeUInt16BE(t.length, o); o += 2;
  t.copy(out, o); o += t.length;
  if (qos) { out.writeUInt16BE(packetId, o); o += 2; }
  payload.copy(out, o);
  return out;
}

/** A PUBLISH body's topic, packet id (0 for QoS 0) and payload. */
export function parsePublish(flags: number, body: Buffer): { topic: string; packetId: number; payload: Buffer } {
  const tlen = body.readUInt16BE(0);
  const topic = body.toString('utf8', 2, 2 + tlen);
  const qos = (flags >> 1) & 3;
  let o = 2 + tlen;
  let packetId = 0;
  if (qos > 0) { packetId = body.readUInt16BE(o); o += 2; }
  return { topic, packetId, payload: body.subarray(o) };
}

export function pubackPacket(packetId: number): Buffer {
  return Buffer.from([0x40, 2, packetId >> 8, packetId & 0xff]);
}

export function connectPacket(opts: { clientId: string; username?: string; password?: string; keepalive: number; clean?: boolean }): Buffer {
  return mqttPacket.generate({
    cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: opts.clean ?? true, keepalive: opts.keepalive,
    clientId: opts.clientId, username: opts.username, password: opts.password === undefined ? undefined : Buffer.from(opts.password),
  });
}

export function subscribePacket(topic: string, qos: 0 | 1, packetId = 1): Buffer {
  return mqttPacket.generate({ cmd: 'subscribe', messageId: packetId, subscriptions: [{ topic, qos }] });
}

export const DISCONNECT = Buffer.from([0xe0, 0]);

/** Where and how to open a connection. */
export interface Endpoint {
  readonly host: string;
  readonly port: number;
  /** TLS with this context (one shared by all connections: a context per connection would dominate memory). */
  readonly tls?: SecureContext;
}

/** tls.connect hands its options to net's connect, which takes `localAddress`; @types/node leaves it out. */
function tlsOptions(ep: Endpoint, secureContext: SecureContext, localAddress: string | undefined): ConnectionOptions {
  const o: ConnectionOptions & { localAddress?: string } = { host: ep.host, port: ep.port, secureContext, servername: '', localAddress };
  return o;
}

/** One connected MQTT client: the socket and the handler its packets go to after CONNACK. */
export interface RawClient {
  readonly socket: Socket | TLSSocket;
  readonly handler: { current: PacketHandler };
}

/**
 * Opens a socket, sends CONNECT (and SUBSCRIBE if given), resolves once CONNACK (and SUBACK) arrive, or with
 * `echo` once any packet comes back; rejects on a refusal, an error, a close or `timeoutMs`.
 */
export function openClient(ep: Endpoint, connect: Buffer, opts: { localAddress?: string; subscribe?: Buffer; timeoutMs?: number; echo?: boolean } = {}): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const socket: Socket = ep.tls
      ? tlsConnect(tlsOptions(ep, ep.tls, opts.localAddress))
      : netConnect({ host: ep.host, port: ep.port, localAddress: opts.localAddress });
    socket.setNoDelay(true);
    const handler: { current: PacketHandler } = { current: () => {} };
    let settled = false;
    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      reject(new Error(why));
    };
    const timer = setTimeout(() => fail(`no CONNACK from ${ep.host}:${ep.port} in ${opts.timeoutMs ?? 30_000} ms`), opts.timeoutMs ?? 30_000);
    socket.on('error', (err) => fail(`${ep.host}:${ep.port}: ${err.message}`));
    socket.on('close', () => fail(`${ep.host}:${ep.port} closed the connection before CONNACK`));
    const done = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ socket, handler });
    };
    handler.current = (type, _flags, body) => {
      if (opts.echo) done(); // an echo server: the CONNECT coming back is the answer
      else if (type === CONNACK) {
        if (body[1] !== 0) { fail(`CONNACK return code ${body[1]} from ${ep.host}:${ep.port}`); return; }
        if (!opts.subscribe) done();
      } else if (type === SUBACK) {
        if (body[2] === 0x80) fail(`SUBACK refused by ${ep.host}:${ep.port}`);
        else done();
      }
    };
    readPackets(socket, handler);
    socket.write(opts.subscribe ? Buffer.concat([connect, opts.subscribe]) : connect);
  });
}

/**
 * Opens `count` things with at most `concurrency` opening at once (a listener's accept backlog is finite, and
 * handshakes queued behind each other only time out); `onProgress` hears every thousandth.
 */
export async function openMany<T>(count: number, concurrency: number, open: (i: number) => Promise<T>, onProgress?: (done: number) => void): Promise<T[]> {
  const out = new Array<T>(count);
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      out[i] = await open(i);
      if (++done % 1000 === 0) onProgress?.(done);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return out;
}

/** Ends every client (DISCONNECT, then FIN) and waits until each socket has closed, or 10 s. */
export async function closeAll(clients: readonly RawClient[]): Promise<void> {
  await Promise.all(clients.map((c) => new Promise<void>((resolve) => {
    const s = c.socket;
    if (s.destroyed) { resolve(); return; }
    const timer = setTimeout(() => { s.destroy(); resolve(); }, 10_000);
    s.once('close', () => { clearTimeout(timer); resolve(); });
    s.end(DISCONNECT);
  })));
}
