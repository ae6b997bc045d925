/**
 * What a path in a query may name: the twin's shape (for devices and devices.modules) or a device job's (for
 * devices.jobs). System names match case-insensitively and come out as IoT Hub spells them; keys inside tags,
 * desired and reported are the user's and stay exactly as written.
 */

import { QuerySyntaxError } from '../errors/index.js';
import {
  IDENTITY_QUERY_COLUMNS, JOB_QUERY_COLUMNS,
  type FieldRef, type IdentityQueryColumn, type JobQueryColumn, type QueryCollection, type QueryDocument,
} from '../../ports/store/query.js';
import type { RawPath } from './syntax.js';

/** `value`: no members; `object`: only the members listed; `document`: the listed members, then any key. */
interface Attribute {
  readonly name: string;
  readonly kind: 'value' | 'object' | 'document';
  readonly members: readonly Attribute[];
  /** Other spellings IoT Hub accepts for it. */
  readonly also?: readonly string[];
  /** Left out of "use …" hints: reading it is allowed in a projection but never useful in a condition. */
  readonly hidden?: boolean;
}

const value = (name: string, extra: Partial<Attribute> = {}): Attribute => ({ name, kind: 'value', members: [], ...extra });
const object = (name: string, members: readonly Attribute[]): Attribute => ({ name, kind: 'object', members });
const document = (name: string, members: readonly Attribute[] = []): Attribute => ({ name, kind: 'document', members });
const section = (name: string): Attribute => document(name, [value('$version'), document('$metadata')]);

const TWIN: Attribute = object('', [
  value('deviceId'), value('moduleId'), value('status'), value('statusReason'),
  value('statusUpdateTime', { also: ['statusUpdatedTime'] }), value('connectionState'),
  value('connectionStateUpdatedTime'), value('lastActivityTime'), value('authenticationType'), value('modelId'),
  value('deviceEtag'), value('cloudToDeviceMessageCount'), value('version'), value('etag', { hidden: true }),
  object('capabilities', [value('iotEdge')]),
  object('x509Thumbprint', [value('primaryThumbprint'), value('secondaryThumbprint')]),
  // Corral's extension: the device's last-known telemetry values (and when each was seen, in `$metadata`).
  document('telemetry', [document('$metadata')]),
  document('tags'),
  object('properties', [section('desired'), section('reported')]),
]);

const DEVICE_JOB: Attribute = object('', [
  ...Object.keys(JOB_QUERY_COLUMNS).map((name) => value(name)),
  document('outcome'), document('error'),
]);

function memberNamed(parent: Attribute, segment: string): Attribute | undefined {
  const lower = segment.toLowerCase();
  return parent.members.find((m) => m.name.toLowerCase() === lower || m.also?.some((a) => a.toLowerCase() === lower));
}

function hintNames(parent: Attribute, prefix: string): string[] {
  return parent.members.filter((m) => !m.hidden).flatMap((m) => {
    if (m.kind === 'object') return hintNames(m, `${prefix}${m.name}.`);
    return [`${prefix}${m.name}${m.kind === 'document' ? '.…' : ''}`];
  });
}

function hint(parent: Attribute, prefix: string): string {
  const names = hintNames(parent, prefix);
  return names.length === 1 ? names[0] : `${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}`;
}

export function pathText(segments: readonly string[]): string {
  return segments.join('.');
}

/** Drops the optional `devices.jobs.` prefix IoT Hub writes before device-job names. */
function withoutJobsPrefix(segments: readonly string[]): readonly string[] {
  const hasPrefix = segments.length > 2 && segments[0].toLowerCase() === 'devices' && segments[1].toLowerCase() === 'jobs';
  return hasPrefix ? segments.slice(2) : segments;
}

/**
 * The path with its system names spelled as IoT Hub spells them (`Properties.Reported.x` → properties.reported.x).
 * Throws QuerySyntaxError for a name the collection does not have, or a member of a plain value.
 */
