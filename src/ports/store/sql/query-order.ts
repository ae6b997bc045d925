import type { JsonValue } from '../index.js';
import { QueryCursorInvalid, type QueryCursor } from '../query.js';
import { TRUE, TYPE_RANKS, sqlAnd, sqlOr, type JsonType, type QueryDialect } from './query-dialect.js';
import type { QueryContext, Val } from './query-values.js';

/**
 * Ordering, grouping and keyset paging over values of any JSON type. A value is spread over up to three sort parts,
 * each never NULL so comparisons stay two-valued: its type's rank (undefined < null < boolean < number < string <
 * array < object, Cosmos DB's order), a number (booleans 0/1) and a text (strings; arrays and objects as their JSON
 * text), compared bytewise. A value of one static type needs only its own part. The cursor of a page is the last
 * row's part values, so it is plain JSON and every engine continues exactly where the other would.
 */

export type PartKind = 'int' | 'num' | 'text';

export interface SortPart {
  readonly sql: string;
  readonly kind: PartKind;
}

export interface OrderedPart extends SortPart {
  readonly descending: boolean;
}

export interface SortKey {
  readonly parts: readonly SortPart[];
  /** The JSON value a row's part values stand for; undefined for a missing one. */
  decode(values: readonly unknown[]): JsonValue | undefined;
}

const TYPE_OF_RANK: readonly (JsonType | undefined)[] = [undefined, 'null', 'boolean', 'number', 'string', 'array', 'object'];

export function sortKey(dialect: QueryDialect, v: Val): SortKey {
  if (v.types.length === 1 && v.is(v.types) === TRUE) return staticSortKey(dialect, v.types[0], v.sql(v.types[0]));
  if (v.doc) {
    const { rank, number, text } = dialect.docSortParts(v.doc);
    const parts: SortPart[] = [{ kind: 'int', sql: rank }, { kind: 'num', sql: number }, { kind: 'text', sql: text }];
    return { parts, decode: (values) => decodeRanked(parts, values) };
  }
  const parts: SortPart[] = [];
  const cases = (types: readonly JsonType[], value: (t: JsonType) => string, otherwise: string): string =>
    `CASE ${types.map((t) => `WHEN ${v.is([t])} THEN ${value(t)}`).join(' ')} ELSE ${otherwise} END`;
  if (v.types.length > 0) parts.push({ kind: 'int', sql: cases(v.types, (t) => String(TYPE_RANKS[t]), '0') });
  const numeric = v.types.filter((t) => t === 'boolean' || t === 'number');
  if (numeric.length > 0) {
    const number = (t: JsonType): string => (t === 'boolean' ? dialect.boolToNumber(v.sql(t)) : v.sql(t));
    parts.push({ kind: 'num', sql: cases(numeric, number, '0') });
  }
  const texts = v.types.filter((t) => t === 'string' || t === 'array' || t === 'object');
  if (texts.length > 0) parts.push({ kind: 'text', sql: dialect.sortableText(cases(texts, (t) => v.sql(t), "''")) });
  return { parts, decode: (values) => decodeRanked(parts, values) };
}

function staticSortKey(dialect: QueryDialect, type: JsonType, sql: string): SortKey {
  switch (type) {
    case 'null': return { parts: [], decode: () => null };
    case 'boolean': return { parts: [{ kind: 'num', sql: dialect.boolToNumber(sql) }], decode: ([n]) => Number(n) !== 0 };
    case 'number': return { parts: [{ kind: 'num', sql }], decode: ([n]) => Number(n) };
    case 'string': return { parts: [{ kind: 'text', sql: dialect.sortableText(sql) }], decode: ([s]) => String(s) };
    default: return { parts: [{ kind: 'text', sql: dialect.sortableText(sql) }], decode: ([s]) => JSON.parse(String(s)) as JsonValue };
  }
}

function decodeRanked(parts: readonly SortPart[], values: readonly unknown[]): JsonValue | undefined {
  const of = (kind: PartKind): unknown => values[parts.findIndex((p) => p.kind === kind)];
  switch (TYPE_OF_RANK[Number(of('int'))]) {
    case undefined: return undefined;
    case 'null': return null;
    case 'boolean': return Number(of('num')) !== 0;
    case 'number': return Number(of('num'));
    case 'string': return String(of('text'));
    default: return JSON.parse(String(of('text'))) as JsonValue;
  }
}

/** A part's value as read from a row, in the cursor's JSON form. */
export function readPart(part: SortPart, raw: unknown): JsonValue {
  return part.kind === 'text' ? String(raw) : Number(raw);
}

/** Throws QueryCursorInvalid unless `cursor` holds one value of the right kind per part. */
export function checkCursor(parts: readonly SortPart[], cursor: QueryCursor): void {
  if (!Array.isArray(cursor) || cursor.length !== parts.length) {
    throw new QueryCursorInvalid(`it holds ${Array.isArray(cursor) ? cursor.length : 'no'} values, this query's hold ${parts.length}`);
  }
  parts.forEach((part, i) => {
    const v = cursor[i];
    const fits = part.kind === 'text'
      ? typeof v === 'string'
      : typeof v === 'number' && Number.isFinite(v) && (part.kind === 'num' || Number.isInteger(v));
    if (!fits) throw new QueryCursorInvalid(`value ${i} is ${JSON.stringify(v)}, not ${part.kind === 'text' ? 'a string' : 'a number'}`);
  });
}

/**
 * Rows strictly after `cursor` in the order of `parts`. One direction throughout: a row-value comparison, which
 * the engines answer from an index on those columns; mixed directions: (k1 > v1) OR (k1 = v1 AND k2 > v2) ….
 */
export function afterCursor(ctx: QueryContext, parts: readonly OrderedPart[], cursor: QueryCursor): string {
  if (parts.length === 0) return TRUE;
  const bound = parts.map((p, i) => ctx.dialect.bindScalar(ctx.params, cursor[i] as string | number));
  const beyond = (p: OrderedPart): string => (p.descending ? '<' : '>');
  if (parts.every((p) => p.descending === parts[0].descending)) {
    if (parts.length === 1) return `${parts[0].sql} ${beyond(parts[0])} ${bound[0]}`;
    return `(${parts.map((p) => p.sql).join(', ')}) ${beyond(parts[0])} (${bound.join(', ')})`;
  }
  return sqlOr(parts.map((p, i) => sqlAnd([
    ...parts.slice(0, i).map((q, j) => `${q.sql} = ${bound[j]}`),
    `${p.sql} ${beyond(p)} ${bound[i]}`,
  ])));
}
