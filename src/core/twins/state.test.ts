import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ArgumentInvalid } from '../errors/index.js';
import type { JsonObject, TwinState } from '../../ports/store/index.js';
import { IOT_HUB_TWIN_LIMITS, type TwinLimits } from './document.js';
import {
  newTwin, parseTwinChange, patchReported, patchTwin, replaceTwin, replaceTwinSections, twinEtag,
} from './state.js';
import { assertArgumentInvalid } from '../../../test/support/assertions.js';

const T0 = '2026-01-01T00:00:00.000Z';
const T1 = '2026-01-01T00:01:00.000Z';
const LIMITS = IOT_HUB_TWIN_LIMITS;

function versions(t: TwinState): [number, number, number] {
  return [t.version, t.desiredVersion, t.reportedVersion];
}

/** An object whose JSON is at least `bytes` long, in values of ≤ 4 KB. */
function bigDoc(bytes: number): JsonObject {
  const doc: JsonObject = {};
  for (let i = 0; JSON.stringify(doc).length < bytes; i++) doc[`k${i}`] = 'x'.repeat(4000);
  return doc;
}

test('a new twin has empty sections and twin, desired and reported versions of 1', () => {
  const t = newTwin(T0);
  assert.deepEqual(versions(t), [1, 1, 1]);
  assert.deepEqual([t.tags, t.desired, t.reported], [{}, {}, {}]);
  assert.deepEqual(t.desiredMeta, { $lastUpdated: T0, $lastUpdatedVersion: 1 });
  assert.deepEqual(t.reportedMeta, { $lastUpdated: T0 });
});

test('a tags-only patch bumps the twin version but not desired $version', () => {
  const t = patchTwin(newTwin(T0), { tags: { site: 'a' } }, T1, LIMITS);
  assert.deepEqual(versions(t), [2, 1, 1]);
  assert.deepEqual(t.tags, { site: 'a' });
  assert.deepEqual(t.desiredMeta, { $lastUpdated: T0, $lastUpdatedVersion: 1 });
});

test('a desired patch bumps the twin version and desired $version by exactly one', () => {
  const t1 = patchTwin(newTwin(T0), { desired: { a: 1 } }, T1, LIMITS);
  assert.deepEqual(versions(t1), [2, 2, 1]);
  const t2 = patchTwin(t1, { tags: { x: 1 }, desired: { b: { c: 2 } } }, T1, LIMITS);
  assert.deepEqual(versions(t2), [3, 3, 1]);
  assert.deepEqual(t2.desired, { a: 1, b: { c: 2 } });
  assert.deepEqual(t2.desiredMeta.b, { $lastUpdated: T1, $lastUpdatedVersion: 3, c: { $lastUpdated: T1, $lastUpdatedVersion: 3 } });
  assert.deepEqual(t2.desiredMeta.a, { $lastUpdated: T1, $lastUpdatedVersion: 2 });
});

test('a patch with no sections leaves the twin as it was', () => {
  const t = newTwin(T0);
  assert.equal(patchTwin(t, {}, T1, LIMITS), t);
});

test('a desired patch with null deletes the property and its metadata', () => {
  const t1 = patchTwin(newTwin(T0), { desired: { a: 1, b: 2 } }, T1, LIMITS);
  const t2 = patchTwin(t1, { desired: { a: null } }, T1, LIMITS);
  assert.deepEqual(t2.desired, { b: 2 });
  assert.equal('a' in t2.desiredMeta, false);
});

test('a tags patch over the tags limit fails with ArgumentInvalid naming tags and the limit', () => {
  assertArgumentInvalid(() => patchTwin(newTwin(T0), { tags: bigDoc(8193) }, T1, LIMITS), /tags/, /8192/);
});

test('tags that grow over the limit across patches are refused', () => {
  const nearlyFull = bigDoc(4200);
  const t = patchTwin(newTwin(T0), { tags: nearlyFull }, T1, LIMITS);
  const more: JsonObject = Object.fromEntries(Object.entries(nearlyFull).map(([k, v]) => [`more${k}`, v]));
  assertArgumentInvalid(() => patchTwin(t, { tags: more }, T1, LIMITS), /tags/, /8192/);
});

test('a desired patch over 32 KB fails with ArgumentInvalid naming properties.desired and the limit', () => {
  assertArgumentInvalid(() => patchTwin(newTwin(T0), { desired: bigDoc(32769) }, T1, LIMITS), /properties\.desired/, /32768/);
});

test('configurably higher limits accept sections over IoT Hub\'s', () => {
  const raised: TwinLimits = { tagsBytes: 65536, desiredBytes: 65536, reportedBytes: 65536, maxDepth: 12 };
  const t = patchTwin(newTwin(T0), { tags: bigDoc(9000), desired: bigDoc(40000) }, T1, raised);
  assert.deepEqual(versions(t), [2, 2, 1]);
  const r = patchReported(t, bigDoc(40000), T1, raised);
  assert.deepEqual(versions(r), [3, 2, 2]);
});

test('replaceTwin replaces tags and desired wholesale, moving each version once', () => {
  const t1 = patchTwin(newTwin(T0), { tags: { old: 1 }, desired: { old: 1 } }, T0, LIMITS);
  const t2 = replaceTwin(t1, { tags: { fresh: 1 }, desired: { fresh: { x: 2 } } }, T1, LIMITS);
  assert.deepEqual(t2.tags, { fresh: 1 });
  assert.deepEqual(t2.desired, { fresh: { x: 2 } });
  assert.deepEqual(versions(t2), [3, 3, 1]);
  const stamp = { $lastUpdated: T1, $lastUpdatedVersion: 3 };
  assert.deepEqual(t2.desiredMeta, { ...stamp, fresh: { ...stamp, x: stamp } });
});