export function canonicalPath(collection: QueryCollection, path: RawPath): string[] {
  const segments = collection === 'jobs' ? withoutJobsPrefix(path.segments) : path.segments;
  const out: string[] = [];
  let at: Attribute | undefined = collection === 'jobs' ? DEVICE_JOB : TWIN;
  for (const segment of segments) {
    // Below a user key every segment is the user's, matched exactly.
    if (at === undefined) { out.push(segment); continue; }
    const member = memberNamed(at, segment);
    if (member === undefined && at.kind === 'object') {
      const inJobs = collection === 'jobs' ? ' in devices.jobs' : '';
      const prefix = out.length === 0 ? '' : `${pathText(out)}.`;
      throw new QuerySyntaxError(path.position, `unknown attribute '${pathText([...out, segment])}'${inJobs}; use ${hint(at, prefix)}`);
    }
    if (at.kind === 'value') {
      throw new QuerySyntaxError(path.position, `'${pathText(out)}' is a single value; it has no member '${segment}'`);
    }
    out.push(member?.name ?? segment);
    at = member;
  }
  return out;
}

/** A path resolved for a condition or a field: a column, a document path, or `undefined` (moduleId of a device). */
export type ResolvedPath<F = FieldRef> =
  | { readonly kind: 'field'; readonly field: F }
  | { readonly kind: 'literal'; readonly value: undefined };

const field = (f: FieldRef): ResolvedPath => ({ kind: 'field', field: f });
const column = (name: IdentityQueryColumn): ResolvedPath => field({ kind: 'column', column: name });
const doc = (name: QueryDocument, path: readonly string[]): ResolvedPath => field({ kind: 'document', document: name, path });

const SECTIONS = { desired: ['desired', 'desiredMeta', 'desiredVersion'], reported: ['reported', 'reportedMeta', 'reportedVersion'] } as const;

function isIdentityColumn(name: string): name is IdentityQueryColumn {
  return Object.hasOwn(IDENTITY_QUERY_COLUMNS, name);
}
function isJobColumn(name: string): name is JobQueryColumn {
  return Object.hasOwn(JOB_QUERY_COLUMNS, name);
}

function notQueryable(path: readonly string[], allowed: string, position: number): never {
  throw new QuerySyntaxError(position, `'${pathText(path)}' cannot be queried; use ${allowed}`);
}

function resolveTwinPath(collection: QueryCollection, c: readonly string[], position: number): ResolvedPath {
  const [first, second, third] = c;
  if (c.length === 1 && isIdentityColumn(first)) {
    // A device has no moduleId: IoT Hub reads it as a missing property.
    return first === 'moduleId' && collection === 'devices' ? { kind: 'literal', value: undefined } : column(first);
  }
  if (first === 'tags') return doc('tags', c.slice(1));
  if (first === 'telemetry') return second === '$metadata' ? doc('telemetryMeta', c.slice(2)) : doc('telemetry', c.slice(1));
  if (first === 'capabilities' && c.length === 2) return column('iotEdge');
  if (first === 'x509Thumbprint' && c.length === 2 && isIdentityColumn(second)) return column(second);
  if (first === 'properties' && (second === 'desired' || second === 'reported')) {
    const [document, meta, version] = SECTIONS[second];
    if (third === '$version') return column(version);
    return third === '$metadata' ? doc(meta, c.slice(3)) : doc(document, c.slice(2));
  }
  // Corral derives the twin etag from the twin version (twins/state.ts), so version answers the same question.
  if (first === 'etag') return notQueryable(c, "version (the twin's etag is derived from it) or deviceEtag (the identity's)", position);
  return notQueryable(c, hint(memberNamed(TWIN, first) ?? TWIN, `${first}.`), position);
}

/** Resolves a path of a condition, GROUP BY, ORDER BY or aggregate; throws QuerySyntaxError naming what is allowed. */
export function resolvePath(collection: QueryCollection, path: RawPath): ResolvedPath {
  const canonical = canonicalPath(collection, path);
  if (collection !== 'jobs') return resolveTwinPath(collection, canonical, path.position);
  const [name] = canonical;
  if (canonical.length === 1 && isJobColumn(name)) return field({ kind: 'jobColumn', column: name });
  return notQueryable(canonical, hint({ ...DEVICE_JOB, members: DEVICE_JOB.members.filter((m) => m.kind === 'value') }, ''), path.position);
}
