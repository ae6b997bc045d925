import { createHash } from 'node:crypto';
import type { ArithmeticOp, CompareOp, QueryDocument, ScalarValue, TwinDocument } from '../query.js';

/**
 * What differs between the engines when a QueryPlan becomes SQL. The visitor (query-expr.ts, query-compile.ts) is
 * shared; a dialect only says how to spell a JSON read, a type test, a bound value or a string function. Every method
 * returns SQL text; values only ever reach it through `QueryParams.add`.
 */

export type JsonType = 'null' | 'boolean' | 'number' | 'string' | 'array' | 'object';
export type ScalarType = 'null' | 'boolean' | 'number' | 'string';
export const SCALAR_TYPES: readonly ScalarType[] = ['null', 'boolean', 'number', 'string'];
export const JSON_TYPES: readonly JsonType[] = [...SCALAR_TYPES, 'array', 'object'];
export const SQL_OPS: Readonly<Record<CompareOp, string>> = { '=': '=', '!=': '<>', '<': '<', '<=': '<=', '>': '>', '>=': '>=' };

/** A path inside one of the identity row's JSON columns; segments checked by `checkSegment`. */
export interface DocPath {
  readonly column: string;
  readonly path: readonly string[];
}

/** Sort order of the JSON types (0 is undefined): Cosmos DB's, null < boolean < number < string < array < object. */
export const TYPE_RANKS: Readonly<Record<JsonType, number>> = { null: 1, boolean: 2, number: 3, string: 4, array: 5, object: 6 };

/** The identities column holding each twin document. */
export const DOCUMENT_COLUMNS: Readonly<Record<TwinDocument, string>> = {
  tags: 'tags', desired: 'desired', reported: 'reported', desiredMeta: 'desired_meta', reportedMeta: 'reported_meta',
};

export type PlaceholderStyle = 'question' | 'dollar';

export interface QueryDialect {
  /** `?` (each occurrence binds a value) or `$n` (numbered, reusable). */
  readonly placeholders: PlaceholderStyle;
  /** A scalar bound in the engine's native type (booleans as the engine's booleans). */
  bindScalar(params: QueryParams, value: string | number | boolean): string;
  /** Native boolean constants, and conversions between the engine's booleans, 0/1 numbers and 0/1 int columns. */
  readonly trueSql: string;
  readonly falseSql: string;
  boolToNumber(sql: string): string;
  intColumnToBool(sql: string): string;
  /** An integer column as a number arithmetic and aggregates treat like any JSON number. */
  numberColumn(sql: string): string;
  /** SQL true exactly when the value at `doc` has one of `types` (false or NULL otherwise, missing included). */
  docTypeIn(doc: DocPath, types: readonly JsonType[]): string;
  /** The native value at `doc` when it has `type` (arrays and objects as JSON text); anything when it has not. */
  docValue(doc: DocPath, type: JsonType): string;
  /** The dialect's own, index-matching form of `doc <op> literal`; undefined leaves it to the generic form. */
  compareDocLiteral(doc: DocPath, op: CompareOp, value: ScalarValue, params: QueryParams): string | undefined;
  /** The dialect's own form of `doc IN/NIN literals`; undefined leaves it to the generic form. */
  docInLiterals(doc: DocPath, values: readonly ScalarValue[], negated: boolean, params: QueryParams): string | undefined;
  /** True when the array at `doc` (known to be an array) has an element equal to `value`, type included. */
  arrayContains(doc: DocPath, value: ScalarValue, params: QueryParams): string;
  /** String comparison, ranges ordered bytewise (UTF-8), as SQLite's BINARY collation does. */
  compareText(left: string, op: CompareOp, right: string): string;
  /** Numeric arithmetic on two numbers; SQL NULL where the result is undefined (division by zero). */
  arithmetic(op: ArithmeticOp, left: string, right: string): string;
  startsWith(text: string, prefix: string): string;
  endsWith(text: string, suffix: string): string;
  contains(text: string, part: string): string;
  /** ASCII-only case mapping: the one both engines share without ICU. */
  lower(text: string): string;
  upper(text: string): string;
  /** Length in characters (code points). */
  length(text: string): string;
  /** A text expression made to sort and compare bytewise. */
  sortableText(sql: string): string;
  /** The sort parts of a document value (see query-order.ts): its type's rank, its number, its text; none NULL. */
  docSortParts(doc: DocPath): { readonly rank: string; readonly number: string; readonly text: string };
  /** What GROUP BY lists for a document value, so a declared index can feed the grouping. */
  docGroupTerms(doc: DocPath): string[];
  /**
   * The column list of a declared index on `doc`: the path's expressions first, module_id last. Not module_id
   * first: `module_id = ''` holds for nearly every row, and SQLite, which keeps no statistics, would take it for a
   * selective equality and read any declared index (then sort) for every devices query.
   */
  indexTerms(doc: DocPath): string;
}

