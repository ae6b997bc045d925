import mqtt from 'mqtt-packet';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { buildSasToken } from '../../src/core/access/index.js';
import { createDevice } from './devices.js';
import type { RunningHub } from './hub-process.js';

/**
 * A byte-level MQTT 3.1.1 client for e2e tests that must say things mqtt.js never would (no PINGREQ, QoS 2,
 * malformed packets) and see exactly what the hub answers. Every packet received is kept in arrival order.
 */
export class RawMqtt {
  /** Every packet the hub sent, in arrival order. */
  readonly received: mqtt.Packet[] = [];
  /** Every byte the hub sent. */
  readonly bytes: Buffer[] = [];
  /** What the hub sent that is not MQTT (e.g. a TLS alert on a raw TCP socket at the TLS port). */
  readonly parseErrors: Error[] = [];
  /** Resolves with Date.now() when the connection closes, whoever closed it. */
  readonly closed: Promise<number>;
  closedAtMs: number | undefined;
  /** Date.now() when the socket was ready (TLS handshake done). */
  readonly openedAtMs = Date.now();
  private readonly parser = mqtt.parser({ protocolVersion: 4 });
  private readonly waiters = new Set<{ match: (p: mqtt.Packet) => boolean; resolve: (p: mqtt.Packet) => void }>();
  /** Received packets no next() has taken yet. */
  private readonly pending: mqtt.Packet[] = [];

  private constructor(readonly socket: net.Socket) {
    this.parser.on('packet', (p: mqtt.Packet) => {
      this.received.push(p);
      for (const w of this.waiters) if (w.match(p)) { this.waiters.delete(w); w.resolve(p); return; }
      this.pending.push(p);
    });
    this.parser.on('error', (err: Error) => this.parseErrors.push(err));
    socket.on('data', (chunk: Buffer) => { this.bytes.push(chunk); this.parser.parse(chunk); });
    socket.on('error', () => undefined); // a reset by the hub shows as 'close', which is what tests await
    this.closed = new Promise((resolve) => socket.once('close', () => { this.closedAtMs = Date.now(); resolve(this.closedAtMs); }));
  }

