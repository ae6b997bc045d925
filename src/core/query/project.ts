/**
 * Projection of one row for a `paths` select: IoT Hub returns `{alias: value}` per row, leaving out what the row
 * does not have (a missing property is undefined, and undefined is not JSON).
 */

import type { JsonObject, JsonValue } from '../../ports/store/index.js';
import type { SelectItem } from '../../ports/store/query.js';

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The value at `path` ([] is `doc` itself), reading own keys of objects only, so `__proto__` or `constructor` in a
 * path is just a missing key, and a key never indexes an array (as json_extract's `$."0"` and jsonb's `-> '0'`).
 */
export function valueAt(doc: unknown, path: readonly string[]): unknown {
  let at = doc;
  for (const segment of path) {
    if (!isObject(at) || !Object.hasOwn(at, segment)) return undefined;
    at = at[segment];
  }
  return at;
}

function isJsonValue(value: unknown): value is JsonValue {
  // The row is the store's twin (or device-job) JSON, so an object found in it is JSON all the way down.
  return typeof value === 'string' || typeof value === 'boolean' || value === null || typeof value === 'object'
    || (typeof value === 'number' && Number.isFinite(value));
}

/**
 * Builds `{alias: value}` from the `path` items (other item kinds are the store's to compute and are skipped). A
 * path the document does not have leaves its alias out. Never throws.
 */
export function projectRow(items: readonly SelectItem[], doc: unknown): JsonObject {
  const row: JsonObject = {};
  for (const item of items) {
    if (item.kind !== 'path') continue;
    const value = valueAt(doc, item.path);
    if (!isJsonValue(value)) continue;
    // defineProperty, not assignment: an alias of `__proto__` must become a key, not a new prototype.
    Object.defineProperty(row, item.alias, { value, enumerable: true, writable: true, configurable: true });
  }
  return row;
}
