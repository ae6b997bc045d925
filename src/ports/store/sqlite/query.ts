import type Database from 'better-sqlite3';
import type {
  QueryDocument, QueryExpr, QueryIndexRecord, QueryPage, QueryPageOptions, QueryPlan, QueryStore, ScalarValue, TwinDocument,
} from '../query.js';
import { appendDeviceCondition, compileQuery } from '../sql/query-compile.js';
import {
  JSON_TYPES, SQL_OPS, TYPE_RANKS, declaredIndexPath, queryIndexName, sqlString,
  type DocPath, type JsonType, type QueryDialect, type QueryParams,
} from '../sql/query-dialect.js';

type Db = Database.Database;
type Row = Record<string, unknown>;

/** json_type()'s names for each JSON type. */
const SQLITE_TYPES: Readonly<Record<JsonType, readonly string[]>> = {
  null: ['null'], boolean: ['true', 'false'], number: ['integer', 'real'], string: ['text'], array: ['array'], object: ['object'],
};

/**
 * `'$."a"."b"'`: every key quoted, so a key with a dot or a bracket stays one key; `\` and `"` escaped for the
 * path, `'` for SQL. The text must be exactly what a declared index was built with for SQLite to match them.
 */
function jsonPath(doc: DocPath): string {
  return sqlString(`$${doc.path.map((s) => `."${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`).join('')}`);
}

const extract = (doc: DocPath): string => `json_extract(${doc.column}, ${jsonPath(doc)})`;
const typeOf = (doc: DocPath): string => `json_type(${doc.column}, ${jsonPath(doc)})`;

/**
 * SQLite's spelling. json_extract gives native values (booleans 1/0; JSON null and a missing key both NULL), so
 * every document read is paired with a json_type() test; a comparison with a literal stays
 * `json_extract(c, p) <op> ?`, the very expression a declared index holds, with the type test as its own term.
 */
export const SQLITE_QUERY_DIALECT: QueryDialect = {
  placeholders: 'question',
  bindScalar: (params, value) => params.add(typeof value === 'boolean' ? Number(value) : value),
  trueSql: '1',
  falseSql: '0',
  boolToNumber: (sql) => sql,
  intColumnToBool: (sql) => sql,
  numberColumn: (sql) => sql,
  docTypeIn(doc, types) {
    if (types.length === JSON_TYPES.length) return `${typeOf(doc)} IS NOT NULL`;
    const names = types.flatMap((t) => SQLITE_TYPES[t]).map(sqlString);
    return names.length === 1 ? `${typeOf(doc)} = ${names[0]}` : `${typeOf(doc)} IN (${names.join(', ')})`;
  },
  docValue: (doc) => extract(doc),
  compareDocLiteral: () => undefined,
  docInLiterals: () => undefined,
  arrayContains: (doc, value, params) =>
    `EXISTS (SELECT 1 FROM json_each(${doc.column}, ${jsonPath(doc)}) WHERE ${elementIs(value, params)})`,
  compareText: (left, op, right) => `${left} ${SQL_OPS[op]} ${right}`,
  arithmetic(op, left, right) {
    // `/` on two integers would truncate; mod() is fmod(), the remainder JavaScript's `%` gives. NULL for a zero divisor.
    if (op === '/') return `(CAST(${left} AS REAL) / NULLIF(${right}, 0))`;
    if (op === '%') return `mod(${left}, ${right})`;
    return `(${left} ${op} ${right})`;
  },
  startsWith: (text, prefix) => `substr(${text}, 1, length(${prefix})) = ${prefix}`,
  endsWith: (text, suffix) => `(length(${text}) >= length(${suffix}) AND substr(${text}, length(${text}) - length(${suffix}) + 1) = ${suffix})`,
  contains: (text, part) => `instr(${text}, ${part}) > 0`,
  lower: (text) => `lower(${text})`,
  upper: (text) => `upper(${text})`,
  length: (text) => `length(${text})`,
  sortableText: (sql) => sql,
  docSortParts(doc) {
    const ranks = JSON_TYPES.flatMap((t) => SQLITE_TYPES[t].map((name) => `WHEN '${name}' THEN ${TYPE_RANKS[t]}`));
    return {
      rank: `CASE ${typeOf(doc)} ${ranks.join(' ')} ELSE 0 END`,
      number: `CASE ${typeOf(doc)} WHEN 'true' THEN 1 WHEN 'false' THEN 0 WHEN 'integer' THEN ${extract(doc)} WHEN 'real' THEN ${extract(doc)} ELSE 0 END`,
      text: `CASE WHEN ${typeOf(doc)} IN ('text', 'array', 'object') THEN ${extract(doc)} ELSE '' END`,
    };
  },
  docGroupTerms: (doc) => [extract(doc), typeOf(doc)],
  indexTerms: (doc) => `${extract(doc)}, ${typeOf(doc)}, module_id`,
};

/** json_each's row is the element: its type by json_type()'s names, then its value. */
function elementIs(value: ScalarValue, params: QueryParams): string {
  if (value === null) return `type = 'null'`;
  if (typeof value === 'boolean') return `type = ${params.add(String(value))}`;
  return `type IN (${(typeof value === 'number' ? SQLITE_TYPES.number : SQLITE_TYPES.string).map(sqlString).join(', ')}) AND value = ${params.add(value)}`;
}

/**
 * A `devices` condition as a WHERE fragment over `identities` for job expansion: its values are appended to
 * `values` in the order of its `?` placeholders. (module_id = '' is part of the fragment.)
 */
export function sqliteDeviceCondition(where: QueryExpr, values: unknown[]): string {
  return appendDeviceCondition(SQLITE_QUERY_DIALECT, where, values);
}

/** Prepared statements kept per SQL text; a plan's shape, not its values, makes the text. */
const STATEMENT_CACHE_SIZE = 256;

/** QueryStore on SQLite; better-sqlite3 is synchronous, so each call reads one consistent snapshot. */
export class SqliteQueryStore implements QueryStore {
  private readonly statements = new Map<string, Database.Statement>();

  constructor(private readonly db: Db) {}

  async run(plan: QueryPlan, page: QueryPageOptions): Promise<QueryPage> {
    const query = compileQuery(SQLITE_QUERY_DIALECT, plan, page);
    return query.toPage(this.prepare(query.text).all(...query.values) as Row[]);
  }

  /** EXPLAIN QUERY PLAN of the statement `run` would execute, one line per step (for operators and tests). */
  explain(plan: QueryPlan, page: QueryPageOptions): string[] {
    const query = compileQuery(SQLITE_QUERY_DIALECT, plan, page);
    const rows = this.db.prepare(`EXPLAIN QUERY PLAN ${query.text}`).all(...query.values) as { detail: string }[];
    return rows.map((r) => r.detail);
  }

  async listIndexes(): Promise<QueryIndexRecord[]> {
    const rows = this.db.prepare('SELECT document, path, created_time FROM query_indexes ORDER BY created_time, document, path').all() as Row[];
    return rows.map((r) => ({ document: r.document as TwinDocument, path: JSON.parse(r.path as string) as string[], createdTime: r.created_time as string }));
  }

  async addIndex(document: QueryDocument, path: readonly string[], createdTime: string): Promise<boolean> {
    const doc = declaredIndexPath(document, path);
    return this.db.transaction(() => {
      const added = this.db.prepare('INSERT INTO query_indexes (document, path, created_time) VALUES (?, ?, ?) ON CONFLICT DO NOTHING')
        .run(document, JSON.stringify(path), createdTime).changes === 1;
      // The type test rides in the index too: the guard of a typed equality and a typed GROUP BY read only the index.
      this.db.exec(`CREATE INDEX IF NOT EXISTS ${queryIndexName(document, path)} ON identities (${SQLITE_QUERY_DIALECT.indexTerms(doc)})`);
      return added;
    }).immediate();
  }

  async removeIndex(document: QueryDocument, path: readonly string[]): Promise<boolean> {
    declaredIndexPath(document, path);
    return this.db.transaction(() => {
      const removed = this.db.prepare('DELETE FROM query_indexes WHERE document = ? AND path = ?').run(document, JSON.stringify(path)).changes === 1;
      this.db.exec(`DROP INDEX IF EXISTS ${queryIndexName(document, path)}`);
      return removed;
    }).immediate();
  }

  private prepare(sql: string): Database.Statement {
    let stmt = this.statements.get(sql);
    if (stmt === undefined) {
      if (this.statements.size >= STATEMENT_CACHE_SIZE) this.statements.clear();
      this.statements.set(sql, stmt = this.db.prepare(sql));
    }
    return stmt;
  }
}
