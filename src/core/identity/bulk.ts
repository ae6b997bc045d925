import { ArgumentInvalid, CorralError, DeviceNotFound, PreconditionFailed } from '../errors/index.js';
import { publishDesired, replaceTwinSections, replacementPatch, twinEtag, type TwinLimits } from '../twins/index.js';
import type { Bus } from '../../ports/bus/index.js';
import { isoTime, type Clock } from '../../ports/clock/index.js';
import { identityKeyText, type BatchOp, type IdentityKey, type IdentityRecord, type Store } from '../../ports/store/index.js';
import { parseTwinContent, type TwinContent } from './twin-content.js';
import { alreadyExists, checkKey, lifecycleEntry, notFound, revokes, type Registry } from './registry.js';
import type { SystemEvents, TwinChangeNotice } from '../events/index.js';
import { isRecord, parseIdentitySpec, type IdentitySpec } from './spec.js';

/** IoT Hub's bulk registry operation modes (case-insensitive on the wire). */
export type ImportMode =
  | 'create' | 'update' | 'updateIfMatchETag' | 'createOrUpdate' | 'delete' | 'deleteIfMatchETag'
  | 'updateTwin' | 'updateTwinIfMatchETag';

const MODES = new Map<string, ImportMode>(
  (['create', 'update', 'updateIfMatchETag', 'createOrUpdate', 'delete', 'deleteIfMatchETag', 'updateTwin', 'updateTwinIfMatchETag'] as const)
    .map((m) => [m.toLowerCase(), m]),
);

/** One parsed item of a bulk request or an import line (ExportImportDevice). */
export interface BulkItem {
  readonly key: IdentityKey;
  readonly mode: ImportMode;
  readonly etag?: string;
  readonly twinEtag?: string;
  readonly spec: IdentitySpec;
  readonly twin?: TwinContent;
}

export interface BulkError {
  readonly deviceId: string;
  readonly moduleId?: string;
  readonly errorCode: string;
  readonly errorStatus: string;
  readonly operation?: string;
}

/** IoT Hub's BulkRegistryOperationResult. */
export interface BulkResult {
  readonly isSuccessful: boolean;
  readonly errors: BulkError[];
  readonly warnings: never[];
}

export const MAX_BULK = 100;

/** Parses one ExportImportDevice object; `defaultMode` applies when it has no importMode. */
export function parseBulkItem(raw: unknown, defaultMode: ImportMode | undefined, limits: TwinLimits): BulkItem {
  if (!isRecord(raw)) throw new ArgumentInvalid('each item must be a JSON object');
  const deviceId = raw.id ?? raw.deviceId;
  const moduleId = raw.moduleId ?? '';
  if (typeof moduleId !== 'string') throw new ArgumentInvalid('moduleId must be a string');
  const key = checkKey({ deviceId: deviceId as string, moduleId });
  const modeText = raw.importMode;
  let mode = defaultMode;
  if (modeText !== undefined && modeText !== null) {
    mode = typeof modeText === 'string' ? MODES.get(modeText.toLowerCase()) : undefined;
    if (!mode) throw new ArgumentInvalid(`importMode ${JSON.stringify(modeText)} is not one of ${[...MODES.values()].join(', ')}`);
  }
  if (!mode) throw new ArgumentInvalid('importMode is missing');
  const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v.replace(/^"(.*)"$/, '$1') : undefined);
  return {
    key, mode, etag: str(raw.eTag ?? raw.etag), twinEtag: str(raw.twinETag ?? raw.twinEtag),
    spec: parseIdentitySpec(raw), twin: parseTwinContent(raw),
  };
}

function toError(item: { key: IdentityKey; mode?: string }, err: unknown): BulkError {
  const e = err instanceof CorralError ? err : undefined;
  return {
    deviceId: item.key.deviceId,
    moduleId: item.key.moduleId || undefined,
    errorCode: e?.codeName ?? 'ServerError',
    errorStatus: e?.message ?? 'unexpected failure',
    operation: item.mode,
  };
}

/** Runs IoT Hub's bulk registry operations (1–100 items, per-item results) in one store transaction. */
export class BulkRegistry {
  constructor(private readonly deps: { store: Store; clock: Clock; registry: Registry; limits: TwinLimits; bus?: Bus; events?: SystemEvents }) {}

