/**
 * The syntax tree the parser builds and the checker reads. Paths stay as written (the checker resolves them against
 * the collection, known only after FROM); every node keeps its position for the checker's errors.
 */

import type { Aggregate, ArithmeticOp, CompareOp, QueryCollection, ScalarValue } from '../../ports/store/query.js';

/**
 * Deepest expression tree and deepest bracketing accepted. Guards the parser's own stack against `((((…` and keeps
 * the SQL a store generates under SQLite's expression-depth limit of 1000 (a node may become several SQL levels).
 */
export const MAX_NESTING = 64;
/** Most values in one `IN [...]` list. */
export const MAX_IN_VALUES = 1000;

export interface RawPath {
  readonly segments: readonly string[];
  readonly position: number;
}

interface Positioned { readonly position: number; readonly depth: number }
export type RawExpr = Positioned & (
  | { readonly kind: 'literal'; readonly value: ScalarValue | undefined }
  | { readonly kind: 'path'; readonly path: RawPath }
  | { readonly kind: 'compare'; readonly op: CompareOp; readonly left: RawExpr; readonly right: RawExpr }
  | { readonly kind: 'arithmetic'; readonly op: ArithmeticOp; readonly left: RawExpr; readonly right: RawExpr }
  | { readonly kind: 'and' | 'or'; readonly left: RawExpr; readonly right: RawExpr }
  | { readonly kind: 'not'; readonly operand: RawExpr }
  | { readonly kind: 'in'; readonly negated: boolean; readonly operand: RawExpr; readonly values: readonly ScalarValue[] }
  /** `name` as written; the checker folds case and checks arity. */
  | { readonly kind: 'call'; readonly name: string; readonly args: readonly RawExpr[] });

export interface RawAlias { readonly name: string; readonly position: number }

export type RawSelectItem =
  | { readonly kind: 'path'; readonly path: RawPath; readonly alias?: RawAlias; readonly position: number }
  | {
    readonly kind: 'aggregate'; readonly aggregate: Aggregate; readonly arg?: RawPath;
    readonly alias?: RawAlias; readonly position: number;
  };

export type RawSelect =
  | { readonly kind: 'all'; readonly position: number }
  | { readonly kind: 'items'; readonly items: readonly RawSelectItem[] };

export interface RawOrderKey { readonly path: RawPath; readonly descending: boolean }

export interface RawQuery {
  readonly top?: number;
  readonly select: RawSelect;
  readonly collection: QueryCollection;
  readonly where?: RawExpr;
  readonly groupBy?: readonly RawPath[];
  readonly orderBy?: readonly RawOrderKey[];
  /** Where ORDER BY starts, for the checker's "not with aggregates". */
  readonly orderByPosition?: number;
}
