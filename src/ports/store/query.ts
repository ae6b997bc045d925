/**
 * Fleet queries as the Store runs them. `core/query` turns IoT Hub query text into a checked `QueryPlan`; the Store
 * compiles the plan to its SQL dialect (ports/store/sql) and runs it. A plan is data, never SQL text: every value in
 * it travels as a bound parameter or as a validated path segment, so a query can never inject SQL.
 *
 * Semantics (IoT Hub's, after Cosmos DB's): a missing property is `undefined`; comparisons are defined only between
 * values of the same JSON type (number, string, boolean, null) and are `undefined` otherwise, `!=` included; logic is
 * three-valued (undefined AND false = false, undefined OR true = true, NOT undefined = undefined); a row matches only
 * when its condition is `true`. core/query evaluates the same expressions in memory (evaluate.ts) with exactly these
 * semantics; there `QueryExpr` is generic over what its fields name (a routing condition reads message fields), and
 * only `QueryExpr<FieldRef>` ever reaches a Store.
 */

import type { JsonObject, JsonValue } from './index.js';

/** `devices`, `devices.modules` and `devices.jobs`. */
export type QueryCollection = 'devices' | 'modules' | 'jobs';

export type ScalarValue = string | number | boolean | null;

/** The identity columns a query can read, with the twin name each has (case as IoT Hub writes it). */
export const IDENTITY_QUERY_COLUMNS = {
  deviceId: { type: 'string', nullable: false },
  moduleId: { type: 'string', nullable: false },
  status: { type: 'string', nullable: false },
  statusReason: { type: 'string', nullable: true },
  statusUpdateTime: { type: 'string', nullable: false },
  connectionState: { type: 'string', nullable: false },
  connectionStateUpdatedTime: { type: 'string', nullable: false },
  lastActivityTime: { type: 'string', nullable: false },
  authenticationType: { type: 'string', nullable: false },
  modelId: { type: 'string', nullable: false },
  deviceEtag: { type: 'string', nullable: false },
  cloudToDeviceMessageCount: { type: 'number', nullable: false },
  /** The twin `version`. */
  version: { type: 'number', nullable: false },
  /** `properties.desired.$version` */
  desiredVersion: { type: 'number', nullable: false },
  /** `properties.reported.$version` */
  reportedVersion: { type: 'number', nullable: false },
  /** `capabilities.iotEdge` */
  iotEdge: { type: 'boolean', nullable: false },
  /** `x509Thumbprint.primaryThumbprint` / `secondaryThumbprint` */
  primaryThumbprint: { type: 'string', nullable: true },
  secondaryThumbprint: { type: 'string', nullable: true },
} as const;

/** The per-device job columns of `devices.jobs` (IoT Hub's names, written with or without `devices.jobs.`). */
export const JOB_QUERY_COLUMNS = {
  deviceId: { type: 'string', nullable: false },
  jobId: { type: 'string', nullable: false },
  jobType: { type: 'string', nullable: false },
  status: { type: 'string', nullable: false },
  createdDateTimeUtc: { type: 'string', nullable: false },
  startTimeUtc: { type: 'string', nullable: true },
  endTimeUtc: { type: 'string', nullable: true },
  lastUpdatedDateTimeUtc: { type: 'string', nullable: false },
} as const;

export type IdentityQueryColumn = keyof typeof IDENTITY_QUERY_COLUMNS;
export type JobQueryColumn = keyof typeof JOB_QUERY_COLUMNS;

/** The JSON documents of a twin a path can reach into (`properties.reported.$metadata.x` is `reportedMeta`). */
export type TwinDocument = 'tags' | 'desired' | 'reported' | 'desiredMeta' | 'reportedMeta';

/**
 * The documents a query path can reach into: the twin's, and (Corral's extension) a device's last-known telemetry,
 * `telemetry.x` (`telemetry`, the values) and `telemetry.$metadata.x.$lastUpdated` (`telemetryMeta`). A device
 * without telemetry has neither: every path in them is undefined.
 */
export type QueryDocument = TwinDocument | 'telemetry' | 'telemetryMeta';

/**
 * A field a query reads: a stored column, or a path inside a JSON document (path [] is the whole document). Path
 * segments are non-empty and hold none of `'`, `"`, `\` or control characters (the checker refuses them), so a
 * dialect may write them into SQL text, which expression indexes need.
 */
