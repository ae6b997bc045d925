/**
 * Reading the EventLog from outside: named consumer groups whose positions the hub keeps (server-side checkpoints,
 * one per partition), and plain reads from a position or a time. A read never holds up ingestion: it pulls what is
 * committed and returns. Positions are `{partition: sequence}`, read after; a group starts where it was created to
 * start (earliest, latest, a time, or a sequence in every partition), and a partition that appears later is read from
 * its beginning.
 *
 * Views: `all` is every record of the log (telemetry, system events, dead letters); `events` is IoT Hub's built-in
 * endpoint: the telemetry the routes (or `$fallback`) send to `events`, and the system events a route sends there.
 */

import { ArgumentInvalid } from '../errors/index.js';
import { EVENT_SOURCES } from '../events/index.js';
import type { Clock } from '../../ports/clock/index.js';
import type { EventLogSet } from '../../ports/eventlog/index.js';
import { identityKeyText, type JsonObject, type Store } from '../../ports/store/index.js';
import { PipelineMessage } from './message.js';
import { twinsOf, type RouteTable } from './routing.js';
import { objectBody, onlyFields, type PipelineSettings } from './settings.js';

export type Positions = Record<string, number>;
export type ConsumerView = 'all' | 'events';
export type StartSpec = { readonly kind: 'earliest' } | { readonly kind: 'latest' } | { readonly kind: 'time'; readonly timeMs: number } | { readonly kind: 'sequence'; readonly sequence: number };

/** Records per read at most. */
export const MAX_READ = 1000;

export interface ReadRequest {
  readonly view: ConsumerView;
  /** Where each partition's read starts (after); partitions not named start per `start`. */
  readonly positions: Positions;
  readonly start: StartSpec;
  readonly limit: number;
  readonly deviceId?: string;
  /** Only these record kinds (telemetry, twinChange, …, deadLetter). */
  readonly sources?: readonly string[];
}

export interface ReadResult {
  readonly events: JsonObject[];
  /** Where the next read starts: pass it back (or checkpoint it). Covers records filtered out too. */
  readonly positions: Positions;
}

export function parseStart(value: unknown): StartSpec {
  if (value === undefined || value === 'latest') return { kind: 'latest' };
  if (value === 'earliest') return { kind: 'earliest' };
  if (typeof value === 'object' && value !== null) {
    const v = value as Record<string, unknown>;
    if (typeof v.time === 'string' && !Number.isNaN(Date.parse(v.time))) return { kind: 'time', timeMs: Date.parse(v.time) };
    if (typeof v.sequence === 'number' && Number.isInteger(v.sequence) && v.sequence >= 0) return { kind: 'sequence', sequence: v.sequence };
  }
  throw new ArgumentInvalid(`start must be "earliest", "latest", {"time": "ISO 8601"} or {"sequence": n}, got ${JSON.stringify(value)}`);
}

/** A start as the query string of a read writes it: earliest, latest, an ISO time, or a sequence number. */
export function parseStartText(text: string | undefined): StartSpec {
  if (text === undefined || text === '' || text === 'latest') return { kind: 'latest' };
  if (text === 'earliest') return { kind: 'earliest' };
  if (/^\d+$/.test(text)) return { kind: 'sequence', sequence: Number(text) };
  const t = Date.parse(text);
  if (!Number.isNaN(t)) return { kind: 'time', timeMs: t };
  throw new ArgumentInvalid(`start ${JSON.stringify(text)} must be earliest, latest, an ISO 8601 time or a sequence number`);
}

function parseView(value: unknown): ConsumerView {
  if (value === undefined) return 'events';
  if (value === 'all' || value === 'events') return value;
  throw new ArgumentInvalid(`view must be "events" (the built-in endpoint) or "all" (every record), got ${JSON.stringify(value)}`);
}

export function parseSources(value: unknown): string[] | undefined {
  if (value === undefined) return undefined;
  const known = [...EVENT_SOURCES, 'deadLetter'];
  if (!Array.isArray(value) || value.length === 0 || !value.every((v) => typeof v === 'string' && known.includes(v))) {
    throw new ArgumentInvalid(`sources must be a non-empty array of ${known.join(', ')}; got ${JSON.stringify(value)}`);
  }
  return value as string[];
}

