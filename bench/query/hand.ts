import Database from 'better-sqlite3';
import pg from 'pg';

/**
 * The queries' peer: the same questions written by hand in each engine's SQL, asked of the hub's own database (the
 * SQLite file opened read-only beside the running hub; the PostgreSQL schema through `pg`). Rows come back whole and
 * their twin documents are parsed, as the hub's store does before it can answer.
 *
 * Both engines match an expression index by the expression's form, not its meaning (SQLite: `'$.batch'` is not
 * `'$."batch"'`; PostgreSQL: `#> '{a,b}'` is not `-> 'a' -> 'b'`), so the paths are spelled as the declared indexes
 * spell them, as someone writing SQL against those indexes would. The plans are printed to show they are used.
 */

/** A row of `identities` with its twin documents parsed. */
export type HandRow = Record<string, unknown> & { readonly tags: Record<string, unknown> };

export interface HandPlan {
  /** The engine's plan, one line. */
  readonly text: string;
  /**
   * True when the engine looks the asked value up in an index on the expression; false when it reads every row (or
   * every entry of some other index, such as one on module_id, and filters).
   */
  readonly indexed: boolean;
}

export interface HandSql {
  /** `SELECT * … WHERE module_id = '' AND <tags.batch> = ?`: the batch's devices, documents parsed. */
  batch(tag: string): HandRow[] | Promise<HandRow[]>;
  /** `GROUP BY <reported path>` over devices: value (JSON text) → count. */
  groupBy(): Promise<Map<string, number>>;
  batchPlan(tag: string): Promise<HandPlan>;
  groupByPlan(): Promise<HandPlan>;
  close(): Promise<void>;
}

const DOCUMENTS = ['tags', 'desired', 'reported', 'desired_meta', 'reported_meta'] as const;

/** A JSON path inside a document, every key quoted: ['firmware', 'version'] → '$."firmware"."version"'. */
function sqlitePath(path: readonly string[]): string {
  return `$${path.map((k) => `."${k}"`).join('')}`;
}

/**
 * The hub's SQLite file, read-only, with the hub's page cache size (128 MiB) so both sides have the same room.
 * `groupPath` is the path inside `reported` grouped on.
 */
export function sqliteHand(file: string, groupPath: readonly string[]): HandSql {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  db.pragma('cache_size = -131072');
  const batchSql = `SELECT * FROM identities WHERE module_id = '' AND json_extract(tags, '${sqlitePath(['batch'])}') = ?`;
  const groupSql = `SELECT json_extract(reported, '${sqlitePath(groupPath)}') AS v, COUNT(*) AS n FROM identities WHERE module_id = '' GROUP BY 1`;
  const batch = db.prepare(batchSql);
  const group = db.prepare(groupSql);
  const plan = (sql: string, ...params: unknown[]): HandPlan => {
    const details = (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[]).map((r) => r.detail);
    // `SEARCH identities USING INDEX i (<expr>=?)` looks the value up in an expression index; SCAN reads every entry.
    return { text: details.join('; '), indexed: details.some((d) => d.startsWith('SEARCH identities') && d.includes('<expr>=?')) };
  };
  return {
    batch: (tag) => (batch.all(tag) as Record<string, unknown>[]).map(parseDocuments),
    groupBy: async () => {
      const rows = group.all() as { v: unknown; n: number }[];
      return new Map(rows.map((r) => [JSON.stringify(r.v), Number(r.n)]));
    },
    batchPlan: async (tag) => plan(batchSql, tag),
    groupByPlan: async () => plan(groupSql),
    close: async () => { db.close(); },
  };
}

function parseDocuments(row: Record<string, unknown>): HandRow {
  const out: Record<string, unknown> = { ...row };
  for (const d of DOCUMENTS) out[d] = JSON.parse(row[d] as string);
  return out as HandRow;
}

/** One connection to the hub's PostgreSQL schema (its search_path, as the hub sets it); pg parses jsonb itself. */
export async function postgresHand(url: string, schema: string, groupPath: readonly string[]): Promise<HandSql> {
  const client = new pg.Client({ connectionString: url, options: `-c search_path="${schema}"` });
  await client.connect();
  const batchSql = `SELECT * FROM identities WHERE module_id = '' AND tags -> 'batch' = $1::jsonb`;
  const groupSql = `SELECT ${['reported', ...groupPath.map((k) => `'${k}'`)].join(' -> ')} AS v, COUNT(*) AS n FROM identities WHERE module_id = '' GROUP BY 1`;
  const plan = async (sql: string, params: unknown[]): Promise<HandPlan> => {
    const { rows } = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${sql}`, params);
    const text = rows.map((r) => r['QUERY PLAN'].trim()).join('; ');
    // An index condition on the tags expression; a Filter on it (after an index on module_id, say) reads every row.
    return { text, indexed: /Index Cond: [^;]*tags -> 'batch'/.test(text) };
  };
  return {
    batch: async (tag) => (await client.query<HandRow>(batchSql, [JSON.stringify(tag)])).rows,
    groupBy: async () => {
      const { rows } = await client.query<{ v: unknown; n: string }>(groupSql);
      return new Map(rows.map((r) => [JSON.stringify(r.v), Number(r.n)]));
    },
    batchPlan: (tag) => plan(batchSql, [JSON.stringify(tag)]),
    groupByPlan: () => plan(groupSql, []),
    close: () => client.end(),
  };
}
