/**
 * The pipeline's settings (routes, endpoints, enrichments, rules, consumer groups, health profiles): named JSON
 * documents in the Store, each kind checked by its own validator before it is stored. Every node reads them through
 * `snapshot()`, which re-reads only when the Store's settings version moved, so a change made on any node reaches
 * every node within a poll.
 */

import { ArgumentInvalid, PipelineItemConflict, PipelineItemNotFound } from '../errors/index.js';
import { isoTime, type Clock } from '../../ports/clock/index.js';
import type { JsonObject } from '../../ports/store/index.js';
import type { PipelineSettingKind, PipelineStore, SettingRecord } from '../../ports/store/pipeline.js';

const KINDS: readonly PipelineSettingKind[] = ['endpoint', 'route', 'enrichment', 'rule', 'consumerGroup', 'healthProfile'];

/** IoT Hub's rule for route and endpoint names: letters, digits, '-', '_' and '.', 1 to 64 of them. */
const NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** Names the hub itself gives meaning to (`$fallback`, the built-in endpoint `events`). */
const RESERVED: Partial<Record<PipelineSettingKind, readonly string[]>> = { route: ['$fallback'] };

/** What a kind's name is called in messages. */
export const KIND_NAMES: Readonly<Record<PipelineSettingKind, string>> = {
  endpoint: 'endpoint', route: 'route', enrichment: 'enrichment', rule: 'rule', consumerGroup: 'consumer group', healthProfile: 'health profile',
};

export interface SettingsSnapshot {
  readonly version: number;
  readonly byKind: ReadonlyMap<PipelineSettingKind, readonly SettingRecord[]>;
}

/**
 * Checks a document of one kind and returns it as it is to be stored (defaults filled in); throws ArgumentInvalid
 * naming the field. `settings` lets it check references (a route's endpoint must exist).
 */
export type SettingValidator = (name: string, doc: unknown, settings: PipelineSettings) => Promise<JsonObject> | JsonObject;

/** Throws PipelineItemConflict when `name` of kind may not be removed (a route still sends to the endpoint, say). */
export type RemovalCheck = (name: string, settings: PipelineSettings) => Promise<void>;

export interface PipelineSettingsDeps {
  readonly store: PipelineStore;
  readonly clock: Clock;
  /** How long a snapshot is trusted without asking the Store for the version (default 500 ms). */
  readonly pollMs?: number;
}

/** A setting as the REST API shows it. */
export function settingView(r: SettingRecord): JsonObject {
  return { name: r.name, ...r.doc, etag: `"${r.rev}"`, createdTime: isoTime(r.createdMs), updatedTime: isoTime(r.updatedMs) };
}