/** Positions as a client sends them: `{partition: sequence}` with non-negative integers. */
export function parsePositions(value: unknown): Positions {
  const p = objectBody(value, 'positions');
  const out: Positions = {};
  for (const [k, v] of Object.entries(p)) {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new ArgumentInvalid(`positions['${k}'] must be a sequence number (an integer ≥ 0), got ${JSON.stringify(v)}`);
    out[k] = v;
  }
  return out;
}

/** Positions as one opaque token for a URL (base64url JSON). */
export function encodePositions(p: Positions): string {
  return Buffer.from(JSON.stringify(p)).toString('base64url');
}

export function decodePositions(token: string): Positions {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw new ArgumentInvalid('the position token is not one this hub gave');
  }
  return parsePositions(value);
}

/** The checkpoint name of a consumer group. */
export function groupCheckpoint(name: string): string {
  return `group:${name}`;
}

export interface ConsumerGroupsDeps {
  readonly store: Store;
  readonly log: EventLogSet;
  readonly settings: PipelineSettings;
  readonly clock: Clock;
  /** The routing table now (for the `events` view). */
  readonly routes: () => Promise<RouteTable>;
}

export class ConsumerGroups {
  private known: { atMs: number; partitions: Promise<string[]> } | undefined;

  constructor(private readonly deps: ConsumerGroupsDeps) {
    deps.settings.register('consumerGroup', (name, body) => {
      const doc = objectBody(body ?? {}, 'consumer group');
      onlyFields(doc, ['view', 'start', 'sources'], `consumer group '${name}'`);
      const start = parseStart(doc.start);
      const sources = parseSources(doc.sources);
      return { view: parseView(doc.view), start: doc.start === undefined ? 'latest' : doc.start as JsonObject, ...(sources ? { sources } : {}) };
    }, async (name) => { await this.deps.store.pipeline.deleteCheckpoints(groupCheckpoint(name)); });
  }

  /** Creates a group and sets its positions from its start; 409999 when the name is taken. */
  async create(name: string, body: unknown): Promise<JsonObject> {
    const r = await this.deps.settings.put('consumerGroup', name, body, { mode: 'create' });
    await this.seek(name, parseStart(r.doc.start));
    return r.doc;
  }

  /** Moves every partition's checkpoint of the group to `start`. */
  async seek(name: string, start: StartSpec): Promise<Positions> {
    await this.deps.settings.get('consumerGroup', name);
    const positions: Positions = {};
    for (const p of await this.deps.log.partitions()) {
      positions[p] = await this.startOf(p, start);
      await this.deps.store.pipeline.writeCheckpoint(groupCheckpoint(name), p, positions[p], this.deps.clock.now(), false);
    }
    return positions;
  }

  async checkpoints(name: string): Promise<Positions> {
    await this.deps.settings.get('consumerGroup', name);
    return this.deps.store.pipeline.readCheckpoints(groupCheckpoint(name));
  }

  /** Stores positions as the group's checkpoints (any direction: a client may rewind its own group). */
  async checkpoint(name: string, positions: Positions): Promise<Positions> {
    await this.deps.settings.get('consumerGroup', name);
    const known = new Set(await this.deps.log.partitions());
    for (const [p, seq] of Object.entries(positions)) {
      if (!known.has(p)) throw new ArgumentInvalid(`positions: there is no partition '${p}' (partitions: ${[...known].join(', ')})`);
      await this.deps.store.pipeline.writeCheckpoint(groupCheckpoint(name), p, seq, this.deps.clock.now(), false);
    }
    return this.deps.store.pipeline.readCheckpoints(groupCheckpoint(name));
  }

  /** Reads a group from its checkpoints (or from `positions` when given, e.g. the previous read's). */
  async readGroup(name: string, opts: { limit: number; positions?: Positions; deviceId?: string }): Promise<ReadResult> {
    const group = await this.deps.settings.get('consumerGroup', name);
    const saved = opts.positions ?? await this.deps.store.pipeline.readCheckpoints(groupCheckpoint(name));
    return this.read({
      view: group.doc.view as ConsumerView, positions: saved, start: { kind: 'earliest' }, limit: opts.limit,
      deviceId: opts.deviceId, sources: group.doc.sources as string[] | undefined,
    });
  }

