import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ArgumentInvalid } from '../errors/index.js';
import type { JsonObject } from '../../ports/store/index.js';
import {
  checkSectionSize, mergeWithMetadata, metadataFor, stripSystemKeys, validateTwinValue, withoutNulls,
} from './document.js';

const MAX_DEPTH = 10;
const OLD = { $lastUpdated: '2026-01-01T00:00:00.000Z', $lastUpdatedVersion: 1 };
const NEW = { $lastUpdated: '2026-01-02T00:00:00.000Z', $lastUpdatedVersion: 2 };

/** Asserts that validating `value` throws ArgumentInvalid whose message matches every pattern. */
function rejects(value: unknown, ...patterns: RegExp[]): void {
  assert.throws(() => validateTwinValue(value, 'tags', MAX_DEPTH), (err: unknown) => {
    assert.ok(err instanceof ArgumentInvalid, `expected ArgumentInvalid, got ${String(err)}`);
    assert.equal(err.code, 400004);
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
}

/** `levels` objects nested below the root: {a:{a:…{leaf:1}}}. */
function nested(levels: number): JsonObject {
  let v: JsonObject = { leaf: 1 };
  for (let i = 1; i < levels; i++) v = { a: v };
  return { a: v };
}

test('validateTwinValue accepts ordinary values, arrays and null leaves', () => {
  validateTwinValue({ s: 'x', n: 1.5, b: true, z: null, arr: [1, 'two', { three: 3 }, [4]] }, 'tags', MAX_DEPTH);
});

test('validateTwinValue rejects a section that is not an object', () => {
  for (const v of [null, [], 'text', 5]) rejects(v, /tags must be a JSON object/);
});

test('validateTwinValue rejects keys with a dot, a dollar, a space or a control character, naming the path', () => {
  rejects({ outer: { 'a.b': 1 } }, /tags\.outer/, /'a\.b'/);
  rejects({ $version: 1 }, /tags/, /'\$version'/);
  rejects({ 'a b': 1 }, /'a b'/);
  rejects({ ['a\u0001b']: 1 }, /control character/);
  rejects({ ['a\u007fb']: 1 }, /control character/);
  rejects({ ['tab\tkey']: 1 }, /control character/);
});

test('validateTwinValue rejects an empty key', () => {
  rejects({ outer: { '': 1 } }, /tags\.outer/, /empty property name/);
});

test('validateTwinValue accepts a 1024-byte key and rejects a 1025-byte one', () => {
  validateTwinValue({ ['k'.repeat(1024)]: 1 }, 'tags', MAX_DEPTH);
  rejects({ outer: { ['k'.repeat(1025)]: 1 } }, /tags\.outer/, /1024 bytes/);
  // Bytes, not characters: 513 two-byte characters are 1026 bytes.
  rejects({ ['é'.repeat(513)]: 1 }, /1024 bytes/);
});

test('validateTwinValue accepts a 4096-byte string and rejects a 4097-byte one, also inside arrays', () => {
  validateTwinValue({ s: 'x'.repeat(4096) }, 'tags', MAX_DEPTH);
  rejects({ s: 'x'.repeat(4097) }, /tags\.s/, /4096 bytes/);
  rejects({ list: ['ok', 'é'.repeat(2049)] }, /tags\.list\[1\]/, /4096 bytes/);
});

test('validateTwinValue accepts integers up to ±2^52 and rejects the ones beyond', () => {
  validateTwinValue({ max: 4503599627370495, min: -4503599627370496 }, 'tags', MAX_DEPTH);
  rejects({ n: 4503599627370496 }, /tags\.n/, /4503599627370496/);
  rejects({ n: -4503599627370497 }, /tags\.n/);
  rejects({ list: [Number.MAX_SAFE_INTEGER] }, /tags\.list\[0\]/);
});

test('validateTwinValue rejects NaN and infinities', () => {
  rejects({ n: Number.NaN }, /tags\.n/, /not finite/);
  rejects({ n: Number.POSITIVE_INFINITY }, /not finite/);
  rejects({ n: Number.NEGATIVE_INFINITY }, /not finite/);
});

test('validateTwinValue rejects values that are not JSON', () => {
  rejects({ f: () => 1 }, /tags\.f/);
  rejects({ u: undefined }, /tags\.u/);
});

test('validateTwinValue accepts exactly 10 nested objects below the section root', () => {
  validateTwinValue(nested(10), 'tags', MAX_DEPTH);
});

test('validateTwinValue rejects 11 nested objects below the section root, naming the limit', () => {
  rejects(nested(11), /nesting is deeper than the limit of 10/);
});

test('validateTwinValue counts arrays as nesting levels and honours a raised maxDepth', () => {
  const arrays = (levels: number): unknown => {
    let v: unknown = 1;
    for (let i = 0; i < levels; i++) v = [v];
    return { a: v };
  };
  validateTwinValue(arrays(10), 'tags', MAX_DEPTH);
  rejects(arrays(11), /nesting is deeper than the limit of 10/);
  validateTwinValue(nested(11), 'tags', 11);
});

test('checkSectionSize accepts a section at the limit and names section and limit when over', () => {
  const doc = { k: 'x'.repeat(10) }; // {"k":"xxxxxxxxxx"} = 18 bytes
  checkSectionSize(doc, 'tags', 18);
  assert.throws(() => checkSectionSize(doc, 'tags', 17), (err: unknown) => {
    assert.ok(err instanceof ArgumentInvalid);
    assert.match(err.message, /tags is 18 bytes, over the limit of 17 bytes/);
    return true;
  });
});

test('mergeWithMetadata adds, replaces and merges objects as RFC 7396 says', () => {
  const doc = { keep: 1, change: 'old', obj: { a: 1, b: 2 } };
  const patch = { change: 'new', add: true, obj: { b: 3, c: 4 } };
  const { doc: out } = mergeWithMetadata(doc, {}, patch, NEW);
  assert.deepEqual(out, { keep: 1, change: 'new', add: true, obj: { a: 1, b: 3, c: 4 } });
});

test('patch with null deletes the property and its metadata, also when nested', () => {
  const doc = { gone: 1, obj: { a: 1, b: 2 } };
  const meta = { ...OLD, gone: OLD, obj: { ...OLD, a: OLD, b: OLD } };
  const out = mergeWithMetadata(doc, meta, { gone: null, obj: { a: null }, absent: null }, NEW);
  assert.deepEqual(out.doc, { obj: { b: 2 } });
  assert.equal('gone' in out.meta, false);
  assert.equal('a' in (out.meta.obj as JsonObject), false);
  assert.deepEqual((out.meta.obj as JsonObject).b, OLD);
});

test('an object in the patch replaces a leaf, and a leaf replaces an object', () => {
  const doc = { leaf: 5, obj: { a: 1 } };
  const meta = { ...OLD, leaf: OLD, obj: { ...OLD, a: OLD } };
  const out = mergeWithMetadata(doc, meta, { leaf: { x: 1, drop: null }, obj: 7 }, NEW);
  assert.deepEqual(out.doc, { leaf: { x: 1 }, obj: 7 });
  assert.deepEqual(out.meta.leaf, { ...NEW, x: NEW });
  assert.deepEqual(out.meta.obj, NEW);
});

test('arrays in a patch replace whole, never merge', () => {
  const { doc } = mergeWithMetadata({ list: [1, 2, 3] }, {}, { list: [9] }, NEW);
  assert.deepEqual(doc, { list: [9] });
});

test('mergeWithMetadata does not mutate its inputs', () => {
  const doc = { a: { b: 1 }, c: 2 };
  const meta = { ...OLD, a: { ...OLD, b: OLD }, c: OLD };
  const patch = { a: { b: null, d: 3 }, c: null };
  const copies = structuredClone({ doc, meta, patch });
  mergeWithMetadata(doc, meta, patch, NEW);
  assert.deepEqual({ doc, meta, patch }, copies);
});

test('metadata is stamped on changed nodes only; untouched siblings keep their stamps', () => {
  const doc = { untouched: 1, obj: { keep: 1, set: 1 }, other: { x: 1 } };
  const meta = { ...OLD, untouched: OLD, obj: { ...OLD, keep: OLD, set: OLD }, other: { ...OLD, x: OLD } };
  const out = mergeWithMetadata(doc, meta, { obj: { set: 2 } }, NEW);
  assert.deepEqual(out.meta, {
    ...NEW,
    untouched: OLD,
    obj: { ...NEW, keep: OLD, set: NEW },
    other: { ...OLD, x: OLD },
  });
});

test('metadataFor stamps every node of a document, arrays as leaves', () => {
  const meta = metadataFor({ a: 1, o: { b: [1, { c: 2 }], p: { q: 'r' } } }, NEW);
  assert.deepEqual(meta, { ...NEW, a: NEW, o: { ...NEW, b: NEW, p: { ...NEW, q: NEW } } });
});

test('withoutNulls removes null leaves at every object level and keeps the rest', () => {
  const doc = { a: null, b: 1, o: { c: null, d: { e: null, f: false } }, list: [null, 1] };
  assert.deepEqual(withoutNulls(doc), { b: 1, o: { d: { f: false } }, list: [null, 1] });
  assert.deepEqual(doc.o.c, null, 'input untouched');
});

test('stripSystemKeys removes $metadata and $version and nothing else', () => {
  const doc = { $metadata: { $lastUpdated: 'x' }, $version: 4, a: 1, o: { $version: 1 } };
  assert.deepEqual(stripSystemKeys(doc), { a: 1, o: { $version: 1 } });
  assert.equal(doc.$version, 4, 'input untouched');
});