test('replaceTwin without sections clears tags and desired', () => {
  const t1 = patchTwin(newTwin(T0), { tags: { a: 1 }, desired: { b: 1 } }, T0, LIMITS);
  const t2 = replaceTwin(t1, {}, T1, LIMITS);
  assert.deepEqual([t2.tags, t2.desired], [{}, {}]);
});

test('replaceTwinSections drops nulls and system keys and moves only the replaced sections\' versions', () => {
  const t = replaceTwinSections(newTwin(T0), {
    desired: { $version: 99, $metadata: {}, a: 1, gone: null },
    reported: { $version: 7, r: { s: null, t: 2 } },
  }, T1, LIMITS);
  assert.deepEqual(t.desired, { a: 1 });
  assert.deepEqual(t.reported, { r: { t: 2 } });
  assert.deepEqual(versions(t), [2, 2, 2]);
  assert.deepEqual(t.reportedMeta, { $lastUpdated: T1, r: { $lastUpdated: T1, t: { $lastUpdated: T1 } } });
});

test('replaceTwinSections with nothing to replace returns the same twin', () => {
  const t = newTwin(T0);
  assert.equal(replaceTwinSections(t, {}, T1, LIMITS), t);
});

test('replaceTwinSections checks keys and sizes of every section', () => {
  assertArgumentInvalid(() => replaceTwinSections(newTwin(T0), { tags: { 'a.b': 1 } }, T1, LIMITS), /tags/);
  assertArgumentInvalid(() => replaceTwinSections(newTwin(T0), { reported: bigDoc(32769) }, T1, LIMITS), /properties\.reported/, /32768/);
});

test('patchReported bumps reported $version and the twin version, not desired', () => {
  const t = patchReported(newTwin(T0), { fw: '1.0', net: { ip: '10.0.0.1' } }, T1, LIMITS);
  assert.deepEqual(versions(t), [2, 1, 2]);
  assert.deepEqual(t.reported, { fw: '1.0', net: { ip: '10.0.0.1' } });
  assert.deepEqual(t.reportedMeta, { $lastUpdated: T1, fw: { $lastUpdated: T1 }, net: { $lastUpdated: T1, ip: { $lastUpdated: T1 } } });
});

test('patchReported ignores $version and $metadata keys in the patch', () => {
  const t = patchReported(newTwin(T0), { $version: 42, $metadata: { x: 1 }, a: 1 }, T1, LIMITS);
  assert.deepEqual(t.reported, { a: 1 });
  assert.equal(t.reportedVersion, 2);
});

test('patchReported merges and deletes with null', () => {
  const t1 = patchReported(newTwin(T0), { a: 1, b: { c: 1, d: 2 } }, T0, LIMITS);
  const t2 = patchReported(t1, { a: null, b: { d: null } }, T1, LIMITS);
  assert.deepEqual(t2.reported, { b: { c: 1 } });
});

test('patchReported rejects a patch that is not an object or breaks the value rules', () => {
  for (const bad of [null, [1], 'x', 3]) assertArgumentInvalid(() => patchReported(newTwin(T0), bad, T1, LIMITS), /reported/);
  assertArgumentInvalid(() => patchReported(newTwin(T0), { 'bad key': 1 }, T1, LIMITS), /properties\.reported/);
  assertArgumentInvalid(() => patchReported(newTwin(T0), bigDoc(32769), T1, LIMITS), /properties\.reported/, /32768/);
});

test('parseTwinChange reads tags and desired and strips desired system keys', () => {
  const change = parseTwinChange({ tags: { a: 1 }, properties: { desired: { $version: 3, $metadata: {}, b: 2 } } }, LIMITS);
  assert.deepEqual(change, { tags: { a: 1 }, desired: { b: 2 } });
});

test('parseTwinChange ignores read-only twin fields', () => {
  const change = parseTwinChange({
    deviceId: 'other', etag: 'AAAAAAAAAAk=', version: 9, status: 'disabled', connectionState: 'Connected', tags: { a: 1 },
  }, LIMITS);
  assert.deepEqual(change, { tags: { a: 1 }, desired: undefined });
});

test('parseTwinChange refuses properties.reported', () => {
  assertArgumentInvalid(() => parseTwinChange({ properties: { reported: { a: 1 } } }, LIMITS), /properties\.reported/);
});

test('parseTwinChange rejects bodies and sections that are not objects, and bad keys', () => {
  assertArgumentInvalid(() => parseTwinChange([], LIMITS), /twin body/);
  assertArgumentInvalid(() => parseTwinChange({ properties: 1 }, LIMITS), /properties/);
  assertArgumentInvalid(() => parseTwinChange({ properties: { desired: [1] } }, LIMITS), /properties\.desired/);
  assertArgumentInvalid(() => parseTwinChange({ tags: 'x' }, LIMITS), /tags/);
  assertArgumentInvalid(() => parseTwinChange({ properties: { desired: { 'a$b': 1 } } }, LIMITS), /properties\.desired/);
});

test('twinEtag is AAAAAAAAAAE= for version 1 and changes with the version', () => {
  const t1 = newTwin(T0);
  assert.equal(twinEtag(t1), 'AAAAAAAAAAE=');
  const t2 = patchTwin(t1, { tags: { a: 1 } }, T1, LIMITS);
  assert.equal(twinEtag(t2), 'AAAAAAAAAAI=');
  assert.notEqual(twinEtag(t2), twinEtag(t1));
});