export type FieldRef =
  | { readonly kind: 'column'; readonly column: IdentityQueryColumn }
  | { readonly kind: 'jobColumn'; readonly column: JobQueryColumn }
  | { readonly kind: 'document'; readonly document: QueryDocument; readonly path: readonly string[] };

export type CompareOp = '=' | '!=' | '<' | '<=' | '>' | '>=';

/** Whether `a op b` holds, given the order of a and b (negative, 0, positive). */
export function orderSatisfies(op: CompareOp, order: number): boolean {
  switch (op) {
    case '=': return order === 0;
    case '!=': return order !== 0;
    case '<': return order < 0;
    case '<=': return order <= 0;
    case '>': return order > 0;
    case '>=': return order >= 0;
  }
}
export type ArithmeticOp = '+' | '-' | '*' | '/' | '%';

/** Functions over values; all names upper case (the parser folds case and the aliases STARTS_WITH, ENDS_WITH). */
export type QueryFunction =
  | 'IS_DEFINED' | 'IS_NULL' | 'IS_BOOL' | 'IS_NUMBER' | 'IS_STRING' | 'IS_OBJECT' | 'IS_ARRAY' | 'IS_PRIMITIVE'
  | 'STARTSWITH' | 'ENDSWITH' | 'CONTAINS' | 'ARRAY_CONTAINS' | 'LOWER' | 'UPPER' | 'LENGTH';

/** A checked expression whose fields are `F`s: FieldRefs in a fleet query, message fields in a routing condition. */
export type QueryExpr<F = FieldRef> =
  /** `undefined` is IoT Hub's literal of that name. */
  | { readonly kind: 'literal'; readonly value: ScalarValue | undefined }
  | { readonly kind: 'field'; readonly field: F }
  | { readonly kind: 'compare'; readonly op: CompareOp; readonly left: QueryExpr<F>; readonly right: QueryExpr<F> }
  | { readonly kind: 'arithmetic'; readonly op: ArithmeticOp; readonly left: QueryExpr<F>; readonly right: QueryExpr<F> }
  | { readonly kind: 'and' | 'or'; readonly left: QueryExpr<F>; readonly right: QueryExpr<F> }
  | { readonly kind: 'not'; readonly operand: QueryExpr<F> }
  /** `x IN [..]` / `x NIN [..]`; the list holds 1 or more literals. */
  | { readonly kind: 'in'; readonly negated: boolean; readonly operand: QueryExpr<F>; readonly values: readonly ScalarValue[] }
  /**
   * Arity and argument kinds are checked: the IS_* functions, LOWER, UPPER and LENGTH take one argument;
   * STARTSWITH, ENDSWITH and CONTAINS take two; ARRAY_CONTAINS takes a field and a literal.
   */
  | { readonly kind: 'call'; readonly fn: QueryFunction; readonly args: readonly QueryExpr<F>[] };

/** Every field an expression reads, in reading order (repeats included). */
export function fieldsOf<F>(expr: QueryExpr<F>): F[] {
  switch (expr.kind) {
    case 'literal': return [];
    case 'field': return [expr.field];
    case 'compare':
    case 'arithmetic':
    case 'and':
    case 'or': return [...fieldsOf(expr.left), ...fieldsOf(expr.right)];
    case 'not': return fieldsOf(expr.operand);
    case 'in': return fieldsOf(expr.operand);
    case 'call': return expr.args.flatMap((a) => fieldsOf(a));
  }
}

export type Aggregate = 'count' | 'sum' | 'avg' | 'min' | 'max';

export type SelectItem =
  /** A path in the twin (or the device-job) JSON, projected from each row: `['properties','reported','fw']`. */
  | { readonly kind: 'path'; readonly path: readonly string[]; readonly alias: string }
  /** In an aggregate query: a GROUP BY field's value. */
  | { readonly kind: 'group'; readonly field: FieldRef; readonly alias: string }
  /** `COUNT()` has no field; SUM/AVG/MIN/MAX take numbers only and ignore everything else. */
  | { readonly kind: 'aggregate'; readonly aggregate: Aggregate; readonly field?: FieldRef; readonly alias: string };

export type QuerySelect =
  | { readonly kind: 'all' }
  /** Projections: each row becomes `{alias: value}` (no aggregates). */
  | { readonly kind: 'paths'; readonly items: readonly SelectItem[] }
  /** Aggregates with optional GROUP BY: each group becomes one row; items are `group` and `aggregate` items. */
  | { readonly kind: 'aggregate'; readonly items: readonly SelectItem[] };

