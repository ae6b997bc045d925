/**
 * Runs the pipeline on a node: for each partition of the EventLog this node holds the lease of, one cursor per
 * consumer (each enabled route, the device-state stage, the rules engine), and the periodic sweeps (absence rules,
 * wellness) on the one node holding the sweep lease. A node always takes its own partition; it takes another
 * node's only while that node's own lease has run out (the node is down), and gives it back once the node is up.
 * Leases are rows in the Store: no coordinator.
 */

import type { Clock } from '../../ports/clock/index.js';
import type { EventLogSet } from '../../ports/eventlog/index.js';
import type { SettingRecord } from '../../ports/store/pipeline.js';
import type { Store } from '../../ports/store/index.js';
import { AppendSignal, PartitionCursor, SharedReads, type PipelineConsumer } from './cursor.js';
import { BUILT_IN_ENDPOINT, type EndpointHealth, type Endpoints } from './endpoints.js';
import { FALLBACK_ROUTE, RouteConsumer, RouteTable, routeCheckpoint } from './routing.js';
import type { PipelineSettings } from './settings.js';

export interface Sweeper {
  readonly name: string;
  readonly intervalMs: number;
  /** Runs on every node (state this node holds in memory), not only on the node holding the sweep lease. */
  readonly perNode?: boolean;
  run(nowMs: number): Promise<void>;
}

export interface PipelineDeps {
  readonly store: Store;
  readonly log: EventLogSet;
  readonly clock: Clock;
  readonly settings: PipelineSettings;
  readonly endpoints: Endpoints;
  readonly signal: AppendSignal;
  readonly hubName: string;
  /** The consumers every partition runs besides the routes (device state, rules). */
  readonly consumers: readonly PipelineConsumer[];
  readonly sweepers: readonly Sweeper[];
  /** How often leases, settings and cursors are brought up to date (default 1000 ms). */
  readonly tickMs?: number;
  /** A lease's life without renewal (default 15 s): how long a dead node's partition waits for another node. */
  readonly leaseMs?: number;
  readonly onError: (err: unknown, what: string) => void;
  /** This node stopped reading a partition (another node took it over): state kept from it must go. */
  readonly onPartitionStopped?: (partition: string) => void;
}

interface RunningCursor {
  readonly key: string;
  readonly cursor: PartitionCursor;
  readonly consumer: PipelineConsumer;
}

export interface RouteHealth {
  readonly name: string;
  readonly endpoint: string;
  readonly enabled: boolean;
  readonly delivered: number;
  /** Per partition this node runs: checkpoint, last sequence, records behind, and the age of the newest handled. */
  readonly partitions: Record<string, { checkpoint: number; last: number; lag: number }>;
}

export class Pipeline {
  private readonly cursors = new Map<string, Map<string, RunningCursor>>();
  private readonly reads = new Map<string, SharedReads>();
  private readonly held = new Set<string>();
  private table: RouteTable | undefined;
  private tableVersion = -1;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private stopping = false;
  /** When each sweeper may run next. */
  private readonly nextSweep = new Map<string, number>();

  constructor(private readonly deps: PipelineDeps) {}

  get owner(): string {
    return this.deps.log.localPartition;
  }

  start(): void {
    this.timer = setInterval(() => this.nudge(), this.deps.tickMs ?? 1000);
    this.timer.unref();
    this.nudge();
    // A change made through this node applies at once; other nodes see it on their next tick.
    this.deps.settings.onChange(() => { this.nudgeAgain = true; this.nudge(); });
  }

  private nudgeAgain = false;

  /** Brings leases, settings and cursors up to date now (or right after the update in progress). */
  nudge(): void {
    if (this.stopping) return;
    if (this.ticking) { this.nudgeAgain = true; return; }
    this.nudgeAgain = false;
    this.ticking = this.tick().catch((err: unknown) => this.deps.onError(err, 'pipeline tick')).finally(() => {
      this.ticking = undefined;
      if (this.nudgeAgain) this.nudge();
    });
  }