  async run(body: unknown): Promise<BulkResult> {
    if (!Array.isArray(body) || body.length < 1 || body.length > MAX_BULK) {
      throw new ArgumentInvalid(`the body must be an array of 1 to ${MAX_BULK} devices`);
    }
    const errors: BulkError[] = [];
    let items: BulkItem[] = [];
    for (const raw of body) {
      try { items.push(parseBulkItem(raw, undefined, this.deps.limits)); } catch (err) {
        const r = isRecord(raw) ? raw : {};
        errors.push(toError({ key: { deviceId: String(r.id ?? r.deviceId ?? ''), moduleId: String(r.moduleId ?? '') }, mode: String(r.importMode ?? '') }, err));
      }
    }
    // A write that lost a race with another writer is planned again from fresh records.
    for (let attempt = 0; attempt < 5 && items.length > 0; attempt++) {
      const parents = items.filter((i) => i.key.moduleId !== '').map((i) => ({ deviceId: i.key.deviceId, moduleId: '' }));
      const existing = await this.deps.store.identities.getMany([...items.map((i) => i.key), ...parents]);
      const byKey = new Map(existing.map((r) => [identityKeyText(r), r]));
      const byKeyBefore = new Map(byKey);
      const planned: { item: BulkItem; op: BatchOp }[] = [];
      for (const item of items) {
        try {
          const op = this.plan(item, byKey.get(identityKeyText(item.key)), byKey);
          planned.push({ item, op });
          trackPlanned(byKey, op);
        } catch (err) {
          errors.push(toError(item, err));
        }
      }
      // Modules of devices about to be deleted are read now: after the batch they are gone, connections not.
      const deviceDeletes = planned.map((p) => p.op).filter((op): op is Extract<BatchOp, { kind: 'delete' }> => op.kind === 'delete' && op.key.moduleId === '');
      const doomed = await this.deps.registry.withModules(deviceDeletes.map((op) => op.key));
      const applied = await this.deps.store.identities.applyBatch(planned.map((p) => p.op));
      const done = planned.filter((_, i) => applied[i]).map((p) => p.op);
      await this.kickRevoked(done, byKeyBefore, doomed);
      await this.notifyDesired(done, byKeyBefore);
      await this.emitEvents(done, byKeyBefore);
      items = planned.filter((_, i) => !applied[i]).map((p) => p.item);
    }
    for (const item of items) errors.push(toError(item, new PreconditionFailed(`'${item.key.deviceId}'`, '(read)', 'changed concurrently')));
    return { isSuccessful: errors.length === 0, errors, warnings: [] };
  }

  private plan(item: BulkItem, current: IdentityRecord | undefined, byKey: Map<string, IdentityRecord>): BatchOp {
    const { registry } = this.deps;
    const etagOk = (etag: string | undefined, actual: string) => etag === undefined || etag === '*' || etag === actual;
    switch (item.mode) {
      case 'create': {
        if (current) throw alreadyExists(item.key);
        if (item.key.moduleId && !byKey.has(identityKeyText({ deviceId: item.key.deviceId, moduleId: '' }))) throw new DeviceNotFound(item.key.deviceId);
        return { kind: 'insert', record: this.withTwin(registry.build(item.key, item.spec), item.twin) };
      }
      case 'createOrUpdate': {
        if (!current) {
          if (item.key.moduleId && !byKey.has(identityKeyText({ deviceId: item.key.deviceId, moduleId: '' }))) throw new DeviceNotFound(item.key.deviceId);
          return { kind: 'insert', record: this.withTwin(registry.build(item.key, item.spec), item.twin) };
        }
        return { kind: 'replace', record: this.withTwin(registry.rebuild(current, item.spec), item.twin), expectedRev: current.rev };
      }
      case 'update':
      case 'updateIfMatchETag': {
        if (!current) throw notFound(item.key);
        if (item.mode === 'updateIfMatchETag' && !etagOk(item.etag, current.etag)) throw new PreconditionFailed(`'${item.key.deviceId}'`, item.etag ?? '', current.etag);
        return { kind: 'replace', record: this.withTwin(registry.rebuild(current, item.spec), item.twin), expectedRev: current.rev };
      }
      case 'updateTwin':
      case 'updateTwinIfMatchETag': {
        if (!current) throw notFound(item.key);
        const te = twinEtag(current.twin);
        if (item.mode === 'updateTwinIfMatchETag' && !etagOk(item.twinEtag, te)) throw new PreconditionFailed(`twin of '${item.key.deviceId}'`, item.twinEtag ?? '', te);
        return { kind: 'replace', record: this.withTwin(current, item.twin ?? {}), expectedRev: current.rev };
      }
      case 'delete':
      case 'deleteIfMatchETag': {
        if (!current) throw notFound(item.key);
        if (item.mode === 'deleteIfMatchETag' && !etagOk(item.etag, current.etag)) throw new PreconditionFailed(`'${item.key.deviceId}'`, item.etag ?? '', current.etag);
        return { kind: 'delete', key: item.key, expectedRev: current.rev };
      }
    }
  }

