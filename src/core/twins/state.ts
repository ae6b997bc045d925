import { ArgumentInvalid } from '../errors/index.js';
import type { JsonObject, TwinState } from '../../ports/store/index.js';
import {
  checkSectionSize, isPlainObject, mergeWithMetadata, metadataFor, stripSystemKeys, validateTwinValue, withoutNulls,
  type TwinLimits,
} from './document.js';

/** The twin of a new identity: empty sections at version 1 (IoT Hub starts `$version` at 1). */
export function newTwin(nowIso: string): TwinState {
  return {
    tags: {}, desired: {}, reported: {},
    desiredMeta: { $lastUpdated: nowIso, $lastUpdatedVersion: 1 },
    reportedMeta: { $lastUpdated: nowIso },
    desiredVersion: 1, reportedVersion: 1, version: 1,
  };
}

/** A service-side change to a twin: merge patches of tags and desired (null deletes), or a replace of both. */
export interface TwinChange {
  readonly tags?: JsonObject;
  readonly desired?: JsonObject;
}

/**
 * Reads `{tags?, properties?: {desired?}}` from a service request body; other twin fields (deviceId, etag,
 * version, …) are read-only and ignored as IoT Hub does, but writing reported properties is refused.
 */
export function parseTwinChange(body: unknown, limits: TwinLimits): TwinChange {
  if (!isPlainObject(body)) throw new ArgumentInvalid('the twin body must be a JSON object');
  const props = body.properties;
  if (props !== undefined && props !== null && !isPlainObject(props)) throw new ArgumentInvalid('properties must be an object');
  if (isPlainObject(props) && props.reported !== undefined) throw new ArgumentInvalid('properties.reported can only be written by the device');
  const tags = body.tags === undefined || body.tags === null ? undefined : body.tags;
  const desiredRaw = isPlainObject(props) ? props.desired : undefined;
  if (desiredRaw !== undefined && desiredRaw !== null && !isPlainObject(desiredRaw)) throw new ArgumentInvalid('properties.desired must be an object');
  const desired = isPlainObject(desiredRaw) ? stripSystemKeys(desiredRaw) : undefined;
  if (tags !== undefined) validateTwinValue(tags, 'tags', limits.maxDepth);
  if (desired !== undefined) validateTwinValue(desired, 'properties.desired', limits.maxDepth);
  return { tags, desired };
}

/** Merges a service patch; the twin version moves once, desired `$version` once if desired changed. */
export function patchTwin(twin: TwinState, change: TwinChange, nowIso: string, limits: TwinLimits): TwinState {
  let next: TwinState = twin;
  if (change.tags) {
    const tags = mergeWithMetadata(twin.tags, {}, change.tags, {}).doc;
    checkSectionSize(tags, 'tags', limits.tagsBytes);
    next = { ...next, tags };
  }
  if (change.desired) {
    const desiredVersion = twin.desiredVersion + 1;
    const stamp = { $lastUpdated: nowIso, $lastUpdatedVersion: desiredVersion };
    const merged = mergeWithMetadata(twin.desired, twin.desiredMeta, change.desired, stamp);
    checkSectionSize(merged.doc, 'properties.desired', limits.desiredBytes);
    next = { ...next, desired: merged.doc, desiredMeta: merged.meta, desiredVersion };
  }
  return next === twin ? twin : { ...next, version: twin.version + 1 };
}

/** Replaces tags and desired wholesale (REST `PUT /twins/{id}`); desired `$version` moves once. */
export function replaceTwin(twin: TwinState, change: TwinChange, nowIso: string, limits: TwinLimits): TwinState {
  return replaceTwinSections(twin, { tags: change.tags ?? {}, desired: change.desired ?? {} }, nowIso, limits);
}

/**
 * Replaces each section given (tags, desired, reported: registry import) after checking it against IoT Hub's
 * rules and limits (skipped when `checked`: the caller ran checkTwinSections on exactly these sections); each
 * replaced property section moves its `$version` once, the twin version once.
 */
export function replaceTwinSections(
  twin: TwinState, s: { tags?: JsonObject; desired?: JsonObject; reported?: JsonObject }, nowIso: string, limits: TwinLimits,
  checked = false,
): TwinState {
  if (!s.tags && !s.desired && !s.reported) return twin;
  let { tags, desired, desiredMeta, desiredVersion, reported, reportedMeta, reportedVersion } = twin;
  if (s.tags) {
    if (!checked) validateTwinValue(s.tags, 'tags', limits.maxDepth);
    tags = withoutNulls(s.tags);
    if (!checked) checkSectionSize(tags, 'tags', limits.tagsBytes);
  }
  if (s.desired) {
    desired = withoutNulls(stripSystemKeys(s.desired));
    if (!checked) validateTwinValue(desired, 'properties.desired', limits.maxDepth);
    if (!checked) checkSectionSize(desired, 'properties.desired', limits.desiredBytes);
    desiredVersion = twin.desiredVersion + 1;
    desiredMeta = metadataFor(desired, { $lastUpdated: nowIso, $lastUpdatedVersion: desiredVersion });
  }
  if (s.reported) {
    reported = withoutNulls(stripSystemKeys(s.reported));
    if (!checked) validateTwinValue(reported, 'properties.reported', limits.maxDepth);
    if (!checked) checkSectionSize(reported, 'properties.reported', limits.reportedBytes);
    reportedVersion = twin.reportedVersion + 1;
    reportedMeta = metadataFor(reported, { $lastUpdated: nowIso });
  }
  // One literal, not successive spreads: this runs per device on a registry import.
  return { tags, desired, reported, desiredMeta, reportedMeta, desiredVersion, reportedVersion, version: twin.version + 1 };
}

/** Checks sections as replaceTwinSections would, without building anything (an import checks each line early). */
export function checkTwinSections(s: { tags?: JsonObject; desired?: JsonObject; reported?: JsonObject }, limits: TwinLimits): void {
  const sections = [['tags', s.tags, limits.tagsBytes], ['properties.desired', s.desired, limits.desiredBytes], ['properties.reported', s.reported, limits.reportedBytes]] as const;
  for (const [name, doc, maxBytes] of sections) {
    if (!doc) continue;
    const clean = name === 'tags' ? doc : stripSystemKeys(doc);
    validateTwinValue(clean, name, limits.maxDepth);
    // Sized as it will be stored: nulls are dropped (only worth doing when the raw text is over the limit).
    if (Buffer.byteLength(JSON.stringify(clean)) > maxBytes) checkSectionSize(withoutNulls(clean), name, maxBytes);
  }
}

/** Merges a device's reported patch (validated here: the device side is an edge too). */
export function patchReported(twin: TwinState, patch: unknown, nowIso: string, limits: TwinLimits): TwinState {
  if (!isPlainObject(patch)) throw new ArgumentInvalid('the reported properties patch must be a JSON object');
  const clean = stripSystemKeys(patch);
  validateTwinValue(clean, 'properties.reported', limits.maxDepth);
  const merged = mergeWithMetadata(twin.reported, twin.reportedMeta, clean, { $lastUpdated: nowIso });
  checkSectionSize(merged.doc, 'properties.reported', limits.reportedBytes);
  return {
    ...twin, reported: merged.doc, reportedMeta: merged.meta,
    reportedVersion: twin.reportedVersion + 1, version: twin.version + 1,
  };
}

/** IoT Hub's twin etag: base64 of the 8-byte big-endian twin version ("AAAAAAAAAAE=" for 1). */
export function twinEtag(twin: TwinState): string {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(twin.version));
  return b.toString('base64');
}