export interface OrderKey {
  readonly field: FieldRef;
  readonly descending: boolean;
}

/** A checked query. Corral's extensions beyond IoT Hub: `orderBy`. */
export interface QueryPlan {
  readonly collection: QueryCollection;
  readonly select: QuerySelect;
  readonly where?: QueryExpr;
  /** Only with an aggregate select. */
  readonly groupBy?: readonly FieldRef[];
  /** Only with a row select (all/paths). Rows with equal keys come in (deviceId, moduleId | jobId) order. */
  readonly orderBy?: readonly OrderKey[];
  /** TOP n: at most n rows in all pages together. */
  readonly top?: number;
}

/** Where a page starts: opaque values the previous page's `after` gave (keyset paging, never an offset). */
export type QueryCursor = readonly JsonValue[];

export interface QueryPageOptions {
  readonly limit: number;
  readonly after?: QueryCursor;
}

/** A device's part in a job (a row of `devices.jobs`). Times are ISO 8601. */
export interface DeviceJobRecord {
  readonly jobId: string;
  readonly deviceId: string;
  readonly moduleId: string;
  readonly jobType: string;
  readonly status: 'pending' | 'scheduled' | 'running' | 'completed' | 'failed' | 'canceled';
  readonly createdDateTimeUtc: string;
  readonly startTimeUtc: string | null;
  readonly endTimeUtc: string | null;
  readonly lastUpdatedDateTimeUtc: string;
  /** `{deviceMethodResponse: {status, payload}}` for a method job. */
  readonly outcome: JsonObject | null;
  /** `{code, description}` when the device's part failed. */
  readonly error: JsonObject | null;
}

/** A device's last-known telemetry as a query reads it: `{field: value}` and `{field: {$lastUpdated: ISO 8601}}`. */
export interface TelemetryDocs {
  readonly values: JsonObject;
  readonly meta: JsonObject;
}

/** One page; `after` is set when more rows may follow (pass it back as `after`). */
export type QueryPage =
  | {
    readonly kind: 'identities'; readonly rows: readonly import('./index.js').IdentityRecord[]; readonly after?: QueryCursor;
    /**
     * Only for a `paths` select with a path under `telemetry`: each row's telemetry (same index), null for a
     * device that has none. Absent otherwise, so `SELECT *` rows are exactly as without telemetry.
     */
    readonly telemetry?: readonly (TelemetryDocs | null)[];
  }
  | { readonly kind: 'jobs'; readonly rows: readonly DeviceJobRecord[]; readonly after?: QueryCursor }
  /** Aggregate rows keyed by their items' aliases. */
  | { readonly kind: 'values'; readonly rows: readonly JsonObject[]; readonly after?: QueryCursor };

/** A declared index: a document path queried often (`tags.site`), kept in a B-tree by the engine. */
export interface QueryIndexRecord {
  readonly document: TwinDocument;
  readonly path: readonly string[];
  readonly createdTime: string;
}

export interface QueryStore {
  /**
   * Runs a plan, one page at a time: rows in order-by order, then key order; a row changed or inserted between
   * pages appears at most once, where its keys put it. Throws QueryCursorInvalid for an `after` this plan could not
   * have produced.
   *
   * TOP: a page holds at most min(limit, plan.top) rows, and `after` is set only when it holds `limit` rows and
   * `top` is absent or above `limit`; to keep TOP over all pages, the caller asks for the next page with `top`
   * less the rows already returned. Row selects (all or paths) give whole records (core projects paths). Aggregates:
   * one row without GROUP BY (never an `after`); groups in key order, paged by their keys; SUM, AVG, MIN and MAX
   * read numbers only and are null where there are none; a group key that is missing is left out of its row.
   */
  run(plan: QueryPlan, page: QueryPageOptions): Promise<QueryPage>;
  /** Declared indexes, oldest first. */
  listIndexes(): Promise<QueryIndexRecord[]>;
  /** Builds the index (idempotent: false when it existed already). Telemetry documents cannot be indexed (Error). */
  addIndex(document: QueryDocument, path: readonly string[], createdTime: string): Promise<boolean>;
  /** Drops it; false when it was not declared. */
  removeIndex(document: QueryDocument, path: readonly string[]): Promise<boolean>;
}

/** The `after` of a query page does not fit the plan (tampered with, or from another query). */
export class QueryCursorInvalid extends Error {
  constructor(reason: string) {
    super(`the continuation token does not fit this query: ${reason}`);
    this.name = new.target.name;
  }
}
