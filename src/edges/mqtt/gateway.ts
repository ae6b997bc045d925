import type { Duplex } from 'node:stream';
import { deviceSubject, encodeJson, type DeviceAuth, type DevicePrincipal } from '../../core/devices/index.js';
import type { Presence } from '../../core/presence/index.js';
import type { Telemetry } from '../../core/telemetry/index.js';
import type { Twins } from '../../core/twins/index.js';
import type { Bus } from '../../ports/bus/index.js';
import type { Clock } from '../../ports/clock/index.js';
import type { IdentityKey, MqttSessionStore } from '../../ports/store/index.js';
import type { Logger } from '../../observability/logger.js';
import { DeviceLink, type KickNotice } from './device-link.js';
import { MqttSession, type ConnectClaim } from './session.js';
import { isDeviceSubscription, type DeviceSubscription } from './topics.js';

/** A cloud-to-device message locked for delivery, as the MQTT edge needs it. */
export interface C2dDelivery {
  readonly lockToken: string;
  readonly body: Uint8Array;
  /** The property bag to put in the topic: system keys (`$.mid`, `$.to`, …) and application properties. */
  readonly bag: Readonly<Record<string, string>>;
  readonly deliveryCount: number;
  /** For modules: the input the message is addressed to. */
  readonly inputName?: string;
}

/** What the MQTT edge needs of cloud-to-device messaging. */
export interface C2dSource {
  receive(key: IdentityKey): Promise<C2dDelivery | undefined>;
  complete(key: IdentityKey, lockToken: string): Promise<void>;
}

/** Everything a session and its DeviceLink call: core services plus the node's connection bookkeeping. */
export interface GatewayServices {
  readonly hostName: string;
  readonly auth: DeviceAuth;
  readonly telemetry: Telemetry;
  readonly presence: Presence;
  readonly twins: Twins;
  readonly bus: Bus;
  readonly c2d: C2dSource | undefined;
  readonly clock: Clock;
  readonly logger: Logger;
  /** The largest MQTT packet a device may send: the telemetry limit plus room for the topic and header. */
  readonly maxPacketBytes: number;
  attach(session: MqttSession, principal: DevicePrincipal, claim: ConnectClaim): Promise<{ link: DeviceLink; subscriptions: DeviceSubscription[]; sessionPresent: boolean }>;
  /** Keeps a clean-session-0 client's subscriptions where every node finds them. */
  saveSubscriptions(session: MqttSession, subscriptions: ReadonlySet<DeviceSubscription>): Promise<void>;
  detach(session: MqttSession, principal: DevicePrincipal, link: DeviceLink | undefined): Promise<void>;
}

export type GatewayDeps = Omit<GatewayServices, 'attach' | 'detach' | 'saveSubscriptions'> & {
  /** Where clean-session-0 subscriptions are kept: the Store, shared by every node. */
  readonly sessions: MqttSessionStore;
};

/**
 * The node's MQTT gateway: one session per identity (a new CONNECT replaces the old one, here or on another node),
 * subscriptions of clean-session-0 clients kept by clientId in the Store across reconnects, whichever node they
 * land on (the SDK never re-subscribes after a token renewal; azure-compat §1.3), and presence.
 */
export class Gateway {
  /** What sessions see: the core services and this gateway's bookkeeping. */
  readonly services: GatewayServices;
  private readonly byClient = new Map<string, MqttSession>();
  private readonly all = new Set<MqttSession>();

  constructor(private readonly deps: GatewayDeps) {
    this.services = {
      ...deps,
      attach: (session, principal, claim) => this.attach(session, principal, claim),
      detach: (session, principal, link) => this.detach(session, principal, link),
      saveSubscriptions: async (session, subscriptions) => {
        if (session.clientId && !session.cleanSession) await deps.sessions.put(session.clientId, [...subscriptions], deps.clock.now());
      },
    };
  }

  /** Starts a session on a new connection (TLS socket, WebSocket stream, …); `peerCertificates` leaf first. */
  handle(stream: Duplex, peerCertificates?: readonly Buffer[]): MqttSession {
    const session = new MqttSession(stream, this.services, peerCertificates);
    this.all.add(session);
    stream.once('close', () => this.all.delete(session));
    return session;
  }

  private async attach(session: MqttSession, principal: DevicePrincipal, claim: ConnectClaim) {
    const previous = this.byClient.get(claim.clientId);
    if (previous && previous !== session) previous.close('replaced by a new connection of the same identity (400027)');
    this.byClient.set(claim.clientId, session);
    const link = new DeviceLink(session, principal, this.services);
    await link.open();
    const kick: KickNotice = { exceptSession: session.id, reason: 'replaced by a new connection of the same identity (400027)' };
    await this.deps.bus.publish(deviceSubject(principal, 'kick'), encodeJson(kick));
    await this.deps.presence.connected(principal);
    let subscriptions: DeviceSubscription[] = [];
    let sessionPresent = false;
    if (claim.clean) await this.deps.sessions.delete(claim.clientId);
    else {
      const kept = await this.deps.sessions.get(claim.clientId);
      sessionPresent = kept !== undefined;
      subscriptions = (kept ?? []).filter(isDeviceSubscription);
      // A session exists from the first clean-session-0 connect on, subscribed to something or not.
      if (!kept) await this.deps.sessions.put(claim.clientId, [], this.deps.clock.now());
    }
    return { link, subscriptions, sessionPresent };
  }

  private async detach(session: MqttSession, principal: DevicePrincipal, link: DeviceLink | undefined): Promise<void> {
    const clientId = session.clientId;
    if (clientId && this.byClient.get(clientId) === session) {
      this.byClient.delete(clientId);
    }
    await link?.close();
    await this.deps.presence.disconnected(principal);
  }

  /** Connected sessions on this node. */
  get connectionCount(): number {
    return this.byClient.size;
  }

  /** Closes every connection (hub stop) and waits until each one's presence is written. */
  async closeAll(reason: string): Promise<void> {
    const sessions = [...this.all];
    for (const s of sessions) s.close(reason);
    await Promise.all(sessions.map((s) => s.whenDetached()));
  }
}
