/**
 * IoT Hub's routing conditions: the query language's condition syntax over a message instead of a twin.
 * `$contentType`, `$connectionDeviceId`, `$iothub-enqueuedtime`, … are system properties; a bare name is an
 * application property; `$body.a.b` reads the JSON body and `$twin.tags.x`, `$twin.properties.desired|reported.x`
 * the sender's twin. Conditions are checked into `QueryExpr<MessageField>`, a type no Store accepts, and evaluated
 * in memory with the fleet queries' semantics (evaluate.ts).
 */

import { QuerySyntaxError } from '../errors/index.js';
import type { JsonObject, JsonValue } from '../../ports/store/index.js';
import { fieldsOf, type QueryExpr } from '../../ports/store/query.js';
import { pathText } from './attributes.js';
import type { PathResolver } from './checker.js';
import { evaluateCondition } from './evaluate.js';
import { parsePathText } from './parser.js';
import { valueAt } from './project.js';
import type { RawPath } from './syntax.js';

/** What a routing condition's path names. */
export type MessageField =
  /** A system property by its routing name without `$` (`contentType`), matched case-insensitively. */
  | { readonly kind: 'system'; readonly name: string }
  /** An application property, by its exact name. */
  | { readonly kind: 'app'; readonly name: string }
  /** A path in the JSON body ([] is the whole body). */
  | { readonly kind: 'body'; readonly path: readonly string[] }
  | { readonly kind: 'twin'; readonly section: 'tags' | 'desired' | 'reported'; readonly path: readonly string[] };

/** What a condition is evaluated against: one message, and its sender's twin where the condition reads `$twin`. */
export interface MessageFacts {
  /** By routing name without `$` (`contentType`, `connectionDeviceId`, `iothub-enqueuedtime`, …); looked up case-insensitively. */
  readonly system: Readonly<Record<string, string>>;
  /** Application properties, by exact name; their values are strings and compare as strings. */
  readonly app: Readonly<Record<string, string>>;
  /** The parsed JSON body; undefined when the body is not JSON (every `$body` path is then undefined). */
  readonly body: JsonValue | undefined;
  readonly twin?: {
    readonly tags: JsonObject;
    readonly properties: { readonly desired: JsonObject; readonly reported: JsonObject };
  };
}

/** A checked routing condition. */
export interface MessageCondition {
  readonly text: string;
  /** Whether it reads `$twin` (the caller then has to fetch the twin). */
  readonly usesTwin: boolean;
  /** Whether it reads `$body` (the caller then has to parse the body). */
  readonly usesBody: boolean;
  readonly expr: QueryExpr<MessageField>;
}

const TWIN_HINT = 'use $twin.tags.…, $twin.properties.desired.… or $twin.properties.reported.…';

function twinField(path: RawPath, rest: readonly string[]): MessageField {
  const [section, which, ...deeper] = rest;
  const lower = section?.toLowerCase();
  if (lower === 'tags') return { kind: 'twin', section: 'tags', path: rest.slice(1) };
  const side = which?.toLowerCase();
  if (lower === 'properties' && (side === 'desired' || side === 'reported')) return { kind: 'twin', section: side, path: deeper };
  throw new QuerySyntaxError(path.position, `unknown attribute '${pathText(path.segments)}'; ${TWIN_HINT}`);
}

/** Resolves a condition's path to a message field; throws QuerySyntaxError for a member of a plain property. */
function messageField(path: RawPath): MessageField {
  const [first, ...rest] = path.segments;
  if (!first.startsWith('$')) {
    if (rest.length > 0) {
      throw new QuerySyntaxError(path.position,
        `'${first}' is an application property, a string; it has no member '${rest[0]}' (the body is read as $body.${pathText(path.segments)})`);
    }
    return { kind: 'app', name: first };
  }
  const name = first.slice(1);
  switch (name.toLowerCase()) {
    case 'body': return { kind: 'body', path: rest };
    case 'twin': return twinField(path, rest);
    case '': throw new QuerySyntaxError(path.position, "expected a system property name after '$', such as $contentType");
    default:
      if (rest.length > 0) throw new QuerySyntaxError(path.position, `'${first}' is a system property, a string; it has no member '${rest[0]}'`);
      return { kind: 'system', name };
  }
}

/** How the checker reads a routing condition's paths: every path is a message field. */
export const MESSAGE_PATHS: PathResolver<MessageField> = {
  resolve: (path) => ({ kind: 'field', field: messageField(path) }),
  field: (path) => messageField(path),
};

/** The checked condition with what it reads. */
export function messageCondition(text: string, expr: QueryExpr<MessageField>): MessageCondition {
  const fields = fieldsOf(expr);
  return { text, usesTwin: fields.some((f) => f.kind === 'twin'), usesBody: fields.some((f) => f.kind === 'body'), expr };
}

function systemProperty(system: Readonly<Record<string, string>>, name: string): string | undefined {
  if (Object.hasOwn(system, name)) return system[name];
  const lower = name.toLowerCase();
  const key = Object.keys(system).find((k) => k.toLowerCase() === lower);
  return key === undefined ? undefined : system[key];
}

function twinSection(facts: MessageFacts, section: 'tags' | 'desired' | 'reported'): JsonObject | undefined {
  const twin = facts.twin;
  if (twin === undefined) return undefined;
  return section === 'tags' ? twin.tags : twin.properties[section];
}

function messageValue(field: MessageField, facts: MessageFacts): JsonValue | undefined {
  switch (field.kind) {
    case 'system': return systemProperty(facts.system, field.name);
    case 'app': return Object.hasOwn(facts.app, field.name) ? facts.app[field.name] : undefined;
    case 'body': return valueAt(facts.body, field.path) as JsonValue | undefined;
    case 'twin': return valueAt(twinSection(facts, field.section), field.path) as JsonValue | undefined;
  }
}

/** Whether the condition is true for the message (false for false and for undefined, as IoT Hub routes). */
export function evaluateMessageCondition(condition: MessageCondition, facts: MessageFacts): boolean {
  return evaluateCondition(condition.expr, (field) => messageValue(field, facts));
}

/** The number at `path` in a parsed body ([] is the body itself); undefined for anything else or a missing path. */
export function readBodyNumber(body: JsonValue | undefined, path: readonly string[]): number | undefined {
  const value = valueAt(body, path);
  return typeof value === 'number' ? value : undefined;
}

/** `$body.a.b` or `a.b` (keys in brackets as in conditions) → ['a', 'b']; throws QuerySyntaxError for anything else. */
export function parseBodyPath(text: string): string[] {
  const path = parsePathText(text, 'a body path such as $body.temperature or temperature');
  const [first, ...rest] = path.segments;
  if (first.toLowerCase() === '$body') return rest;
  if (first.startsWith('$')) {
    throw new QuerySyntaxError(path.position, `'${first}' is not in the body; write a body path such as $body.temperature or temperature`);
  }
  return [...path.segments];
}
