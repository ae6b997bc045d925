import type { JsonObject } from '../index.js';
import {
  QueryCursorInvalid, fieldsOf,
  type FieldRef, type QueryCursor, type QueryExpr, type QueryPage, type QueryPageOptions, type QueryPlan, type SelectItem,
} from '../query.js';
import { QueryParams, TRUE, sqlAnd, type QueryDialect } from './query-dialect.js';
import { condition } from './query-expr.js';
import { afterCursor, checkCursor, readPart, sortKey, type OrderedPart, type SortKey } from './query-order.js';
import { QUERY_SOURCES, withTelemetry, type QuerySource } from './query-sources.js';
import { fieldVal, type QueryContext } from './query-values.js';

/**
 * QueryPlan → one SQL statement, for either engine (the AST→SQL visitor; dialects only spell its pieces). WHERE,
 * ORDER BY, GROUP BY, the aggregates and keyset paging all run in the engine; the rows read are the page's rows.
 */

type Row = Record<string, unknown>;

export interface CompiledQuery {
  /** SQL with the dialect's placeholders. */
  readonly text: string;
  /** Bound values in placeholder order. */
  readonly values: readonly unknown[];
  /** The page the statement's rows make. */
  toPage(rows: readonly Row[]): QueryPage;
}

export { QueryParams };

/**
 * Compiles one page of `plan`. The page holds at most min(limit, top) rows; `after` is set when it holds `limit`
 * rows and `top` (if any) is above `limit`: the caller passes `top` less the rows it has so far with the next page.
 * Throws QueryCursorInvalid for an `after` that does not fit the plan, and Error for a plan the checker should have
 * refused (a job column outside devices.jobs, order keys on an aggregate select, …).
 */
export function compileQuery(dialect: QueryDialect, plan: QueryPlan, page: QueryPageOptions): CompiledQuery {
  if (!Number.isInteger(page.limit) || page.limit < 1) throw new RangeError(`page limit ${page.limit} is not a positive integer`);
  if (plan.top !== undefined && (!Number.isInteger(plan.top) || plan.top < 0)) throw new RangeError(`TOP ${plan.top} is not a whole number`);
  const ctx: QueryContext = { dialect, params: new QueryParams(dialect.placeholders), collection: plan.collection, telemetry: 'joined' };
  const source = sourceOf(plan);
  const limit = Math.min(page.limit, plan.top ?? page.limit);
  const more = (rows: readonly Row[]): boolean => rows.length === page.limit && (plan.top === undefined || plan.top > page.limit);
  if (plan.select.kind === 'aggregate') return compileAggregate(ctx, source, plan, page.after, { limit, more });
  if (plan.groupBy?.length) throw new Error('GROUP BY needs an aggregate select');
  return compileRows(ctx, source, plan, page.after, { limit, more });
}

/**
 * The WHERE condition of a `devices` query as a fragment over the unqualified columns of `identities`: true exactly
 * for the device rows (module_id = '') that `run` would return for the plan `{collection: 'devices', where}`. Job
 * expansion writes `INSERT INTO job_devices (…) SELECT … FROM identities WHERE <fragment>`. Values are bound through
 * `params`: bind the statement's own values with `params.add` too, then run what `params.finish(sql)` gives (`?` and
 * a value array for better-sqlite3, `$n` for pg). `telemetry.*` reads device_state through a subquery on
 * `identities.device_id`, so the statement names the table `identities` (no alias). Throws Error for a condition on
 * job columns.
 */
export function compileDeviceCondition(dialect: QueryDialect, where: QueryExpr | undefined, params: QueryParams): string {
  const ctx: QueryContext = { dialect, params, collection: 'devices', telemetry: 'subquery' };
  return sqlAnd([QUERY_SOURCES.devices.filter, where === undefined ? TRUE : condition(ctx, where)]);
}

/**
 * compileDeviceCondition for a statement that keeps its values in a positional array: the fragment's values are
 * appended to `values`, their placeholders following the ones already there (`?` in text order, or `$n` from
 * values.length + 1), so the caller writes the fragment where it stands and binds `values`.
 */
export function appendDeviceCondition(dialect: QueryDialect, where: QueryExpr, values: unknown[]): string {
  const params = new QueryParams(dialect.placeholders, values.length);
  const { text, values: bound } = params.finish(compileDeviceCondition(dialect, where, params));
  values.push(...bound);
  return text;
}

