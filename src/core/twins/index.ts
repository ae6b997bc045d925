import { DeviceNotFound, ModuleNotFound, PreconditionFailed } from '../errors/index.js';
import { isoTime, type Clock } from '../../ports/clock/index.js';
import { identityKeyText, mutateIdentity, type IdentityKey, type IdentityRecord, type JsonObject, type Store } from '../../ports/store/index.js';
import type { Bus } from '../../ports/bus/index.js';
import { deviceSubject, encodeJson } from '../devices/subjects.js';
import type { TwinLimits } from './document.js';
import type { SystemEvents, TwinChangeNotice } from '../events/index.js';
import { parseTwinChange, patchReported, patchTwin, replaceTwin, twinEtag, type TwinChange } from './state.js';

export { IOT_HUB_TWIN_LIMITS, type TwinLimits } from './document.js';
export { checkTwinSections, newTwin, parseTwinChange, replaceTwinSections, twinEtag, type TwinChange } from './state.js';
export { deviceTwinView, twinView } from './view.js';

export interface TwinsDeps {
  readonly store: Store;
  readonly clock: Clock;
  readonly limits: TwinLimits;
  /** Where desired-property notices go, for the node holding the device's connection. */
  readonly bus?: Bus;
  /** Where twin-change events go (the EventLog), for routes and consumers. */
  readonly events?: SystemEvents;
}

function changeNotice(r: IdentityRecord, op: TwinChangeNotice['op'], change: TwinChange): TwinChangeNotice {
  return {
    key: { deviceId: r.deviceId, moduleId: r.moduleId }, op, version: r.twin.version,
    ...(change.tags ? { tags: op === 'replaceTwin' ? r.twin.tags : change.tags } : {}),
    ...(change.desired ? { desired: { patch: op === 'replaceTwin' ? r.twin.desired : change.desired, version: r.twin.desiredVersion } } : {}),
  };
}

/** Publishes a desired-properties notice `{ version, patch }` to whichever node holds the identity's connection. */
export async function publishDesired(bus: Bus, key: IdentityKey, version: number, patch: JsonObject): Promise<void> {
  await bus.publish(deviceSubject(key, 'desired'), encodeJson({ version, patch }));
}

/** A replaced desired document as a patch: the whole new document and a null for each property it dropped. */
export function replacementPatch(before: JsonObject, after: JsonObject): JsonObject {
  const patch: JsonObject = { ...after };
  for (const k of Object.keys(before)) if (!(k in patch)) patch[k] = null;
  return patch;
}

function notFound(key: IdentityKey): Error {
  return key.moduleId === '' ? new DeviceNotFound(key.deviceId) : new ModuleNotFound(key.deviceId, key.moduleId);
}

function checkEtag(key: IdentityKey, record: IdentityRecord, ifMatch: string | undefined): void {
  if (ifMatch === undefined) return;
  const current = twinEtag(record.twin);
  if (ifMatch !== '*' && ifMatch !== current) throw new PreconditionFailed(`twin of '${key.deviceId}'`, ifMatch, `"${current}"`);
}

/** Twins of devices and modules: reads, service patches and replaces, and the device's reported patches. */
export class Twins {
  constructor(private readonly deps: TwinsDeps) {}

  /** The identity with its twin; throws DeviceNotFound (404001). */
  async get(key: IdentityKey): Promise<IdentityRecord> {
    const r = await this.deps.store.identities.get(key);
    if (!r) throw notFound(key);
    return r;
  }

  /** Merge-patches tags and desired. `ifMatch` (an unquoted twin etag or '*') is checked; 412002 on mismatch. */
  async patch(key: IdentityKey, body: unknown, ifMatch?: string): Promise<IdentityRecord> {
    const change = parseTwinChange(body, this.deps.limits);
    const r = await this.write(key, ifMatch, (cur, now) => patchTwin(cur.twin, change, now, this.deps.limits));
    if (change.desired) await this.notifyDesired(key, r.twin.desiredVersion, change.desired);
    void this.deps.events?.twinChanged([changeNotice(r, 'updateTwin', change)]);
    return r;
  }

