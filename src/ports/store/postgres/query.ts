import type pg from 'pg';
import type {
  QueryDocument, QueryExpr, QueryIndexRecord, QueryPage, QueryPageOptions, QueryPlan, QueryStore, ScalarValue, TwinDocument,
} from '../query.js';
import { appendDeviceCondition, compileQuery } from '../sql/query-compile.js';
import {
  FALSE, JSON_TYPES, SQL_OPS, TYPE_RANKS, declaredIndexPath, queryIndexName, sqlString,
  type DocPath, type QueryDialect, type QueryParams,
} from '../sql/query-dialect.js';
import { scalarType } from '../sql/query-values.js';

type Row = Record<string, unknown>;

/**
 * `(tags -> 'a' -> 'b')`: the jsonb at the path, NULL where it is missing; the expression declared indexes hold.
 * Bracketed, so a cast or an operator after it applies to the whole path.
 */
function docRef(doc: DocPath): string {
  return doc.path.length === 0 ? doc.column : `(${jsonbPath(doc)})`;
}

function jsonbPath(doc: DocPath): string {
  return [doc.column, ...doc.path.map(sqlString)].join(' -> ');
}

const typeOf = (doc: DocPath): string => `jsonb_typeof(${jsonbPath(doc)})`;

const jsonb = (params: QueryParams, value: unknown): string => `${params.add(JSON.stringify(value))}::jsonb`;

export interface PostgresDialectOptions {
  /**
   * jsonb orders strings by the database's default collation: only when that is bytewise (C, POSIX, C.UTF-8) may a
   * string range on a document path compare jsonb (index-served) and still agree with SQLite's order.
   */
  readonly jsonbStringsBytewise: boolean;
}

/**
 * PostgreSQL's spelling. Document reads stay jsonb (`col -> 'a'`) where a literal is compared, so a declared index
 * on that expression serves the query: jsonb equality holds only within one JSON type, so `=` needs no type guard;
 * other comparisons add jsonb_typeof. Native values (float8, text, boolean) are read through CASE, which PostgreSQL
 * evaluates in order, so a cast never meets a value of another type.
 */
export function postgresQueryDialect({ jsonbStringsBytewise }: PostgresDialectOptions): QueryDialect {
  return {
    placeholders: 'dollar',
    bindScalar(params, value) {
      const type = typeof value === 'string' ? 'text' : typeof value === 'number' ? 'float8' : 'boolean';
      return `${params.add(value)}::${type}`;
    },
    trueSql: 'TRUE',
    falseSql: 'FALSE',
    boolToNumber: (sql) => `(${sql})::int`,
    intColumnToBool: (sql) => `(${sql} = 1)`,
    numberColumn: (sql) => `${sql}::float8`,
    docTypeIn(doc, types) {
      if (types.length === JSON_TYPES.length) return `${docRef(doc)} IS NOT NULL`;
      const names = types.map(sqlString);
      return `${typeOf(doc)} ${names.length === 1 ? `= ${names[0]}` : `IN (${names.join(', ')})`}`;
    },
    docValue(doc, type) {
      const r = docRef(doc);
      if (type === 'number') return `CASE WHEN ${typeOf(doc)} = 'number' THEN ${r}::float8 END`;
      if (type === 'boolean') return `CASE WHEN ${typeOf(doc)} = 'boolean' THEN ${r}::boolean END`;
      return type === 'string' ? `(${r} #>> '{}')` : `${r}::text`;
    },
    compareDocLiteral(doc, op, value, params) {
      const r = docRef(doc);
      const type = scalarType(value);
      if (type === 'null') return op === '=' || op === '<=' || op === '>=' ? `${r} = ${jsonb(params, value)}` : FALSE;
      if (op === '=') return `${r} = ${jsonb(params, value)}`;
      if (type === 'string' && op !== '!=' && !jsonbStringsBytewise) return undefined;
      return `${r} ${SQL_OPS[op]} ${jsonb(params, value)} AND ${typeOf(doc)} = '${type}'`;
    },
    docInLiterals(doc, values, negated, params) {
      const r = docRef(doc);
      const list = values.map((v) => jsonb(params, v)).join(', ');
      if (!negated) return `${r} IN (${list})`;
      const types = [...new Set(values.map(scalarType))];
      if (types.length !== 1 || types[0] === 'null') return FALSE;
      return `${r} NOT IN (${list}) AND ${typeOf(doc)} = '${types[0]}'`;
    },
    // Containment of a one-element array: an element equal in type and value (1 and 1.0 are one number).
    arrayContains: (doc, value: ScalarValue, params) => `${docRef(doc)} @> ${jsonb(params, [value])}`,
    compareText: (left, op, right) => (op === '=' || op === '!=' ? `${left} ${SQL_OPS[op]} ${right}` : `(${left}) COLLATE "C" ${SQL_OPS[op]} ${right}`),
    arithmetic(op, left, right) {
      if (op === '/') return `(${left} / NULLIF(${right}, 0))`;
      // JavaScript's `%`: the remainder of a division truncated toward zero.
      if (op === '%') return `(${left} - ${right} * trunc(${left} / NULLIF(${right}, 0)))`;
      return `(${left} ${op} ${right})`;
    },
    startsWith: (text, prefix) => `starts_with(${text}, ${prefix})`,
    endsWith: (text, suffix) => `right(${text}, length(${suffix})) = ${suffix}`,
    contains: (text, part) => `strpos(${text}, ${part}) > 0`,
    // Under "C", lower() and upper() map ASCII letters only, as SQLite's built-ins do.
    lower: (text) => `lower((${text}) COLLATE "C")`,
    upper: (text) => `upper((${text}) COLLATE "C")`,
    length: (text) => `length(${text})`,
    sortableText: (sql) => `(${sql}) COLLATE "C"`,
    docSortParts(doc) {
      const r = docRef(doc);
      const ranks = JSON_TYPES.map((t) => `WHEN '${t}' THEN ${TYPE_RANKS[t]}`);
      return {
        rank: `CASE ${typeOf(doc)} ${ranks.join(' ')} ELSE 0 END`,
        number: `CASE ${typeOf(doc)} WHEN 'boolean' THEN ${r}::boolean::int WHEN 'number' THEN ${r}::float8 ELSE 0 END`,
        text: `(CASE ${typeOf(doc)} WHEN 'string' THEN ${r} #>> '{}' WHEN 'array' THEN ${r}::text WHEN 'object' THEN ${r}::text ELSE '' END) COLLATE "C"`,
      };
    },
    docGroupTerms: (doc) => [docRef(doc)],
    indexTerms: (doc) => `${docRef(doc)}, module_id`,
  };
}

