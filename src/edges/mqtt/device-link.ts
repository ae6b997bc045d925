import { ArgumentInvalid } from '../../core/errors/index.js';
import { decodeJson, deviceSubject, encodeJson, type DevicePrincipal } from '../../core/devices/index.js';
import type { MethodRequestMessage, MethodResult } from '../../core/methods/index.js';
import { deviceTwinView } from '../../core/twins/index.js';
import type { JsonValue } from '../../ports/store/index.js';
import type { GatewayServices } from './gateway.js';
import type { MqttSession } from './session.js';
import { encodeBag, type DeviceSubscription } from './topics.js';

/** A desired-properties notice as it travels on the Bus. */
export interface DesiredNotice {
  readonly version: number;
  readonly patch: Record<string, JsonValue>;
}

/** A kick as it travels on the Bus: every connection of the identity closes but the one named. */
export interface KickNotice {
  readonly exceptSession?: string;
  readonly reason: string;
}

// A notice that arrives ahead of a missing version waits this long for it before it is sent anyway.
const DESIRED_REORDER_MS = 1000;

/**
 * The cross-node side of one device connection: its Bus subscriptions (kicks, desired notices, C2D wake-ups), the
 * method subject it serves while the device listens for methods, twin requests, and C2D delivery (one message in
 * flight; PUBACK completes it, azure-compat §3).
 */
export class DeviceLink {
  private readonly subs = new Set<DeviceSubscription>();
  private readonly stops: (() => Promise<void>)[] = [];
  private stopServing: (() => Promise<void>) | undefined;
  private readonly pendingMethods = new Map<string, (r: MethodResult) => void>();
  private nextRid = 1;
  private nextPacketId = 1;
  private lastDesired: number | undefined;
  private readonly heldDesired = new Map<number, DesiredNotice>();
  private heldTimer: NodeJS.Timeout | undefined;
  private c2dInFlight: { packetId: number; lockToken: string } | undefined;
  private c2dPumping = false;
  private closed = false;

  constructor(private readonly session: MqttSession, readonly principal: DevicePrincipal, private readonly services: GatewayServices) {}

  /** Subscribes to the identity's kick, desired and C2D subjects. */
  async open(): Promise<void> {
    const bus = this.services.bus;
    this.stops.push(await bus.subscribe(deviceSubject(this.principal, 'kick'), (data) => {
      const k = decodeJson<KickNotice>(data);
      if (k.exceptSession !== this.session.id) this.session.close(`kicked: ${k.reason}`);
    }));
    this.stops.push(await bus.subscribe(deviceSubject(this.principal, 'desired'), (data) => this.onDesired(decodeJson<DesiredNotice>(data))));
    this.stops.push(await bus.subscribe(deviceSubject(this.principal, 'c2d'), () => void this.pumpC2d()));
  }

  has(sub: DeviceSubscription): boolean {
    return this.subs.has(sub);
  }

  get subscriptions(): ReadonlySet<DeviceSubscription> {
    return this.subs;
  }

  /** `restoring`: a kept subscription coming back on connect, already stored as it is. */
  async subscribe(sub: DeviceSubscription, restoring = false): Promise<void> {
    if (this.subs.has(sub) || this.closed) return;
    this.subs.add(sub);
    if (!restoring) await this.services.saveSubscriptions(this.session, this.subs);
    if (sub === 'methods') {
      this.stopServing = await this.services.bus.serve(deviceSubject(this.principal, 'method'), (data) => this.invoke(decodeJson<MethodRequestMessage>(data)));
      await this.services.bus.publish(deviceSubject(this.principal, 'online'), new Uint8Array(0));
    }
    if (sub === 'c2d') void this.pumpC2d();
  }

  async unsubscribe(sub: DeviceSubscription): Promise<void> {
    if (!this.subs.delete(sub)) return;
    await this.services.saveSubscriptions(this.session, this.subs);
    if (sub === 'methods' && this.stopServing) {
      const stop = this.stopServing;
      this.stopServing = undefined;
      await stop();
    }
  }

  /** The device's twin GET: both property sections with their versions. */
  async twinGet(): Promise<{ status: number; body: unknown }> {
    const r = await this.services.twins.get(this.principal);
    this.lastDesired = Math.max(this.lastDesired ?? 0, r.twin.desiredVersion);
    return { status: 200, body: deviceTwinView(r) };
  }

  /** A reported-properties PATCH: answered 204 with the new reported `$version`. */
  async twinPatch(payload: Buffer): Promise<{ status: number; version: number }> {
    let patch: unknown;
    try { patch = JSON.parse(payload.toString('utf8')); } catch { throw new ArgumentInvalid('the reported properties patch is not valid JSON'); }
    const r = await this.services.twins.patchReported(this.principal, patch);
    return { status: 204, version: r.twin.reportedVersion };
  }