function isTelemetry(field: FieldRef): boolean {
  return field.kind === 'document' && (field.document === 'telemetry' || field.document === 'telemetryMeta');
}

/** Whether a `paths` select projects a path under `telemetry` (core projects it from the page's telemetry). */
function projectsTelemetry(plan: QueryPlan): boolean {
  return plan.select.kind === 'paths' && plan.select.items.some((item) => item.kind === 'path' && item.path[0] === 'telemetry');
}

/** Every field the plan reads: its condition's, group keys, order keys and aggregated fields. */
function planFields(plan: QueryPlan): FieldRef[] {
  const items = plan.select.kind === 'all' ? [] : plan.select.items;
  return [
    ...(plan.where ? fieldsOf(plan.where) : []), ...(plan.groupBy ?? []), ...(plan.orderBy ?? []).map((k) => k.field),
    ...items.flatMap((item) => (item.kind === 'path' || item.field === undefined ? [] : [item.field])),
  ];
}

/** The collection's rows, with device_state joined only when the plan reads telemetry (Corral's extension). */
function sourceOf(plan: QueryPlan): QuerySource {
  const projected = projectsTelemetry(plan);
  if (plan.collection === 'jobs' || !(projected || planFields(plan).some(isTelemetry))) return QUERY_SOURCES[plan.collection];
  return withTelemetry(plan.collection, projected);
}

interface PageRule {
  readonly limit: number;
  /** Whether a page of these rows leaves more to read. */
  more(rows: readonly Row[]): boolean;
}

/**
 * A row select. With order keys, the rows and their sort parts (k0, k1, …) come from a derived table, so the keyset
 * predicate and ORDER BY name the parts rather than repeat them; both engines flatten it into one scan.
 */
function compileRows(ctx: QueryContext, source: QuerySource, plan: QueryPlan, after: QueryCursor | undefined, rule: PageRule): CompiledQuery {
  const keys = (plan.orderBy ?? []).map((k) => ({ key: sortKey(ctx.dialect, fieldVal(ctx, k.field)), descending: k.descending }));
  const orderParts: OrderedPart[] = keys.flatMap((k) => k.key.parts.map((p) => ({ ...p, descending: k.descending })));
  const named = orderParts.map((p, i) => ({ ...p, sql: `k${i}` }));
  const parts: OrderedPart[] = [...named, ...source.keys.map((sql) => ({ sql, kind: 'text' as const, descending: false }))];
  const filter = sqlAnd([source.filter, whereOf(ctx, plan)]);
  const start = pageStart(ctx, parts, after);
  const orderBy = parts.map((p) => `${p.sql}${p.descending ? ' DESC' : ''}`).join(', ');
  const limit = ctx.params.add(rule.limit);
  const sql = orderParts.length === 0
    ? `SELECT ${source.columns.join(', ')} FROM ${source.table} WHERE ${sqlAnd([filter, start])} ORDER BY ${orderBy} LIMIT ${limit}`
    : `SELECT * FROM (SELECT ${[...source.columns, ...orderParts.map((p, i) => `${p.sql} AS k${i}`)].join(', ')}`
      + ` FROM ${source.table} WHERE ${filter}) AS q WHERE ${start} ORDER BY ${orderBy} LIMIT ${limit}`;
  const cursorOf = (row: Row): QueryCursor => parts.map((p) => readPart(p, row[p.sql]));
  return finish(ctx, sql, (rows) => source.page(rows, rule.more(rows) ? cursorOf(rows[rows.length - 1]) : undefined));
}

