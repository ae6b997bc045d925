import { ArgumentInvalid } from '../errors/index.js';
import type { JsonObject, JsonValue } from '../../ports/store/index.js';

/** Twin section limits; IoT Hub's values by default, configurable upward. */
export interface TwinLimits {
  readonly tagsBytes: number;
  readonly desiredBytes: number;
  readonly reportedBytes: number;
  readonly maxDepth: number;
}

export const IOT_HUB_TWIN_LIMITS: TwinLimits = { tagsBytes: 8192, desiredBytes: 32768, reportedBytes: 32768, maxDepth: 10 };

// IoT Hub's value rules (twin docs): keys ≤ 1 KB without '.', '$', space or control characters; strings ≤ 4 KB;
// integers within ±2^52.
const MAX_KEY_BYTES = 1024;
const MAX_STRING_BYTES = 4096;
const MAX_INTEGER = 4503599627370495;
const MIN_INTEGER = -4503599627370496;
// eslint-disable-next-line no-control-regex
const BAD_KEY = /[.$ \u0000-\u001f\u007f-\u009f]/;

export function isPlainObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Checks a twin patch or document (`section` names it in errors) against IoT Hub's key and value rules and depth;
 * `null` leaves are allowed (they delete on merge). Throws ArgumentInvalid naming the path and the rule.
 */
export function validateTwinValue(value: unknown, section: string, maxDepth: number): asserts value is JsonObject {
  if (!isPlainObject(value)) throw new ArgumentInvalid(`${section} must be a JSON object`);
  walk(value, section, 0, maxDepth);
}

function walk(v: unknown, path: string, depth: number, maxDepth: number): void {
  if (v === null || typeof v === 'boolean') return;
  if (typeof v === 'string') {
    if (Buffer.byteLength(v) > MAX_STRING_BYTES) throw new ArgumentInvalid(`${path}: string value is longer than ${MAX_STRING_BYTES} bytes`);
    return;
  }
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new ArgumentInvalid(`${path}: number is not finite`);
    if (Number.isInteger(v) && (v > MAX_INTEGER || v < MIN_INTEGER)) {
      throw new ArgumentInvalid(`${path}: integer ${v} is outside ${MIN_INTEGER}..${MAX_INTEGER}`);
    }
    return;
  }
  if (depth > maxDepth) throw new ArgumentInvalid(`${path}: nesting is deeper than the limit of ${maxDepth} levels`);
  if (Array.isArray(v)) {
    v.forEach((item, i) => walk(item, `${path}[${i}]`, depth + 1, maxDepth));
    return;
  }
  if (typeof v !== 'object') throw new ArgumentInvalid(`${path}: ${typeof v} is not a JSON value`);
  for (const [key, child] of Object.entries(v as Record<string, unknown>)) {
    if (key.length === 0) throw new ArgumentInvalid(`${path}: empty property name`);
    if (BAD_KEY.test(key)) throw new ArgumentInvalid(`${path}: property name '${key}' contains '.', '$', a space or a control character`);
    if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw new ArgumentInvalid(`${path}: property name longer than ${MAX_KEY_BYTES} bytes`);
    walk(child, `${path}.${key}`, depth + 1, maxDepth);
  }
}

/** Throws ArgumentInvalid when a section's JSON (without $metadata/$version) is over its byte limit. */
export function checkSectionSize(doc: JsonObject, section: string, maxBytes: number): void {
  const bytes = Buffer.byteLength(JSON.stringify(doc));
  if (bytes > maxBytes) throw new ArgumentInvalid(`${section} is ${bytes} bytes, over the limit of ${maxBytes} bytes`);
}

/** Removes IoT Hub's read-only `$metadata` and `$version` from a section given back to us, so a GET can be PUT. */
export function stripSystemKeys(doc: JsonObject): JsonObject {
  const { $metadata: _m, $version: _v, ...rest } = doc;
  return rest;
}

/**
 * RFC 7396 merge of `patch` into `doc` (new object; inputs unchanged): `null` deletes, objects merge, anything
 * else replaces. Also applies the same change to the `$metadata` tree `meta`, stamping changed nodes.
 */
export function mergeWithMetadata(
  doc: JsonObject, meta: JsonObject, patch: JsonObject, stamp: JsonObject,
): { doc: JsonObject; meta: JsonObject } {
  const out: JsonObject = { ...doc };
  const outMeta: JsonObject = { ...meta, ...stamp };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) {
      delete out[key];
      delete outMeta[key];
    } else if (isPlainObject(value)) {
      const current = out[key];
      const base = isPlainObject(current) ? current : {};
      const baseMeta = isPlainObject(current) && isPlainObject(meta[key]) ? (meta[key] as JsonObject) : {};
      const merged = mergeWithMetadata(base, baseMeta, value, stamp);
      out[key] = merged.doc;
      outMeta[key] = merged.meta;
    } else {
      out[key] = value;
      outMeta[key] = stamp;
    }
  }
  return { doc: out, meta: outMeta };
}

/** A `$metadata` tree for a whole document, every node stamped (leaves share the one stamp object). */
export function metadataFor(doc: JsonObject, stamp: JsonObject): JsonObject {
  const meta: JsonObject = Object.assign({}, stamp);
  for (const key in doc) {
    const value = doc[key];
    meta[key] = isPlainObject(value) ? metadataFor(value, stamp) : stamp;
  }
  return meta;
}

/** The document with `null` leaves removed (a replace cannot store nulls; they mean "absent"). */
export function withoutNulls(doc: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(doc)) {
    if (value === null) continue;
    out[key] = isPlainObject(value) ? withoutNulls(value) : (value as JsonValue);
  }
  return out;
}