function parseEtag(ifMatch: string | undefined): number | undefined {
  if (ifMatch === undefined || ifMatch === '*') return undefined;
  const rev = Number(ifMatch.replace(/^W\//, '').replace(/"/g, ''));
  if (!Number.isInteger(rev) || rev < 1) throw new ArgumentInvalid(`If-Match ${JSON.stringify(ifMatch)} is not an etag this hub gave`);
  return rev;
}

export class PipelineSettings {
  private readonly validators = new Map<PipelineSettingKind, SettingValidator>();
  private readonly removalChecks = new Map<PipelineSettingKind, RemovalCheck>();
  private readonly listeners = new Set<() => void>();
  private cached: SettingsSnapshot | undefined;
  private checkedAtMs = 0;
  private reading: Promise<SettingsSnapshot> | undefined;

  constructor(private readonly deps: PipelineSettingsDeps) {}

  /** Each kind's validator is registered by the module that owns the kind (routing, rules, consumers). */
  register(kind: PipelineSettingKind, validate: SettingValidator, canRemove?: RemovalCheck): void {
    this.validators.set(kind, validate);
    if (canRemove) this.removalChecks.set(kind, canRemove);
  }

  /** Called after every change made through this node (other nodes notice through the version). */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async list(kind: PipelineSettingKind): Promise<SettingRecord[]> {
    return this.deps.store.listSettings(kind);
  }

  /** 404 when absent. */
  async get(kind: PipelineSettingKind, name: string): Promise<SettingRecord> {
    const r = await this.deps.store.getSetting(kind, name);
    if (!r) throw new PipelineItemNotFound(KIND_NAMES[kind], name);
    return r;
  }

  async find(kind: PipelineSettingKind, name: string): Promise<SettingRecord | undefined> {
    return this.deps.store.getSetting(kind, name);
  }

  /**
   * Creates or replaces. `mode` 'create' refuses an existing name (409999); an If-Match etag replaces only that
   * revision (409999 when it moved, 404 when absent).
   */
  async put(kind: PipelineSettingKind, name: string, body: unknown, opts: { mode?: 'create' | 'upsert'; ifMatch?: string } = {}): Promise<SettingRecord> {
    checkName(kind, name);
    const validate = this.validators.get(kind);
    if (!validate) throw new Error(`no validator is registered for ${kind}`);
    const doc = await validate(name, body, this);
    const rev = parseEtag(opts.ifMatch);
    const precondition = opts.mode === 'create' ? 'absent' as const : rev;
    const stored = await this.deps.store.putSetting(kind, name, doc, this.deps.clock.now(), precondition);
    if (!stored) {
      if (precondition === 'absent') throw new PipelineItemConflict(`a ${KIND_NAMES[kind]} named '${name}' exists already`);
      if (!(await this.deps.store.getSetting(kind, name))) throw new PipelineItemNotFound(KIND_NAMES[kind], name);
      throw new PipelineItemConflict(`${KIND_NAMES[kind]} '${name}' changed since etag ${opts.ifMatch}; read it again`);
    }
    this.changed();
    return stored;
  }

  /** 404 when absent; 409999 when something still refers to it. */
  async remove(kind: PipelineSettingKind, name: string): Promise<void> {
    await this.removalChecks.get(kind)?.(name, this);
    if (!(await this.deps.store.deleteSetting(kind, name))) throw new PipelineItemNotFound(KIND_NAMES[kind], name);
    this.changed();
  }

  /** Every setting, re-read when the Store's version moved (checked at most every pollMs). */
  async snapshot(): Promise<SettingsSnapshot> {
    const now = this.deps.clock.now();
    if (this.cached && now - this.checkedAtMs < (this.deps.pollMs ?? 500)) return this.cached;
    return (this.reading ??= this.read(now).finally(() => { this.reading = undefined; }));
  }

  /** Forgets the cached snapshot: the next snapshot() reads the Store. */
  invalidate(): void {
    this.checkedAtMs = 0;
  }

  private async read(now: number): Promise<SettingsSnapshot> {
    const version = await this.deps.store.settingsVersion();
    this.checkedAtMs = now;
    if (this.cached && this.cached.version === version) return this.cached;
    const byKind = new Map<PipelineSettingKind, readonly SettingRecord[]>();
    for (const kind of KINDS) byKind.set(kind, await this.deps.store.listSettings(kind));
    this.cached = { version, byKind };
    return this.cached;
  }

  private changed(): void {
    this.invalidate();
    for (const l of this.listeners) l();
  }
}

function checkName(kind: PipelineSettingKind, name: string): void {
  if (RESERVED[kind]?.includes(name)) return;
  if (!NAME.test(name)) {
    throw new ArgumentInvalid(`${KIND_NAMES[kind]} name ${JSON.stringify(name)} is invalid: use 1 to 64 letters, digits, '-', '_' or '.'`);
  }
}

/** Reads an object body or throws ArgumentInvalid. */
export function objectBody(doc: unknown, what: string): Record<string, unknown> {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new ArgumentInvalid(`the ${what} must be a JSON object`);
  return doc as Record<string, unknown>;
}

/** Refuses fields a document does not know, naming them (a typo must not be ignored silently). */
export function onlyFields(doc: Record<string, unknown>, allowed: readonly string[], what: string): void {
  const server = ['name', 'etag', 'createdTime', 'updatedTime'];
  for (const key of Object.keys(doc)) {
    if (!allowed.includes(key) && !server.includes(key)) throw new ArgumentInvalid(`${what}: unknown field '${key}' (allowed: ${allowed.join(', ')})`);
  }
}