  /** Serves one method call: publishes it to the device and waits for `$iothub/methods/res/…` with the same rid. */
  private async invoke(req: MethodRequestMessage): Promise<Uint8Array> {
    if (this.closed || !this.subs.has('methods')) throw new Error('offline: the device stopped listening for methods');
    const rid = (this.nextRid++).toString(16);
    const answer = new Promise<MethodResult>((resolve, reject) => {
      const timer = setTimeout(() => { this.pendingMethods.delete(rid); reject(new Error('timeout: no answer from the device')); }, req.timeoutMs);
      this.pendingMethods.set(rid, (r) => { clearTimeout(timer); resolve(r); });
    });
    // The SDK parses any body: `null` for no payload, never empty (azure-compat §5).
    this.session.send({ cmd: 'publish', topic: `$iothub/methods/POST/${req.methodName}/?$rid=${rid}`, payload: Buffer.from(JSON.stringify(req.payload ?? null)), qos: 0, retain: false, dup: false });
    return encodeJson(await answer);
  }

  onMethodResponse(rid: string, status: number, payload: Buffer): void {
    const resolve = this.pendingMethods.get(rid);
    if (!resolve) return;
    this.pendingMethods.delete(rid);
    const text = payload.toString('utf8');
    let body: JsonValue = null;
    if (text.trim() !== '') {
      try { body = JSON.parse(text) as JsonValue; } catch { body = text; }
    }
    resolve({ status, payload: body });
  }

  /** Desired notices go out in version order; one ahead of a gap waits briefly for the missing version. */
  private onDesired(n: DesiredNotice): void {
    if (this.lastDesired !== undefined && n.version <= this.lastDesired) return;
    this.heldDesired.set(n.version, n);
    this.flushDesired(false);
  }

  private flushDesired(force: boolean): void {
    for (;;) {
      const versions = [...this.heldDesired.keys()].sort((a, b) => a - b);
      if (versions.length === 0) break;
      const next = versions[0];
      if (!force && this.lastDesired !== undefined && next !== this.lastDesired + 1) break;
      const notice = this.heldDesired.get(next) as DesiredNotice; // present: taken from its keys
      this.heldDesired.delete(next);
      this.lastDesired = next;
      if (this.subs.has('desired')) {
        this.session.send({ cmd: 'publish', topic: `$iothub/twin/PATCH/properties/desired/?$version=${next}`, payload: Buffer.from(JSON.stringify({ ...notice.patch, $version: next })), qos: 0, retain: false, dup: false });
      }
    }
    clearTimeout(this.heldTimer);
    if (this.heldDesired.size > 0) this.heldTimer = setTimeout(() => this.flushDesired(true), DESIRED_REORDER_MS);
  }

  /** Delivers the next C2D message when none is in flight and the device listens. */
  private async pumpC2d(): Promise<void> {
    const c2d = this.services.c2d;
    if (!c2d || this.c2dPumping || this.c2dInFlight || this.closed || !this.subs.has('c2d')) return;
    this.c2dPumping = true;
    try {
      const m = await c2d.receive(this.principal);
      if (!m || this.closed) return;
      const packetId = this.nextPacketId;
      this.nextPacketId = (this.nextPacketId % 65535) + 1;
      this.c2dInFlight = { packetId, lockToken: m.lockToken };
      const base = this.principal.moduleId ? `devices/${this.principal.deviceId}/modules/${this.principal.moduleId}/inputs/${m.inputName ?? ''}` : `devices/${this.principal.deviceId}/messages/devicebound`;
      this.session.send({ cmd: 'publish', topic: `${base}/${encodeBag(m.bag)}`, payload: Buffer.from(m.body), qos: 1, messageId: packetId, retain: false, dup: m.deliveryCount > 1 });
    } catch (err) {
      this.services.logger.warn({ err, deviceId: this.principal.deviceId }, 'C2D delivery failed');
    } finally {
      this.c2dPumping = false;
    }
  }

  /** PUBACK of a C2D message completes it (mqtt.js acknowledges on receipt; azure-compat §3). */
  onPuback(packetId: number): void {
    const f = this.c2dInFlight;
    if (!f || f.packetId !== packetId || !this.services.c2d) return;
    this.c2dInFlight = undefined;
    void this.services.c2d.complete(this.principal, f.lockToken)
      .catch((err: unknown) => this.services.logger.warn({ err }, 'C2D complete failed'))
      .then(() => this.pumpC2d());
  }

  /** Stops everything; calls in flight answer "offline". */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.heldTimer);
    const stops = [...this.stops.splice(0), ...(this.stopServing ? [this.stopServing] : [])];
    this.stopServing = undefined;
    for (const [rid, resolve] of this.pendingMethods) {
      this.pendingMethods.delete(rid);
      resolve({ status: 404, payload: null });
    }
    await Promise.all(stops.map((s) => s().catch(() => undefined)));
  }
}