  /**
   * Applies one checked change to many twins (a job's batch of devices): one read and one batched write for all,
   * then the desired notices. An identity another writer changed in between is patched again on its own. Returns
   * each identity's failure (absent: it succeeded), keyed by identityKeyText.
   */
  async patchMany(keys: readonly IdentityKey[], change: TwinChange): Promise<Map<string, Error>> {
    const failures = new Map<string, Error>();
    const now = isoTime(this.deps.clock.now());
    const found = new Map((await this.deps.store.identities.getMany(keys)).map((r) => [identityKeyText(r), r]));
    const writes: IdentityRecord[] = [];
    for (const key of keys) {
      const current = found.get(identityKeyText(key));
      if (!current) { failures.set(identityKeyText(key), notFound(key)); continue; }
      try {
        writes.push({ ...current, twin: patchTwin(current.twin, change, now, this.deps.limits) });
      } catch (err) {
        failures.set(identityKeyText(key), err as Error);
      }
    }
    const applied = await this.deps.store.identities.applyBatch(writes.map((r) => ({ kind: 'replace', record: r, expectedRev: r.rev })));
    const notices: Promise<void>[] = [];
    const changed: TwinChangeNotice[] = [];
    for (const [i, r] of writes.entries()) {
      const k = identityKeyText(r);
      const done = applied[i]
        ? Promise.resolve(r)
        : this.write(r, undefined, (cur, at) => patchTwin(cur.twin, change, at, this.deps.limits)).catch((err: unknown) => { failures.set(k, err as Error); return undefined; });
      notices.push(done.then(async (w) => {
        if (!w) return;
        changed.push(changeNotice(w, 'updateTwin', change));
        if (change.desired) await this.notifyDesired(r, w.twin.desiredVersion, change.desired);
      }));
    }
    await Promise.all(notices);
    void this.deps.events?.twinChanged(changed);
    return failures;
  }

  /** Replaces tags and desired (REST PUT). */
  async replace(key: IdentityKey, body: unknown, ifMatch?: string): Promise<IdentityRecord> {
    const change = parseTwinChange(body, this.deps.limits);
    let before: JsonObject = {};
    const r = await this.write(key, ifMatch, (cur, now) => { before = cur.twin.desired; return replaceTwin(cur.twin, change, now, this.deps.limits); });
    await this.notifyDesired(key, r.twin.desiredVersion, replacementPatch(before, r.twin.desired));
    void this.deps.events?.twinChanged([changeNotice(r, 'replaceTwin', change)]);
    return r;
  }

  /** Tells the node holding the device's connection (any node) about a new desired version. */
  private async notifyDesired(key: IdentityKey, version: number, patch: JsonObject): Promise<void> {
    if (this.deps.bus) await publishDesired(this.deps.bus, key, version, patch);
  }

  /** Applies a device's reported-properties patch; returns the record with the new reported `$version`. */
  async patchReported(key: IdentityKey, patch: unknown): Promise<IdentityRecord> {
    const r = await this.write(key, undefined, (cur, now) => patchReported(cur.twin, patch, now, this.deps.limits));
    void this.deps.events?.twinChanged([{
      key, op: 'updateTwin', version: r.twin.version, reported: { patch: patch as JsonObject, version: r.twin.reportedVersion },
    }]);
    return r;
  }

  private async write(
    key: IdentityKey, ifMatch: string | undefined, change: (r: IdentityRecord, nowIso: string) => IdentityRecord['twin'],
  ): Promise<IdentityRecord> {
    const result = await mutateIdentity(this.deps.store.identities, key, (current) => {
      if (!current) throw notFound(key);
      checkEtag(key, current, ifMatch);
      const twin = change(current, isoTime(this.deps.clock.now()));
      return twin === current.twin ? current : { ...current, twin };
    });
    // mutateIdentity returns undefined only when change does; ours throws instead.
    return result as IdentityRecord;
  }
}