  /** MQTT over TLS, trusting the hub's CA. */
  static async tls(hub: RunningHub, port = hub.info.ports.mqtts): Promise<RawMqtt> {
    const socket = tls.connect({ host: hub.info.hostName, port, ca: readFileSync(hub.info.caFile, 'utf8') });
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    });
    socket.setNoDelay(true);
    return new RawMqtt(socket);
  }

  /** Plain TCP (the `--mqtt-port` listener, or raw bytes at the TLS port). */
  static async tcp(host: string, port: number): Promise<RawMqtt> {
    const socket = net.connect({ host, port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.setNoDelay(true);
    return new RawMqtt(socket);
  }

  get isOpen(): boolean {
    return this.closedAtMs === undefined;
  }

  send(packet: mqtt.Packet): void {
    this.socket.write(mqtt.generate(packet));
  }

  write(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  /**
   * The next packet of `cmd` not yet taken (received earlier or later). Rejects if the connection closes first or
   * nothing comes within `timeoutMs` (a safety net; the awaited event is the packet).
   */
  next<C extends mqtt.PacketCmd>(cmd: C, timeoutMs = 5000): Promise<Extract<mqtt.Packet, { cmd: C }>> {
    const match = (p: mqtt.Packet) => p.cmd === cmd;
    const i = this.pending.findIndex(match);
    if (i >= 0) return Promise.resolve(this.pending.splice(i, 1)[0] as Extract<mqtt.Packet, { cmd: C }>);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.waiters.delete(w); reject(new Error(`no ${cmd} within ${timeoutMs} ms; received ${this.describe()}`)); }, timeoutMs);
      const w = {
        match,
        resolve: (p: mqtt.Packet) => { clearTimeout(timer); resolve(p as Extract<mqtt.Packet, { cmd: C }>); },
      };
      this.waiters.add(w);
      void this.closed.then(() => {
        if (!this.waiters.delete(w)) return;
        clearTimeout(timer);
        reject(new Error(`connection closed before ${cmd}; received ${this.describe()}`));
      });
    });
  }

  /**
   * Resolves with Date.now() at close; rejects if the connection is still open after `timeoutMs` (a safety net for
   * "the hub must close this").
   */
  closedWithin(timeoutMs: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`still open after ${timeoutMs} ms; received ${this.describe()}`)), timeoutMs);
      void this.closed.then((at) => { clearTimeout(timer); resolve(at); });
    });
  }

  /**
   * Resolves true if the connection is still open once `windowMs` has passed (the "this must not happen" window),
   * false as soon as it closes.
   */
  staysOpenFor(windowMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(true), windowMs);
      void this.closed.then(() => { clearTimeout(timer); resolve(false); });
    });
  }

  /** The packets received, for assertion messages. */
  describe(): string {
    return `[${this.received.map((p) => ('returnCode' in p ? `${p.cmd}(${p.returnCode})` : p.cmd)).join(', ')}]`;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** A device's SAS key and hub host, for hand-made CONNECTs. */
export interface DeviceCredentials {
  readonly hostName: string;
  readonly deviceId: string;
  readonly key: string;
}

/** Creates a SAS device through the registry and returns its credentials. */
export async function createRawDevice(hub: RunningHub, deviceId: string, extra: Record<string, unknown> = {}): Promise<DeviceCredentials> {
  const cs = await createDevice(hub, deviceId, extra);
  const key = /SharedAccessKey=([^;]+)/.exec(cs)?.[1];
  if (!key) throw new Error(`no key in connection string for '${deviceId}'`);
  return { hostName: hub.info.hostName, deviceId, key };
}

/** A device SAS token as the SDK makes it (sr = `{host}/devices/{id}`, no skn); `expiry` in Unix seconds. */
export function deviceToken(d: DeviceCredentials, expiry = Math.ceil(Date.now() / 1000) + 3600, resourceDeviceId = d.deviceId): string {
  return buildSasToken(`${d.hostName}/devices/${resourceDeviceId}`, d.key, expiry);
}

/** IoT Hub's CONNECT (azure-compat §1.2): clientId = device id, username `{host}/{id}/?api-version=…`, clean 0. */
export function connectPacket(d: DeviceCredentials, opts: { password?: string; keepalive?: number; clientId?: string; username?: string } = {}): mqtt.IConnectPacket {
  return {
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion: 4,
    clean: false,
    keepalive: opts.keepalive ?? 180,
    clientId: opts.clientId ?? d.deviceId,
    username: opts.username ?? `${d.hostName}/${d.deviceId}/?api-version=2021-04-12`,
    password: Buffer.from(opts.password ?? deviceToken(d)),
  };
}

/** Opens a TLS connection and CONNECTs; resolves with the client and the CONNACK, whatever its return code. */
export async function rawConnect(hub: RunningHub, d: DeviceCredentials, opts: Parameters<typeof connectPacket>[1] = {}): Promise<{ client: RawMqtt; connack: mqtt.IConnackPacket }> {
  const client = await RawMqtt.tls(hub);
  client.send(connectPacket(d, opts));
  return { client, connack: await client.next('connack') };
}

/** Opens a TLS connection whose CONNECT is accepted (return code 0), or throws. */
export async function connected(hub: RunningHub, d: DeviceCredentials, opts: Parameters<typeof connectPacket>[1] = {}): Promise<RawMqtt> {
  const { client, connack } = await rawConnect(hub, d, opts);
  if (connack.returnCode !== 0) { client.destroy(); throw new Error(`CONNACK ${connack.returnCode} for '${d.deviceId}'`); }
  return client;
}

/** The telemetry topic of a device, with an optional property bag. */
export function telemetryTopic(deviceId: string, bag = ''): string {
  return `devices/${deviceId}/messages/events/${bag}`;
}

/** Publishes one QoS 1 telemetry message and resolves once its PUBACK arrives. */
export async function publishAcked(client: RawMqtt, deviceId: string, messageId: number, payload: string | Buffer = 'ping'): Promise<void> {
  client.send({ cmd: 'publish', topic: telemetryTopic(deviceId), payload: Buffer.from(payload), qos: 1, messageId, retain: false, dup: false });
  for (;;) {
    const ack = await client.next('puback');
    if (ack.messageId === messageId) return;
  }
}

/** mulberry32: a small seeded PRNG so a failing fuzz run can be replayed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