function compileAggregate(
  ctx: QueryContext, source: QuerySource, plan: QueryPlan, after: QueryCursor | undefined, rule: PageRule,
): CompiledQuery {
  if (plan.orderBy?.length) throw new Error('ORDER BY applies to row selects only; groups come in key order');
  const items = plan.select.kind === 'aggregate' ? plan.select.items : [];
  if (items.length === 0) throw new Error('an aggregate select needs at least one item');
  const groupBy = plan.groupBy ?? [];
  const vals = groupBy.map((f) => fieldVal(ctx, f));
  const keys = vals.map((v) => sortKey(ctx.dialect, v));
  const parts: OrderedPart[] = keys.flatMap((k) => k.parts.map((p) => ({ ...p, descending: false })));
  const where = sqlAnd([source.filter, whereOf(ctx, plan), pageStart(ctx, parts, after)]);
  const aggregates = items.flatMap((item, i) => (item.kind === 'aggregate' ? [`${aggregateSql(ctx, item)} AS a${i}`] : []));
  const select = [...parts.map((p, i) => `${p.sql} AS g${i}`), ...aggregates];
  let sql = `SELECT ${select.join(', ')} FROM ${source.table} WHERE ${where}`;
  if (groupBy.length > 0) {
    const terms = vals.flatMap((v) => (v.doc ? ctx.dialect.docGroupTerms(v.doc) : [v.sql(v.types[0])]));
    sql += ` GROUP BY ${terms.join(', ')} ORDER BY ${parts.map((_, i) => `g${i}`).join(', ')} LIMIT ${ctx.params.add(rule.limit)}`;
  }
  const toRow = groupRow(items, groupBy, keys);
  return finish(ctx, sql, (rows) => {
    // Without GROUP BY the one row is the whole answer (a TOP 0 leaves none).
    const kept = groupBy.length === 0 && rule.limit === 0 ? [] : rows;
    const more = groupBy.length > 0 && rule.more(kept);
    const last = kept[kept.length - 1];
    const cursor = more ? parts.map((p, i) => readPart(p, last[`g${i}`])) : undefined;
    return { kind: 'values', rows: kept.map(toRow), ...(cursor && { after: cursor }) };
  });
}

function whereOf(ctx: QueryContext, plan: QueryPlan): string {
  return plan.where === undefined ? TRUE : condition(ctx, plan.where);
}

function pageStart(ctx: QueryContext, parts: readonly OrderedPart[], after: QueryCursor | undefined): string {
  if (after === undefined) return TRUE;
  if (parts.length === 0) throw new QueryCursorInvalid('a query without GROUP BY has a single page');
  checkCursor(parts, after);
  return afterCursor(ctx, parts, after);
}

const AGGREGATE_FUNCTIONS = { sum: 'SUM', avg: 'AVG', min: 'MIN', max: 'MAX' } as const;

/** COUNT() counts rows; SUM, AVG, MIN and MAX read numbers only and are null where a group has none. */
function aggregateSql(ctx: QueryContext, item: SelectItem & { kind: 'aggregate' }): string {
  if (item.aggregate === 'count') return 'COUNT(*)';
  if (item.field === undefined) throw new Error(`${item.aggregate.toUpperCase()} needs a field`);
  const v = fieldVal(ctx, item.field);
  if (!v.types.includes('number')) return 'NULL';
  const isNumber = v.is(['number']);
  const number = isNumber === TRUE ? v.sql('number') : `CASE WHEN ${isNumber} THEN ${v.sql('number')} END`;
  return `${AGGREGATE_FUNCTIONS[item.aggregate]}(${number})`;
}

/** Builds a group's output row: group items as their JSON value (left out where missing), aggregates as numbers. */
function groupRow(items: readonly SelectItem[], groupBy: readonly FieldRef[], keys: readonly SortKey[]): (row: Row) => JsonObject {
  const offsets = keys.map((_, i) => keys.slice(0, i).reduce((n, k) => n + k.parts.length, 0));
  const readers = items.map((item, i): ((row: Row) => JsonObject[string] | undefined) => {
    if (item.kind === 'aggregate') return (row) => (row[`a${i}`] === null ? null : Number(row[`a${i}`]));
    const k = item.kind === 'group' ? groupBy.findIndex((f) => sameField(f, item.field)) : -1;
    if (k < 0) throw new Error(`select item ${item.alias} is neither an aggregate nor a GROUP BY field`);
    return (row) => keys[k].decode(keys[k].parts.map((_, j) => row[`g${offsets[k] + j}`]));
  });
  return (row) => {
    const out: JsonObject = {};
    items.forEach((item, i) => {
      const value = readers[i](row);
      if (value !== undefined) out[item.alias] = value;
    });
    return out;
  };
}

function sameField(a: FieldRef, b: FieldRef): boolean {
  if (a.kind === 'document' && b.kind === 'document') {
    return a.document === b.document && a.path.length === b.path.length && a.path.every((s, i) => s === b.path[i]);
  }
  return a.kind === b.kind && a.kind !== 'document' && b.kind !== 'document' && a.column === b.column;
}

function finish(ctx: QueryContext, sql: string, toPage: (rows: readonly Row[]) => QueryPage): CompiledQuery {
  const { text, values } = ctx.params.finish(sql);
  return { text, values, toPage };
}
