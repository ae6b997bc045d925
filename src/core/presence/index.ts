import type { DevicePrincipal } from '../devices/index.js';
import { isoTime, type Clock } from '../../ports/clock/index.js';
import type { EventLog } from '../../ports/eventlog/index.js';
import type { SystemEvents } from '../events/index.js';
import { identityKeyText, type Store } from '../../ports/store/index.js';

/** How often a busy device's lastActivityTime is written: at most once a second, so it is right within 1 s. */
const ACTIVITY_WRITE_MS = 1000;

/**
 * Keeps `connectionState`, `connectionStateUpdatedTime` and `lastActivityTime` in the registry, and appends
 * connected/disconnected events to the EventLog. Counts connections per identity on this node, so a replaced
 * connection (same identity reconnecting) never flips a device to Disconnected behind the new one.
 */
export class Presence {
  private readonly local = new Map<string, number>();
  private readonly lastActivityWrite = new Map<string, number>();
  /** When this node last wrote Connected for an identity. */
  private readonly connectedAt = new Map<string, string>();

  constructor(private readonly deps: { store: Store; eventLog: EventLog; clock: Clock; events: SystemEvents }) {}

  async connected(p: DevicePrincipal): Promise<void> {
    const id = identityKeyText(p);
    this.local.set(id, (this.local.get(id) ?? 0) + 1);
    await this.write(p, 'Connected');
  }

  async disconnected(p: DevicePrincipal): Promise<void> {
    const id = identityKeyText(p);
    const n = (this.local.get(id) ?? 1) - 1;
    if (n > 0) { this.local.set(id, n); return; }
    this.local.delete(id);
    this.lastActivityWrite.delete(id);
    const since = this.connectedAt.get(id);
    this.connectedAt.delete(id);
    // Only if no node (this one included) wrote a newer state: a device that moved to another node stays Connected.
    await this.write(p, 'Disconnected', since);
  }

  /** Notes traffic from a device; the registry hears of it at most once a second per device. */
  activity(p: DevicePrincipal): void {
    const id = identityKeyText(p);
    const now = this.deps.clock.now();
    if (now - (this.lastActivityWrite.get(id) ?? 0) < ACTIVITY_WRITE_MS) return;
    this.lastActivityWrite.set(id, now);
    void this.deps.store.identities.updatePresence(p, { lastActivityTime: isoTime(now) }).catch(() => undefined);
  }

  /** How many identities this node holds a connection for. */
  get localCount(): number {
    return this.local.size;
  }

  private async write(p: DevicePrincipal, state: 'Connected' | 'Disconnected', onlyIfStateUpdatedAt?: string): Promise<void> {
    const now = this.deps.clock.now();
    const at = isoTime(now);
    const written = await this.deps.store.identities.updatePresence(p, { connectionState: state, connectionStateUpdatedTime: at, lastActivityTime: at, onlyIfStateUpdatedAt });
    if (state === 'Connected') this.connectedAt.set(identityKeyText(p), at);
    if (!written) return;
    await this.deps.eventLog.append([this.deps.events.connectionStateRecord(p, state === 'Connected', p.generationId, now)]);
  }
}
