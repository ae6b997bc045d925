import mqtt from 'mqtt-packet';
import { randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { CorralError } from '../../core/errors/index.js';
import { DeviceRefused, type DevicePrincipal } from '../../core/devices/index.js';
import type { IdentityKey } from '../../ports/store/index.js';
import type { Logger } from '../../observability/logger.js';
import type { GatewayServices } from './gateway.js';
import { parseBag, parsePublishTopic, parseQuery, parseSubscription, type DeviceSubscription } from './topics.js';
import { twinError, twinTopic } from './wire-errors.js';
import { DeviceLink } from './device-link.js';

/** IoT Hub's cap on the server keep-alive: 1.5 × the client's, at most 1767 s (azure-compat §1.3). */
const MAX_KEEPALIVE_SECONDS = 1767;
/** A client that sends no CONNECT within this long is dropped. */
const CONNECT_TIMEOUT_MS = 10_000;
// setTimeout cannot wait longer than 2^31-1 ms; a token expiry past that is re-armed.
const MAX_TIMER_MS = 2 ** 31 - 1;

/** What a CONNECT claims: the identity from clientId and username, and the SAS token if any. */
export interface ConnectClaim {
  readonly key: IdentityKey;
  readonly clientId: string;
  readonly password: string | undefined;
  readonly clean: boolean;
  readonly keepaliveSeconds: number;
}

/** Reads IoT Hub's CONNECT shape (azure-compat §1.2); undefined when clientId and username disagree. */
export function parseConnect(p: mqtt.IConnectPacket, hostName: string): ConnectClaim | undefined {
  const clientId = p.clientId;
  const user = p.username ?? '';
  const q = user.indexOf('/?');
  const path = q < 0 ? user.replace(/\/$/, '') : user.slice(0, q);
  const slash = path.indexOf('/');
  if (slash < 0 || path.slice(0, slash).toLowerCase() !== hostName.toLowerCase()) return undefined;
  const identity = path.slice(slash + 1);
  if (identity !== clientId || clientId === '') return undefined;
  const [deviceId, moduleId = '', extra] = clientId.split('/');
  if (extra !== undefined || deviceId === '') return undefined;
  if (q >= 0 && parseQuery(user.slice(q + 2)) === undefined) return undefined;
  return {
    key: { deviceId, moduleId }, clientId,
    password: p.password === undefined ? undefined : Buffer.from(p.password).toString('utf8'),
    clean: p.clean !== false, keepaliveSeconds: p.keepalive ?? 0,
  };
}

/**
 * One device connection speaking IoT Hub's MQTT 3.1.1 dialect over any duplex stream (TLS, WebSocket, plain, or
 * in-memory in tests). It authenticates the CONNECT, allows only the device's own topics, and hands each request to
 * core; the cross-node parts (methods, desired notices, C2D, kicks) live in its DeviceLink.
 */
export class MqttSession {
  readonly id = randomUUID();
  private principal: DevicePrincipal | undefined;
  private claim: ConnectClaim | undefined;
  private link: DeviceLink | undefined;
  private readonly parser = mqtt.parser({ protocolVersion: 4 });
  private readonly early: mqtt.Packet[] = [];
  private connecting = false;
  private closed = false;
  private keepAliveTimer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private log: Logger;

  constructor(private readonly stream: Duplex, private readonly services: GatewayServices, private readonly peerCertificates?: readonly Buffer[]) {
    this.log = services.logger.child({ session: this.id });
    this.parser.on('packet', (p) => this.onPacket(p));
    this.parser.on('error', (err) => {
      // MQTT-3.1.2-2: an unsupported protocol level in CONNECT gets CONNACK 1 before the close.
      if (!this.principal && /protocol version/i.test(err.message)) this.send({ cmd: 'connack', returnCode: 1, sessionPresent: false });
      this.close(`malformed packet: ${err.message}`);
    });
    stream.on('data', (chunk: Buffer) => {
      if (this.closed) return;
      this.resetKeepAlive();
      this.parser.parse(chunk);
      // The parser buffers a packet's whole declared length; a length past the limit is refused before it arrives.
      const declared = (this.parser as unknown as { packet?: { length?: number } }).packet?.length ?? 0;
      if (declared > this.services.maxPacketBytes) this.close(`a packet of ${declared} bytes is over the ${this.services.maxPacketBytes}-byte limit`);
    });
    stream.on('error', () => this.close('stream error'));
    stream.on('close', () => this.close('connection closed'));
    stream.on('end', () => this.close('connection ended'));
    this.keepAliveTimer = setTimeout(() => this.close('no CONNECT in time'), CONNECT_TIMEOUT_MS);
  }

  get identity(): DevicePrincipal | undefined { return this.principal; }
  get clientId(): string | undefined { return this.claim?.clientId; }
  get cleanSession(): boolean { return this.claim?.clean !== false; }

  /** Sends one packet; false once closed. A packet the codec refuses closes the connection, never the process. */
  send(packet: mqtt.Packet): boolean {
    if (this.closed || this.stream.destroyed) return false;
    let bytes: Buffer;
    try {
      bytes = mqtt.generate(packet);
    } catch (err) {
      this.log.error({ err, cmd: packet.cmd }, 'could not encode a packet');
      this.close('internal error encoding a packet');
      return false;
    }
    // Packets written in one turn of the event loop (the PUBACKs of one EventLog commit, say) leave in one write.
    if (!this.corked) {
      this.corked = true;
      this.stream.cork();
      process.nextTick(() => { this.corked = false; this.stream.uncork(); });
    }
    this.stream.write(bytes);
    return true;
  }

  private corked = false;

  /** Runs a packet handler; whatever it throws closes this connection only. */
  private run(what: string, work: Promise<void>): void {
    work.catch((err: unknown) => {
      this.log.error({ err }, `${what} failed`);
      this.close(`internal error in ${what}`);
    });
  }

  /** Closes the connection (idempotent); the reason goes to the log. */
  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.keepAliveTimer);
    clearTimeout(this.expiryTimer);
    this.log.debug({ reason }, 'device connection closed');
    // What was written this turn (a refusing CONNACK, say) still goes out before the close.
    if (this.corked) { this.corked = false; this.stream.uncork(); }
    this.stream.destroy();
    const principal = this.principal;
    if (principal) this.detached = this.services.detach(this, principal, this.link).catch((err: unknown) => this.log.warn({ err }, 'detach failed'));
  }

  private detached: Promise<void> = Promise.resolve();

  /** Resolves once a closed session's presence and Bus subscriptions are cleaned up. */
  whenDetached(): Promise<void> {
    return this.detached;
  }

  private onPacket(p: mqtt.Packet): void {
    if (this.closed) return;
    if (p.cmd === 'connect') { this.run('CONNECT', this.onConnect(p)); return; }
    if (!this.principal) {
      if (this.connecting) { this.early.push(p); return; }
      this.close(`${p.cmd} before CONNECT`);
      return;
    }
    this.dispatch(p);
  }

  private dispatch(p: mqtt.Packet): void {
    switch (p.cmd) {
      case 'publish': this.run('PUBLISH', this.onPublish(p)); return;
      case 'puback': this.link?.onPuback(p.messageId ?? 0); return;
      case 'subscribe': this.run('SUBSCRIBE', this.onSubscribe(p)); return;
      case 'unsubscribe': this.run('UNSUBSCRIBE', this.onUnsubscribe(p)); return;
      case 'pingreq': this.send({ cmd: 'pingresp' }); return;
      case 'disconnect': this.close('client disconnected'); return;
      default: this.close(`unexpected ${p.cmd}`);
    }
  }

  private async onConnect(p: mqtt.IConnectPacket): Promise<void> {
    if (this.principal || this.connecting) { this.close('second CONNECT'); return; }
    if (p.protocolVersion !== 4) { this.refuse(1, `MQTT protocol level ${p.protocolVersion}`); return; }
    const claim = parseConnect(p, this.services.hostName);
    if (!claim) { this.refuse(2, 'clientId and username do not name one identity of this hub'); return; }
    this.connecting = true;
    this.claim = claim;
    this.log = this.log.child({ deviceId: claim.key.deviceId, moduleId: claim.key.moduleId || undefined });
    try {
      const principal = claim.password !== undefined
        ? await this.services.auth.authenticateSas(claim.key, claim.password)
        : await this.services.auth.authenticateCertificate(claim.key, this.peerCertificates);
      if (this.closed) return;
      const { link, subscriptions, sessionPresent } = await this.services.attach(this, principal, claim);
      if (this.closed) { await this.services.detach(this, principal, link); return; }
      this.principal = principal;
      this.link = link;
      this.send({ cmd: 'connack', returnCode: 0, sessionPresent });
      this.armKeepAlive(claim.keepaliveSeconds);
      this.armExpiry(principal.expiresAtMs);
      for (const s of subscriptions) await link.subscribe(s, true);
      for (const early of this.early.splice(0)) this.dispatch(early);
    } catch (err) {
      if (err instanceof DeviceRefused) { this.refuse(5, err.message); return; }
      this.log.error({ err }, 'connect failed');
      this.refuse(3, 'server unavailable');
    } finally {
      this.connecting = false;
    }
  }

  /** CONNACK with a refusal code, then close (azure-compat §1.4: 5 for every auth failure). */
  private refuse(returnCode: number, reason: string): void {
    this.services.logger.info({ returnCode, reason, clientId: this.claim?.clientId }, 'device connection refused');
    this.send({ cmd: 'connack', returnCode, sessionPresent: false });
    this.close(reason);
  }

  private armKeepAlive(seconds: number): void {
    clearTimeout(this.keepAliveTimer);
    // MQTT-3.1.2-24: drop the client after 1.5 × keep-alive of silence (IoT Hub caps it at 1767 s).
    const s = seconds > 0 ? Math.min(seconds, MAX_KEEPALIVE_SECONDS) : MAX_KEEPALIVE_SECONDS;
    this.keepAliveTimer = setTimeout(() => this.close('keep-alive timeout'), Math.round(s * 1500));
  }

  /** Any bytes from a connected client count as life; before CONNECT they do not extend the connect deadline. */
  private resetKeepAlive(): void {
    if (this.principal) this.keepAliveTimer?.refresh();
  }

  private armExpiry(expiresAtMs: number | undefined): void {
    if (expiresAtMs === undefined) return;
    const wait = expiresAtMs - this.services.clock.now();
    this.expiryTimer = setTimeout(() => {
      if (this.services.clock.now() >= expiresAtMs) this.close('SAS token expired');
      else this.armExpiry(expiresAtMs);
    }, Math.max(0, Math.min(wait, MAX_TIMER_MS)));
  }

  private async onSubscribe(p: mqtt.ISubscribePacket): Promise<void> {
    const key = this.principal as DevicePrincipal; // set: dispatch runs only once connected
    if (p.subscriptions.length === 0) { this.close('SUBSCRIBE without a topic filter (MQTT-3.8.3-3)'); return; }
    const granted: number[] = [];
    const subs: DeviceSubscription[] = [];
    for (const s of p.subscriptions) {
      const sub = parseSubscription(key, s.topic);
      if (!sub) { this.forbidden(`SUBSCRIBE to foreign topic '${s.topic}'`); return; }
      subs.push(sub);
      granted.push(Math.min(s.qos, 1)); // QoS 2 is granted as 1 (azure-compat §1.3)
    }
    for (const sub of subs) await this.link?.subscribe(sub);
    this.send({ cmd: 'suback', messageId: p.messageId, granted });
  }

  private async onUnsubscribe(p: mqtt.IUnsubscribePacket): Promise<void> {
    const key = this.principal as DevicePrincipal; // set: dispatch runs only once connected
    if (p.unsubscriptions.length === 0) { this.close('UNSUBSCRIBE without a topic filter (MQTT-3.10.3-2)'); return; }
    for (const topic of p.unsubscriptions) {
      const sub = parseSubscription(key, topic);
      if (sub) await this.link?.unsubscribe(sub);
    }
    this.send({ cmd: 'unsuback', messageId: p.messageId } as mqtt.IUnsubackPacket); // MQTT 3.1.1 UNSUBACK has no reason codes
  }

  /** A device reaching outside its own topics: disconnect it and log a security event; nothing is delivered. */
  private forbidden(what: string): void {
    this.services.logger.warn({ security: true, deviceId: this.principal?.deviceId, moduleId: this.principal?.moduleId || undefined, what }, 'device touched a topic that is not its own');
    this.close(`forbidden: ${what}`);
  }

  private async onPublish(p: mqtt.IPublishPacket): Promise<void> {
    const principal = this.principal as DevicePrincipal; // set: dispatch runs only once connected
    if (p.qos === 2) { this.close('QoS 2 PUBLISH (IoT Hub does not support QoS 2)'); return; }
    if (/[#+]/.test(p.topic)) { this.close('a PUBLISH topic may not hold wildcards (MQTT-3.3.2-2)'); return; }
    const target = parsePublishTopic(principal, p.topic);
    this.services.presence.activity(principal);
    const payload = Buffer.isBuffer(p.payload) ? p.payload : Buffer.from(p.payload);
    switch (target.kind) {
      case 'foreign': this.forbidden(`PUBLISH to foreign topic '${p.topic}'`); return;
      case 'telemetry': await this.onTelemetry(principal, p, target.bag, payload); return;
      case 'twin-get': await this.answerTwin(target.rid, async () => this.link?.twinGet()); return;
      case 'twin-patch': await this.answerTwin(target.rid, async () => this.link?.twinPatch(payload)); return;
      case 'method-response': this.link?.onMethodResponse(target.rid, target.status, payload); return;
    }
  }

  private async onTelemetry(principal: DevicePrincipal, p: mqtt.IPublishPacket, bag: string, body: Buffer): Promise<void> {
    const props = parseBag(bag);
    if (!props) { this.close('telemetry property bag is not valid percent-encoding'); return; }
    if (p.retain) props.app['mqtt-retain'] = 'true'; // IoT Hub keeps nothing retained; it marks the message instead
    try {
      await this.services.telemetry.accept(principal, [{ body, systemProperties: props.system, appProperties: props.app }]);
    } catch (err) {
      // Nothing was stored, so nothing is acknowledged: the device will send it again.
      this.close(err instanceof CorralError ? err.message : 'telemetry could not be stored');
      if (!(err instanceof CorralError)) this.log.error({ err }, 'telemetry append failed');
      return;
    }
    if (p.qos === 1) this.send({ cmd: 'puback', messageId: p.messageId });
  }

  /** Runs a twin request and answers on `$iothub/twin/res/…` (every `$rid` gets an answer: the SDK never times out). */
  private async answerTwin(rid: string, run: () => Promise<{ status: number; body?: unknown; version?: number } | undefined>): Promise<void> {
    let topic: string;
    let body: Buffer;
    try {
      const r = await run();
      if (!r) return;
      topic = twinTopic(r.status, rid, r.version);
      body = r.body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(r.body));
    } catch (err) {
      ({ topic, body } = twinError(rid, err));
      if (!(err instanceof CorralError)) this.log.error({ err }, 'twin request failed');
    }
    if (this.link?.has('twin-response')) this.send({ cmd: 'publish', topic, payload: body, qos: 0, retain: false, dup: false });
  }
}

