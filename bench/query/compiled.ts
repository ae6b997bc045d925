import { parseQuery } from '../../src/core/query/index.js';
import type { Store } from '../../src/ports/store/index.js';
import { PostgresStore } from '../../src/ports/store/postgres/index.js';
import type { QueryPage } from '../../src/ports/store/query.js';
import { SqliteStore } from '../../src/ports/store/sqlite/index.js';
import type { BenchStore } from '../support/hub.js';

/**
 * The hub's own query path without HTTP, TLS or JSON: the text parsed by core/query's `parseQuery` and the plan run
 * by the Store's `query.run`, in this process, on the hub's database (its SQLite file or its PostgreSQL schema).
 * Timed against the hand-written SQL, this is the like-for-like figure: the same layer on both sides.
 */

export interface CompiledQueries {
  /** Parses `text` (each call: the hub parses every request's text too) and runs its first page. */
  run(text: string, limit: number): Promise<QueryPage>;
  close(): Promise<void>;
}

/** Opens the hub's database as a second Store in this process (SQLite: the hub's `corral.db`). */
export async function openCompiled(store: BenchStore, sqliteFile: string): Promise<CompiledQueries> {
  const opened: Store = store.kind === 'sqlite'
    ? SqliteStore.open(sqliteFile)
    : await PostgresStore.connect({ url: store.url, schema: store.schema, poolSize: 1 });
  return {
    run: (text, limit) => opened.query.run(parseQuery(text), { limit }),
    close: () => opened.close(),
  };
}