/**
 * Bound values of one statement. `add` returns a marker (control characters, which no path segment or SQL keyword
 * holds); `finish` turns the markers into the dialect's placeholders in text order, so a fragment folded away
 * (`x OR TRUE`) leaves no unused value behind, and a fragment written twice binds its value twice with `?`.
 * A fragment compiled into a caller's statement (compileDeviceCondition) shares the object: the caller binds its own
 * values through `add` too, and runs what `finish` gives.
 */
export class QueryParams {
  private readonly bound: unknown[] = [];

  /** `bindsBefore`: values the statement binds ahead of these ($n numbering continues after them). */
  constructor(private readonly style: PlaceholderStyle, private readonly bindsBefore = 0) {}

  /** Binds `value` as the driver takes it; returns the marker to write into the SQL text. */
  add(value: unknown): string {
    this.bound.push(value);
    return `\u0001${this.bound.length - 1}\u0002`;
  }

  /** The SQL text with placeholders and the values in their order. */
  finish(sql: string): { readonly text: string; readonly values: unknown[] } {
    const values: unknown[] = [];
    const numbers = new Map<number, number>();
    const text = sql.replace(/\u0001(\d+)\u0002/g, (_, index: string) => {
      const i = Number(index);
      if (this.style === 'question') {
        values.push(this.bound[i]);
        return '?';
      }
      let n = numbers.get(i);
      if (n === undefined) numbers.set(i, n = this.bindsBefore + values.push(this.bound[i]));
      return `$${n}`;
    });
    return { text, values };
  }
}

/**
 * The checker refuses quotes, backslashes and control characters in path segments; a segment is still escaped
 * where it is written (defence in depth), and a control character, which no escape makes harmless in every engine's
 * path syntax, is refused here as well.
 */
export function checkSegment(segment: string): string {
  // eslint-disable-next-line no-control-regex
  if (segment.length === 0 || /[\u0000-\u001f\u007f]/.test(segment)) {
    throw new Error(`path segment ${JSON.stringify(segment)} is empty or holds a control character`);
  }
  return segment;
}

export function isTwinDocument(document: QueryDocument): document is TwinDocument {
  return Object.hasOwn(DOCUMENT_COLUMNS, document);
}

/**
 * The document path a declared index covers; throws for a document that is not the twin's (telemetry lives in
 * another table, which declared indexes do not cover) and for the whole document.
 */
export function declaredIndexPath(document: QueryDocument, path: readonly string[]): DocPath {
  if (!isTwinDocument(document)) throw new Error(`'${document}' is not a twin document; only paths in a twin can be indexed`);
  if (path.length === 0) throw new Error(`an index needs a path inside ${document}, not the whole document`);
  return { column: DOCUMENT_COLUMNS[document], path: path.map(checkSegment) };
}

/** A SQL string literal: quotes doubled. */
export function sqlString(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

/** The name of a declared index, the same on every node: `qx_` and 64 bits of a hash of document and path. */
export function queryIndexName(document: QueryDocument, path: readonly string[]): string {
  return `qx_${createHash('sha256').update(JSON.stringify([document, path])).digest('hex').slice(0, 16)}`;
}

export const TRUE = 'TRUE';
export const FALSE = 'FALSE';

/**
 * AND of SQL conditions, folding the constants TRUE and FALSE. Terms need no parentheses: an OR comes from sqlOr,
 * which brackets itself, and AND binds tighter than OR.
 */
export function sqlAnd(terms: readonly string[]): string {
  if (terms.includes(FALSE)) return FALSE;
  const rest = terms.filter((t) => t !== TRUE);
  return rest.length === 0 ? TRUE : rest.join(' AND ');
}

/** OR of SQL conditions, folding the constants TRUE and FALSE; bracketed, so it can stand in any AND. */
export function sqlOr(terms: readonly string[]): string {
  if (terms.includes(TRUE)) return TRUE;
  const rest = terms.filter((t) => t !== FALSE);
  if (rest.length === 0) return FALSE;
  return rest.length === 1 ? rest[0] : `(${rest.join(' OR ')})`;
}

/** True exactly when `cond` is not SQL-true (false or NULL): the negation of a test that is never undefined. */
export function sqlNotTrue(cond: string): string {
  if (cond === TRUE) return FALSE;
  if (cond === FALSE) return TRUE;
  return `(${cond}) IS NOT TRUE`;
}