  /** Deleted identities, and those whose credentials or status changed, lose their live connections. */
  private async kickRevoked(ops: readonly BatchOp[], before: Map<string, IdentityRecord>, doomed: readonly IdentityKey[]): Promise<void> {
    const deleted: IdentityKey[] = [];
    const revoked: IdentityKey[] = [];
    for (const op of ops) {
      if (op.kind === 'delete') {
        if (op.key.moduleId !== '') deleted.push(op.key);
        else deleted.push(...doomed.filter((k) => k.deviceId === op.key.deviceId));
      } else if (op.kind === 'replace') {
        const old = before.get(identityKeyText(op.record));
        if (old && revokes(old, op.record)) revoked.push({ deviceId: op.record.deviceId, moduleId: op.record.moduleId });
      }
    }
    const keys = [...deleted, ...(await this.deps.registry.withModules(revoked))];
    if (keys.length) await this.deps.registry.kick(keys, 'its identity was deleted, disabled or its credentials changed');
  }

  /** Life-cycle events for creates and deletes, twin-change events for replaced twins. */
  private async emitEvents(ops: readonly BatchOp[], before: Map<string, IdentityRecord>): Promise<void> {
    const events = this.deps.events;
    if (!events) return;
    const created = ops.flatMap((op) => (op.kind === 'insert' ? [lifecycleEntry(op.record)] : []));
    const deleted = ops.flatMap((op) => {
      const old = op.kind === 'delete' ? before.get(identityKeyText(op.key)) : undefined;
      return old ? [lifecycleEntry(old)] : [];
    });
    const twins: TwinChangeNotice[] = ops.flatMap((op) => {
      const old = op.kind === 'replace' ? before.get(identityKeyText(op.record)) : undefined;
      if (op.kind !== 'replace' || !old || old.twin.version === op.record.twin.version) return [];
      const t = op.record.twin;
      return [{ key: { deviceId: op.record.deviceId, moduleId: op.record.moduleId }, op: 'replaceTwin' as const, version: t.version, tags: t.tags, desired: { patch: t.desired, version: t.desiredVersion } }];
    });
    void events.lifecycle('create', created);
    void events.lifecycle('delete', deleted);
    void events.twinChanged(twins);
  }

  /** Connected devices hear of desired properties a bulk updateTwin (or update with a twin) replaced. */
  private async notifyDesired(ops: readonly BatchOp[], before: Map<string, IdentityRecord>): Promise<void> {
    const bus = this.deps.bus;
    if (!bus) return;
    for (const op of ops) {
      if (op.kind !== 'replace') continue;
      const old = before.get(identityKeyText(op.record));
      if (!old || old.twin.desiredVersion === op.record.twin.desiredVersion) continue;
      await publishDesired(bus, op.record, op.record.twin.desiredVersion, replacementPatch(old.twin.desired, op.record.twin.desired));
    }
  }

  private withTwin(record: IdentityRecord, twin: TwinContent | undefined): IdentityRecord {
    if (!twin) return record;
    return { ...record, twin: replaceTwinSections(record.twin, twin, isoTime(this.deps.clock.now()), this.deps.limits) };
  }

}

/**
 * Keeps `byKey` at the state the batch will have after `op`, so later items of the same call see it: a module
 * whose device an earlier item deletes has no parent, one whose device an earlier item creates has one.
 */
function trackPlanned(byKey: Map<string, IdentityRecord>, op: BatchOp): void {
  if (op.kind !== 'delete') {
    byKey.set(identityKeyText(op.record), op.record);
    return;
  }
  const prefix = identityKeyText({ deviceId: op.key.deviceId, moduleId: '' });
  if (op.key.moduleId !== '') byKey.delete(identityKeyText(op.key));
  else for (const k of [...byKey.keys()]) if (k.startsWith(prefix)) byKey.delete(k);
}