  /** Stops every cursor (after the batch in hand) and gives the leases back. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    await this.ticking;
    for (const p of [...this.cursors.keys()]) await this.stopPartition(p);
    await this.deps.store.pipeline.releaseLease(nodeLease(this.owner), this.owner).catch(() => undefined);
    await this.deps.store.pipeline.releaseLease('sweep', this.owner).catch(() => undefined);
  }

  /** The routes and enrichments as they are now (compiled once per settings version). */
  async routeTable(): Promise<RouteTable> {
    const snap = await this.deps.settings.snapshot();
    if (!this.table || this.tableVersion !== snap.version) {
      this.table = new RouteTable(snap, this.deps.hubName);
      this.tableVersion = snap.version;
    }
    return this.table;
  }

  /** Each route's delivery and lag on the partitions this node runs, and each endpoint's health here. */
  async health(): Promise<{ node: string; partitions: string[]; routes: RouteHealth[]; endpoints: Record<string, EndpointHealth> }> {
    const table = await this.routeTable();
    const routes: RouteHealth[] = [];
    for (const r of [...table.routes, table.fallback]) {
      const partitions: RouteHealth['partitions'] = {};
      let delivered = 0;
      for (const [p, running] of this.cursors) {
        const c = running.get(routeCheckpoint(r.name));
        if (!c) continue;
        const last = await this.deps.log.reader(p).lastSequence();
        partitions[p] = { checkpoint: c.cursor.position, last, lag: Math.max(0, last - c.cursor.position) };
        delivered += (c.consumer as RouteConsumer).delivered;
      }
      routes.push({ name: r.name, endpoint: r.endpoint, enabled: r.enabled, delivered, partitions });
    }
    const endpoints: Record<string, EndpointHealth> = {};
    const snap = await this.deps.settings.snapshot();
    for (const e of snap.byKind.get('endpoint') ?? []) endpoints[e.name] = { ...this.deps.endpoints.healthOf(e.name) };
    return { node: this.owner, partitions: [...this.held].sort(), routes, endpoints };
  }

  /** Records behind, per consumer and partition this node runs (for /metrics). */
  async lags(): Promise<{ consumer: string; partition: string; lag: number; position: number }[]> {
    const out: { consumer: string; partition: string; lag: number; position: number }[] = [];
    for (const [p, running] of this.cursors) {
      const last = await this.deps.log.reader(p).lastSequence();
      for (const c of running.values()) out.push({ consumer: c.consumer.name, partition: p, lag: Math.max(0, last - c.cursor.position), position: c.cursor.position });
    }
    return out;
  }

  /**
   * After a route is created, enabled or disabled: an enabled route starts at the end of every partition (IoT Hub
   * routes new messages only); a disabled one forgets its place, so enabling it later does not replay what passed.
   */
  async routeChanged(name: string, enabled: boolean | undefined, wasEnabled: boolean | undefined): Promise<void> {
    const cp = routeCheckpoint(name);
    if (!enabled) { await this.deps.store.pipeline.deleteCheckpoints(cp); return; }
    if (wasEnabled) return;
    for (const p of await this.deps.log.partitions()) {
      const last = await this.deps.log.reader(p).lastSequence();
      await this.deps.store.pipeline.writeCheckpoint(cp, p, last, this.deps.clock.now(), false);
    }
  }

  private async tick(): Promise<void> {
    const { store, clock } = this.deps;
    const leaseMs = this.deps.leaseMs ?? 15_000;
    const now = clock.now();
    await store.pipeline.acquireLease(nodeLease(this.owner), this.owner, leaseMs, now);
    const snap = await this.deps.settings.snapshot();
    const table = await this.routeTable();
    await this.deps.endpoints.sync(snap.byKind.get('endpoint') ?? []);
    for (const p of await this.deps.log.partitions()) {
      if (this.stopping) return;
      if (await this.shouldHold(p, leaseMs, now)) {
        this.held.add(p);
        await this.syncCursors(p, table, snap.byKind.get('endpoint') ?? []);
      } else if (this.held.has(p)) {
        await this.stopPartition(p);
        await store.pipeline.releaseLease(partitionLease(p), this.owner);
      }
    }
    await this.sweep(leaseMs, now);
  }

