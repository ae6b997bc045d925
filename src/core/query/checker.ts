/**
 * Syntax tree → checked QueryPlan: paths resolved against the collection, functions and their arity checked, and
 * IoT Hub's select rules applied (aggregates with GROUP BY, aliases), so a store never sees a plan it cannot run.
 */

import { QuerySyntaxError } from '../errors/index.js';
import type {
  Aggregate, FieldRef, OrderKey, QueryCollection, QueryExpr, QueryFunction, QueryPlan, QuerySelect, SelectItem,
} from '../../ports/store/query.js';
import { canonicalPath, pathText, resolvePath, type ResolvedPath } from './attributes.js';
import type { RawExpr, RawPath, RawQuery, RawSelect, RawSelectItem } from './syntax.js';

const FUNCTION_ARITY: Readonly<Record<QueryFunction, number>> = {
  IS_DEFINED: 1, IS_NULL: 1, IS_BOOL: 1, IS_NUMBER: 1, IS_STRING: 1, IS_OBJECT: 1, IS_ARRAY: 1, IS_PRIMITIVE: 1,
  LOWER: 1, UPPER: 1, LENGTH: 1, STARTSWITH: 2, ENDSWITH: 2, CONTAINS: 2, ARRAY_CONTAINS: 2,
};
/** Spellings IoT Hub's routing queries use for the same functions. */
const FUNCTION_ALIASES: Readonly<Record<string, QueryFunction>> = { STARTS_WITH: 'STARTSWITH', ENDS_WITH: 'ENDSWITH' };
const AGGREGATE_NAMES: ReadonlySet<string> = new Set(['COUNT', 'SUM', 'AVG', 'MIN', 'MAX']);

function isQueryFunction(name: string): name is QueryFunction {
  return Object.hasOwn(FUNCTION_ARITY, name);
}

function functionNamed(name: string, position: number): QueryFunction {
  const upper = name.toUpperCase();
  const fn = Object.hasOwn(FUNCTION_ALIASES, upper) ? FUNCTION_ALIASES[upper] : upper;
  if (isQueryFunction(fn)) return fn;
  if (AGGREGATE_NAMES.has(upper)) {
    throw new QuerySyntaxError(position, `${upper} is an aggregate; it belongs in the select list, not in a condition`);
  }
  const known = [...Object.keys(FUNCTION_ARITY), ...Object.keys(FUNCTION_ALIASES)].join(', ');
  throw new QuerySyntaxError(position, `unknown function '${name}'; use one of ${known}`);
}

/** Resolves a path that must be a field (GROUP BY, ORDER BY, an aggregate's argument, ARRAY_CONTAINS). */
function fieldOf(collection: QueryCollection, path: RawPath, role: string): FieldRef {
  const resolved = resolvePath(collection, path);
  if (resolved.kind === 'field') return resolved.field;
  // Only moduleId on devices resolves to a constant: devices have none.
  const name = pathText(path.segments);
  throw new QuerySyntaxError(path.position, `${role} needs a field, but '${name}' has no value in devices (only devices.modules has it)`);
}

function fieldKey(field: FieldRef): string {
  return field.kind === 'document' ? `document:${field.document}:${JSON.stringify(field.path)}` : `${field.kind}:${field.column}`;
}

/** How a checker reads the paths of a condition: a collection's twin or device-job, or a routed message. */
export interface PathResolver<F> {
  /** A path's field, or `undefined` where the path names a property that never exists (moduleId of a device). */
  resolve(path: RawPath): ResolvedPath<F>;
  /** A path that must be a field (ARRAY_CONTAINS' first argument); throws QuerySyntaxError where it is not. */
  field(path: RawPath, role: string): F;
}

function collectionResolver(collection: QueryCollection): PathResolver<FieldRef> {
  return { resolve: (path) => resolvePath(collection, path), field: (path, role) => fieldOf(collection, path, role) };
}

class ExprChecker<F> {
  constructor(private readonly paths: PathResolver<F>) {}

