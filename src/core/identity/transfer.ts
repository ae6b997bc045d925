import { ArgumentInvalid, CorralError } from '../errors/index.js';
import { twinEtag, type TwinLimits } from '../twins/index.js';
import { isoTime, type Clock } from '../../ports/clock/index.js';
import type { KeyRing } from '../../ports/keyring/index.js';
import { identityKeyText, type IdentityKey, type IdentityRecord, type ImportSession, type Store } from '../../ports/store/index.js';
import { parseBulkItem, type BulkItem } from './bulk.js';
import type { Registry } from './registry.js';
import { checkTwinSections, newTwin, replaceTwinSections } from '../twins/index.js';
import { authenticationView } from './views.js';

/** One bad line of an import: its 1-based number and what was wrong with it. */
export interface ImportLineError {
  readonly line: number;
  readonly deviceId?: string;
  readonly errorCode: string;
  readonly message: string;
}

export interface ImportReport {
  /** True when every line was good and the registry now holds them all; false: nothing was written. */
  readonly ok: boolean;
  readonly lines: number;
  readonly upserted: number;
  readonly deleted: number;
  readonly errorCount: number;
  /** The first MAX_REPORTED_ERRORS errors. */
  readonly errors: ImportLineError[];
}

const STAGE_BATCH = 2000;
const EXPORT_PAGE = 1000;
export const MAX_REPORTED_ERRORS = 1000;

/** A device or module as one JSON Lines record (IoT Hub's ExportImportDevice with its twin). */
export function exportRecord(r: IdentityRecord, keyring: KeyRing, withKeys: boolean) {
  return {
    id: r.deviceId,
    moduleId: r.moduleId || undefined,
    eTag: r.etag,
    status: r.status,
    statusReason: r.statusReason,
    authentication: authenticationView(r, keyring, withKeys),
    capabilities: r.moduleId ? undefined : { iotEdge: r.iotEdge },
    deviceScope: r.deviceScope ?? undefined,
    parentScopes: r.parentScopes.length ? r.parentScopes : undefined,
    managedBy: r.managedBy ?? undefined,
    twinETag: twinEtag(r.twin),
    tags: r.twin.tags,
    properties: { desired: r.twin.desired, reported: r.twin.reported },
  };
}

/** Registry import and export as JSON Lines: streaming both ways, and an import applies whole or not at all. */
export class RegistryTransfer {
  constructor(private readonly deps: { store: Store; keyring: KeyRing; clock: Clock; registry: Registry; limits: TwinLimits }) {}

  /** Every device, then its modules, in id order, one JSON text per record (no newline). */
  async *export(withKeys: boolean): AsyncGenerator<string> {
    let after: IdentityKey | undefined;
    for (;;) {
      const page = await this.deps.store.identities.scan({ scope: 'all', after, limit: EXPORT_PAGE });
      for (const r of page) yield JSON.stringify(exportRecord(r, this.deps.keyring, withKeys));
      if (page.length < EXPORT_PAGE) return;
      const last = page[page.length - 1];
      after = { deviceId: last.deviceId, moduleId: last.moduleId };
    }
  }

  /**
   * Reads lines of ExportImportDevice JSON (importMode createOrUpdate, the default, or delete). Every line is
   * checked; if any is bad, nothing is written and the report lists the bad lines.
   */
  async import(lines: AsyncIterable<string>, onProgress?: (lines: number) => void): Promise<ImportReport> {
    const session = await this.deps.store.identities.beginImport();
    const state = { line: 0, errorCount: 0, errors: [] as ImportLineError[], upserts: [] as BulkItem[], deletes: [] as IdentityKey[] };
    const seen = new Set<string>();
    const devicesInFile = new Set<string>();
    const devicesDeleted = new Set<string>();
    const parentsToCheck = new Map<string, number>();
    try {
      for await (const text of lines) {
        state.line++;
        if (text.trim() === '') continue;
        try {
          const { key, mode } = this.stageLine(text, state.upserts, state.deletes, seen);
          if (key.moduleId === '') (mode === 'delete' ? devicesDeleted : devicesInFile).add(key.deviceId);
          else if (mode !== 'delete' && !parentsToCheck.has(key.deviceId)) parentsToCheck.set(key.deviceId, state.line);
        } catch (err) {
          this.noteError(state, err, text);
        }
        if (state.errorCount === 0 && state.upserts.length + state.deletes.length >= STAGE_BATCH) await this.flush(session, state);
        if (onProgress && state.line % 10_000 === 0) onProgress(state.line);
      }
      await this.checkParents(parentsToCheck, devicesInFile, devicesDeleted, state);
      if (state.errorCount > 0) {
        await session.abort();
        return { ok: false, lines: state.line, upserted: 0, deleted: 0, errorCount: state.errorCount, errors: state.errors };
      }
      await this.flush(session, state);
      const done = await session.commit();
      onProgress?.(state.line);
      return { ok: true, lines: state.line, ...done, errorCount: 0, errors: [] };
    } catch (err) {
      await session.abort();
      throw err;
    }
  }