/**
 * A `devices` condition as a WHERE fragment over `identities` for job expansion: its values are appended to
 * `values`, placeholders numbered from values.length + 1. (module_id = '' is part of the fragment.) It assumes a
 * collation that is not bytewise, which is always correct; only a string range on a tag then reads no index.
 */
export function postgresDeviceCondition(where: QueryExpr, values: unknown[]): string {
  return appendDeviceCondition(postgresQueryDialect({ jsonbStringsBytewise: false }), where, values);
}

/** Whether the database's default collation orders strings bytewise (libc C, POSIX or C.UTF-8). */
async function jsonbStringsBytewise(pool: pg.Pool): Promise<boolean> {
  // to_jsonb(d) reads datlocprovider where it exists (PostgreSQL 15+) without failing where it does not.
  const { rows } = await pool.query<{ provider: string | null; collate: string }>(`SELECT to_jsonb(d) ->> 'datlocprovider' AS provider,
      datcollate AS collate FROM pg_database d WHERE datname = current_database()`);
  const db = rows[0];
  return db !== undefined && (db.provider === null || db.provider === 'c') && /^(C|POSIX)(\.utf-?8)?$/i.test(db.collate);
}

/**
 * QueryStore on PostgreSQL. Declared indexes are built and dropped CONCURRENTLY, so writes to the registry go on
 * while a million-row index builds; CONCURRENTLY cannot run in a transaction, so the declaration row and the index
 * are two steps: a failed build is dropped again and its declaration taken back.
 */
export class PostgresQueryStore implements QueryStore {
  private dialect?: Promise<QueryDialect>;

  constructor(private readonly pool: pg.Pool) {}

  async run(plan: QueryPlan, page: QueryPageOptions): Promise<QueryPage> {
    const query = compileQuery(await this.dialectOf(), plan, page);
    const { rows } = await this.pool.query<Row>(query.text, [...query.values]);
    return query.toPage(rows);
  }

  /** EXPLAIN of the statement `run` would execute, one line per plan node (for operators and tests). */
  async explain(plan: QueryPlan, page: QueryPageOptions): Promise<string[]> {
    const query = compileQuery(await this.dialectOf(), plan, page);
    const { rows } = await this.pool.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${query.text}`, [...query.values]);
    return rows.map((r) => r['QUERY PLAN']);
  }

  async listIndexes(): Promise<QueryIndexRecord[]> {
    const { rows } = await this.pool.query<Row>('SELECT document, path, created_time FROM query_indexes ORDER BY created_time, document, path');
    return rows.map((r) => ({ document: r.document as TwinDocument, path: r.path as string[], createdTime: r.created_time as string }));
  }

  async addIndex(document: QueryDocument, path: readonly string[], createdTime: string): Promise<boolean> {
    const doc = declaredIndexPath(document, path);
    const name = queryIndexName(document, path);
    const inserted = await this.pool.query(`INSERT INTO query_indexes (document, path, created_time) VALUES ($1, $2::jsonb, $3)
      ON CONFLICT DO NOTHING`, [document, JSON.stringify(path), createdTime]);
    const added = inserted.rowCount === 1;
    try {
      await this.pool.query(`CREATE INDEX CONCURRENTLY IF NOT EXISTS ${name} ON identities (${docRef(doc)}, module_id)`);
    } catch (err) {
      // A failed concurrent build leaves an invalid index behind, which IF NOT EXISTS would then keep forever.
      await this.pool.query(`DROP INDEX CONCURRENTLY IF EXISTS ${name}`).catch(() => undefined);
      if (added) await this.pool.query('DELETE FROM query_indexes WHERE document = $1 AND path = $2::jsonb', [document, JSON.stringify(path)]);
      throw err;
    }
    // The planner needs statistics on the new expression (its values' spread) to choose the index, and the
    // per-row costs of a million rows to choose a parallel scan for GROUP BY; ANALYZE samples, it does not scan all.
    await this.pool.query('ANALYZE identities');
    return added;
  }

  async removeIndex(document: QueryDocument, path: readonly string[]): Promise<boolean> {
    declaredIndexPath(document, path);
    const deleted = await this.pool.query('DELETE FROM query_indexes WHERE document = $1 AND path = $2::jsonb', [document, JSON.stringify(path)]);
    await this.pool.query(`DROP INDEX CONCURRENTLY IF EXISTS ${queryIndexName(document, path)}`);
    return deleted.rowCount === 1;
  }

  /** The dialect, once the database's collation is known (asked on first use; asked again if that failed). */
  private dialectOf(): Promise<QueryDialect> {
    this.dialect ??= jsonbStringsBytewise(this.pool).then(
      (bytewise) => postgresQueryDialect({ jsonbStringsBytewise: bytewise }),
      (err: unknown) => {
        this.dialect = undefined;
        throw err;
      },
    );
    return this.dialect;
  }
}