  check(e: RawExpr): QueryExpr<F> {
    switch (e.kind) {
      case 'literal': return { kind: 'literal', value: e.value };
      case 'path': return this.paths.resolve(e.path);
      case 'compare': return { kind: 'compare', op: e.op, left: this.check(e.left), right: this.check(e.right) };
      case 'arithmetic': return { kind: 'arithmetic', op: e.op, left: this.check(e.left), right: this.check(e.right) };
      case 'and':
      case 'or': return { kind: e.kind, left: this.check(e.left), right: this.check(e.right) };
      case 'not': return { kind: 'not', operand: this.check(e.operand) };
      case 'in': return { kind: 'in', negated: e.negated, operand: this.check(e.operand), values: e.values };
      case 'call': return this.call(e.name, e.args, e.position);
    }
  }

  private call(name: string, args: readonly RawExpr[], position: number): QueryExpr<F> {
    const fn = functionNamed(name, position);
    const arity = FUNCTION_ARITY[fn];
    if (args.length !== arity) {
      const wanted = arity === 1 ? '1 argument' : `${arity} arguments`;
      throw new QuerySyntaxError(position, `${fn} takes ${wanted}, found ${args.length}`);
    }
    if (fn === 'ARRAY_CONTAINS') return this.arrayContains(args[0], args[1]);
    return { kind: 'call', fn, args: args.map((a) => this.check(a)) };
  }

  /** ARRAY_CONTAINS(field, literal): the stores test membership in a stored JSON array against one bound value. */
  private arrayContains(array: RawExpr, item: RawExpr): QueryExpr<F> {
    if (array.kind !== 'path') {
      throw new QuerySyntaxError(array.position, 'ARRAY_CONTAINS takes a path as its first argument, such as tags.zones');
    }
    if (item.kind !== 'literal' || item.value === undefined) {
      throw new QuerySyntaxError(item.position, 'ARRAY_CONTAINS takes a string, number, true, false or null as its second argument');
    }
    const field = this.paths.field(array.path, 'ARRAY_CONTAINS');
    return { kind: 'call', fn: 'ARRAY_CONTAINS', args: [{ kind: 'field', field }, { kind: 'literal', value: item.value }] };
  }
}

/** Checks a condition over a collection; throws QuerySyntaxError. */
export function checkCondition(raw: RawExpr, collection: QueryCollection): QueryExpr {
  return new ExprChecker(collectionResolver(collection)).check(raw);
}

/** Checks a condition whose paths `paths` reads (a routing condition's message fields); throws QuerySyntaxError. */
export function checkConditionWith<F>(raw: RawExpr, paths: PathResolver<F>): QueryExpr<F> {
  return new ExprChecker(paths).check(raw);
}

function uniqueFields(collection: QueryCollection, paths: readonly RawPath[], clause: string): FieldRef[] {
  const seen = new Set<string>();
  return paths.map((path) => {
    const field = fieldOf(collection, path, clause);
    const key = fieldKey(field);
    if (seen.has(key)) throw new QuerySyntaxError(path.position, `'${pathText(path.segments)}' appears twice in ${clause}`);
    seen.add(key);
    return field;
  });
}

function lastSegment(segments: readonly string[]): string {
  return segments[segments.length - 1];
}

class SelectChecker {
  private unnamedAggregates = 0;

  constructor(private readonly collection: QueryCollection, private readonly groupBy: readonly FieldRef[] | undefined) {}

  select(raw: RawSelect): QuerySelect {
    if (raw.kind === 'all') {
      if (this.groupBy) {
        throw new QuerySyntaxError(raw.position, "SELECT * cannot be used with GROUP BY; list the grouped paths and aggregates such as COUNT()");
      }
      return { kind: 'all' };
    }
    const isAggregate = this.groupBy !== undefined || raw.items.some((item) => item.kind === 'aggregate');
    const items = isAggregate
      ? raw.items.map((item) => this.aggregateItem(item))
      : raw.items.flatMap((item) => (item.kind === 'path' ? [this.pathItem(item)] : []));
    checkAliasesUnique(items, raw.items);
    return { kind: isAggregate ? 'aggregate' : 'paths', items };
  }