  /** Reads up to `limit` records over all partitions, each from its position. */
  async read(req: ReadRequest): Promise<ReadResult> {
    if (!Number.isInteger(req.limit) || req.limit < 1 || req.limit > MAX_READ) throw new ArgumentInvalid(`limit must be 1..${MAX_READ}, got ${req.limit}`);
    const positions: Positions = { ...req.positions };
    const events: JsonObject[] = [];
    const table = req.view === 'events' ? await this.deps.routes() : undefined;
    for (const p of await this.partitions()) {
      positions[p] ??= await this.startOf(p, req.start);
      const reader = this.deps.log.reader(p);
      // Filtered records still move the position, so a sparse view does not read the same records again.
      for (let rounds = 0; events.length < req.limit && rounds < 10; rounds++) {
        const batch = await reader.read({ after: positions[p], limit: req.limit - events.length, deviceId: req.deviceId });
        if (batch.length === 0) break;
        const messages = batch.map((e) => new PipelineMessage(p, e));
        const twins = table?.builtInNeedsTwin ? await twinsOf(this.deps.store, messages) : undefined;
        for (const m of messages) {
          if (req.sources && !req.sources.includes(m.source)) continue;
          if (table && !table.reachesBuiltIn(m, twins?.get(identityKeyText(m.key)))) continue;
          events.push(m.toJson());
        }
        positions[p] = batch[batch.length - 1].sequence;
      }
      if (events.length >= req.limit) break;
    }
    return { events, positions };
  }

  /**
   * A device's records enqueued in [fromMs, toMs], oldest first, at most `limit` (its recent raw telemetry when
   * `sources` is ['telemetry']): each partition is read from the time on, filtered by device.
   */
  async readDevice(deviceId: string, opts: { fromMs: number; toMs: number; limit: number; sources?: readonly string[] }): Promise<JsonObject[]> {
    if (!Number.isInteger(opts.limit) || opts.limit < 1 || opts.limit > MAX_READ) throw new ArgumentInvalid(`limit must be 1..${MAX_READ}, got ${opts.limit}`);
    const out: PipelineMessage[] = [];
    for (const p of await this.deps.log.partitions()) {
      const reader = this.deps.log.reader(p);
      let after = await reader.seekTime(opts.fromMs);
      for (;;) {
        const batch = await reader.read({ after, limit: MAX_READ, deviceId });
        if (batch.length === 0) break;
        let past = false;
        for (const e of batch) {
          if (e.enqueuedTimeMs > opts.toMs) { past = true; break; }
          if (e.enqueuedTimeMs >= opts.fromMs && (!opts.sources || opts.sources.includes(e.kind))) out.push(new PipelineMessage(p, e));
        }
        if (past || out.length >= opts.limit * 4) break;
        after = batch[batch.length - 1].sequence;
      }
    }
    out.sort((a, b) => a.event.enqueuedTimeMs - b.event.enqueuedTimeMs || a.event.sequence - b.event.sequence);
    return out.slice(0, opts.limit).map((m) => m.toJson());
  }

  /** The lag of a group: records after its checkpoint in each partition. */
  async lag(name: string): Promise<Record<string, { checkpoint: number; last: number; lag: number }>> {
    const saved = await this.checkpoints(name);
    const out: Record<string, { checkpoint: number; last: number; lag: number }> = {};
    for (const p of await this.deps.log.partitions()) {
      const last = await this.deps.log.reader(p).lastSequence();
      const checkpoint = saved[p] ?? 0;
      out[p] = { checkpoint, last, lag: Math.max(0, last - checkpoint) };
    }
    return out;
  }

  /** The partitions, asked of the log at most once a second (on JetStream it is a request to the server). */
  private partitions(): Promise<string[]> {
    const now = this.deps.clock.now();
    if (!this.known || now - this.known.atMs >= 1000) {
      const partitions = this.deps.log.partitions();
      this.known = { atMs: now, partitions };
      partitions.catch(() => { this.known = undefined; });
    }
    return this.known.partitions;
  }

  private async startOf(partition: string, start: StartSpec): Promise<number> {
    const reader = this.deps.log.reader(partition);
    switch (start.kind) {
      case 'earliest': return 0;
      case 'latest': return reader.lastSequence();
      case 'time': return reader.seekTime(start.timeMs);
      case 'sequence': return Math.max(0, start.sequence - 1);
    }
  }
}