  private stageLine(text: string, upserts: BulkItem[], deletes: IdentityKey[], seen: Set<string>): { key: IdentityKey; mode: string } {
    let raw: unknown;
    try { raw = JSON.parse(text); } catch (err) { throw new ArgumentInvalid(`not valid JSON: ${(err as Error).message}`); }
    const item = parseBulkItem(raw, 'createOrUpdate', this.deps.limits);
    const id = identityKeyText(item.key);
    if (seen.has(id)) throw new ArgumentInvalid(`'${item.key.deviceId}${item.key.moduleId ? '/' + item.key.moduleId : ''}' appears more than once in the file`);
    seen.add(id);
    if (item.mode === 'delete') {
      deletes.push(item.key);
    } else if (item.mode === 'createOrUpdate') {
      if (item.twin) checkTwinSections(item.twin, this.deps.limits); // now, so an error names its line
      upserts.push(item);
    } else {
      throw new ArgumentInvalid(`importMode '${item.mode}' is not supported in a file import (createOrUpdate or delete); use the bulk API`);
    }
    return { key: item.key, mode: item.mode };
  }

  /**
   * Stages a batch: an existing identity keeps its generation id and presence, and its twin versions move on
   * (devices drop desired notifications at or below the version they hold).
   */
  private async flush(session: ImportSession, state: { upserts: BulkItem[]; deletes: IdentityKey[] }) {
    if (state.upserts.length + state.deletes.length === 0) return;
    const existing = await this.deps.store.identities.getMany(state.upserts.map((i) => i.key));
    const byKey = new Map(existing.map((r) => [identityKeyText(r), r]));
    const now = isoTime(this.deps.clock.now());
    const records = state.upserts.map((item): IdentityRecord => {
      const current = byKey.get(identityKeyText(item.key));
      // The line's twin was checked when it was read (so its errors name the line): not checked again here.
      if (!current) return this.deps.registry.build(item.key, item.spec, item.twin && replaceTwinSections(newTwin(now), item.twin, now, this.deps.limits, true));
      const base = this.deps.registry.rebuild(current, item.spec);
      return item.twin ? { ...base, twin: replaceTwinSections(base.twin, item.twin, now, this.deps.limits, true) } : base;
    });
    await session.stage(records, state.deletes);
    state.upserts = [];
    state.deletes = [];
  }

  /** A module needs its device: upserted by the file, or in the registry and not deleted by the file. */
  private async checkParents(parents: Map<string, number>, inFile: Set<string>, deleted: Set<string>, state: Parameters<RegistryTransfer['noteError']>[0]) {
    for (const d of parents.keys()) {
      if (deleted.has(d)) this.pushError(state, { line: parents.get(d) ?? 0, deviceId: d, errorCode: 'DeviceNotFound', message: `module's device '${d}' is deleted by this file` });
    }
    const missing = [...parents.keys()].filter((d) => !inFile.has(d) && !deleted.has(d));
    for (let i = 0; i < missing.length; i += 1000) {
      const chunk = missing.slice(i, i + 1000);
      const found = new Set((await this.deps.store.identities.getMany(chunk.map((deviceId) => ({ deviceId, moduleId: '' })))).map((r) => r.deviceId));
      for (const d of chunk) {
        if (!found.has(d)) this.pushError(state, { line: parents.get(d) ?? 0, deviceId: d, errorCode: 'DeviceNotFound', message: `module's device '${d}' is neither in the registry nor in the file` });
      }
    }
  }

  private noteError(state: { line: number; errorCount: number; errors: ImportLineError[] }, err: unknown, text: string): void {
    if (!(err instanceof CorralError)) throw err;
    const id = /"(?:id|deviceId)"\s*:\s*"([^"]*)"/.exec(text)?.[1];
    this.pushError(state, { line: state.line, deviceId: id, errorCode: err.codeName, message: err.message });
  }

  private pushError(state: { errorCount: number; errors: ImportLineError[] }, e: ImportLineError): void {
    state.errorCount++;
    if (state.errors.length < MAX_REPORTED_ERRORS) state.errors.push(e);
  }
}