  /** A projection may read any twin path (`properties.reported`), not only the fields a condition can. */
  private pathItem(item: Extract<RawSelectItem, { kind: 'path' }>): SelectItem {
    const path = canonicalPath(this.collection, item.path);
    return { kind: 'path', path, alias: item.alias?.name ?? lastSegment(path) };
  }

  private aggregateItem(item: RawSelectItem): SelectItem {
    if (item.kind === 'aggregate') return this.aggregate(item.aggregate, item.arg, item.alias?.name);
    const field = fieldOf(this.collection, item.path, 'a grouped item');
    const grouped = this.groupBy?.some((g) => fieldKey(g) === fieldKey(field)) ?? false;
    if (!grouped) {
      throw new QuerySyntaxError(item.position,
        `'${pathText(item.path.segments)}' is neither in GROUP BY nor inside an aggregate; add it to GROUP BY or wrap it in COUNT, SUM, AVG, MIN or MAX`);
    }
    return { kind: 'group', field, alias: item.alias?.name ?? lastSegment(canonicalPath(this.collection, item.path)) };
  }

  private aggregate(aggregate: Aggregate, arg: RawPath | undefined, alias: string | undefined): SelectItem {
    // Cosmos DB names unnamed expressions $1, $2, … in the order they appear.
    const name = alias ?? `$${++this.unnamedAggregates}`;
    if (arg === undefined) return { kind: 'aggregate', aggregate, alias: name };
    const field = fieldOf(this.collection, arg, aggregate.toUpperCase());
    return { kind: 'aggregate', aggregate, field, alias: name };
  }
}

function checkAliasesUnique(items: readonly SelectItem[], raws: readonly RawSelectItem[]): void {
  const seen = new Set<string>();
  items.forEach((item, i) => {
    if (seen.has(item.alias)) {
      const raw = raws[i];
      throw new QuerySyntaxError(raw.alias?.position ?? raw.position, `the name '${item.alias}' is used twice in the select list; rename one with AS`);
    }
    seen.add(item.alias);
  });
}

function orderKeys(raw: RawQuery, select: QuerySelect): OrderKey[] | undefined {
  if (raw.orderBy === undefined) return undefined;
  if (select.kind === 'aggregate') {
    throw new QuerySyntaxError(raw.orderByPosition ?? 1, 'ORDER BY cannot be used with aggregates or GROUP BY');
  }
  const keys = raw.orderBy;
  const fields = uniqueFields(raw.collection, keys.map((k) => k.path), 'ORDER BY');
  return keys.map((key, i) => ({ field: fields[i], descending: key.descending }));
}

/** Refuses unknown names in the select list before later clauses are looked at. */
function checkSelectPaths(raw: RawQuery): void {
  if (raw.select.kind === 'all') return;
  for (const item of raw.select.items) {
    const path = item.kind === 'path' ? item.path : item.arg;
    if (path) canonicalPath(raw.collection, path);
  }
}

/** Checks a parsed query into a plan; throws QuerySyntaxError. */
export function checkQuery(raw: RawQuery): QueryPlan {
  // Clause by clause in reading order where possible, so the error reported is the first one in the text.
  checkSelectPaths(raw);
  const where = raw.where && checkCondition(raw.where, raw.collection);
  const groupBy = raw.groupBy && uniqueFields(raw.collection, raw.groupBy, 'GROUP BY');
  const select = new SelectChecker(raw.collection, groupBy).select(raw.select);
  const orderBy = orderKeys(raw, select);
  return {
    collection: raw.collection,
    select,
    ...(where && { where }),
    ...(groupBy && { groupBy }),
    ...(orderBy && { orderBy }),
    ...(raw.top !== undefined && { top: raw.top }),
  };
}