  private async shouldHold(p: string, leaseMs: number, now: number): Promise<boolean> {
    const pl = this.deps.store.pipeline;
    if (p !== this.owner) {
      const holder = await pl.leaseHolder(nodeLease(p), now);
      // Its own node is up: that node runs it.
      if (holder !== undefined) return false;
    }
    return pl.acquireLease(partitionLease(p), this.owner, leaseMs, now);
  }

  private async syncCursors(p: string, table: RouteTable, endpoints: readonly SettingRecord[]): Promise<void> {
    const open = new Set(endpoints.map((e) => e.name));
    const wanted = new Map<string, PipelineConsumer>();
    for (const c of this.deps.consumers) wanted.set(`${c.name}`, c);
    for (const r of table.routes) {
      if (!r.enabled || r.endpoint === BUILT_IN_ENDPOINT || !open.has(r.endpoint)) continue;
      const consumer = new RouteConsumer(r, () => this.table ?? table, {
        store: this.deps.store, endpoints: this.deps.endpoints, isStopping: () => this.stopping,
      });
      wanted.set(`${consumer.name}#${r.rev}#${r.endpoint}`, consumer);
    }
    let running = this.cursors.get(p);
    if (!running) { running = new Map(); this.cursors.set(p, running); }
    for (const [name, rc] of running) {
      if (wanted.has(rc.key)) continue;
      running.delete(name);
      await rc.cursor.stop();
    }
    for (const [key, consumer] of wanted) {
      if (running.get(consumer.name)?.key === key) continue;
      const isRoute = consumer instanceof RouteConsumer;
      const cursor = new PartitionCursor({
        store: this.deps.store.pipeline, reads: this.sharedReads(p), partition: p, consumer, clock: this.deps.clock,
        signal: this.deps.signal, startAt: isRoute ? 'earliest' : 'latest',
        onError: (err) => this.deps.onError(err, `${consumer.name} on partition ${p}`),
      });
      running.set(consumer.name, { key, cursor, consumer });
      cursor.start();
    }
  }

  private sharedReads(p: string): SharedReads {
    let r = this.reads.get(p);
    if (!r) { r = new SharedReads(this.deps.log.reader(p), p); this.reads.set(p, r); }
    return r;
  }

  private async stopPartition(p: string): Promise<void> {
    const running = this.cursors.get(p);
    this.cursors.delete(p);
    this.held.delete(p);
    this.reads.delete(p);
    if (running) await Promise.all([...running.values()].map((r) => r.cursor.stop()));
    this.deps.onPartitionStopped?.(p);
  }

  private async sweep(leaseMs: number, now: number): Promise<void> {
    if (this.deps.sweepers.length === 0) return;
    const leader = this.deps.sweepers.some((s) => !s.perNode)
      && await this.deps.store.pipeline.acquireLease('sweep', this.owner, leaseMs, now);
    for (const s of this.deps.sweepers) {
      if (!s.perNode && !leader) continue;
      if (now < (this.nextSweep.get(s.name) ?? 0)) continue;
      const started = this.deps.clock.now();
      await s.run(now).catch((err: unknown) => this.deps.onError(err, `sweep ${s.name}`));
      // A sweep over a large fleet (a query over every identity) may take a while: it gets at most a tenth of the time.
      const tookMs = this.deps.clock.now() - started;
      this.nextSweep.set(s.name, now + Math.max(s.intervalMs, SWEEP_SPACING * tookMs));
    }
  }
}

/** A sweep waits at least this many times its own duration before it runs again. */
const SWEEP_SPACING = 10;

function nodeLease(partition: string): string {
  return `node:${partition}`;
}

function partitionLease(partition: string): string {
  return `partition:${partition}`;
}

export { FALLBACK_ROUTE };
