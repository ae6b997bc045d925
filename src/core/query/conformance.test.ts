import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import pg from 'pg';
import { dropSchemas, requirePostgres, skipReason } from '../../../test/support/services.js';
import { seed, seedTelemetry } from '../../ports/store/contract-query-data.js';
import type { Store } from '../../ports/store/index.js';
import { PostgresStore } from '../../ports/store/postgres/index.js';
import { SqliteStore } from '../../ports/store/sqlite/index.js';
import { ID_CASES, ROW_CASES } from './conformance-cases.js';
import { FleetQueries } from './service.js';

/**
 * Query conformance: every query of conformance-cases.ts returns its rows on both stores, through the whole path
 * (parser, checker, plan compiler, engine, paging, projection).
 */

function idOf(item: unknown): string {
  const t = item as { deviceId: string; moduleId?: string };
  return t.moduleId ? `${t.deviceId}/${t.moduleId}` : t.deviceId;
}

/** Every page of `text`, pages of `pageSize`, through the query service as the REST route runs it. */
async function allItems(queries: FleetQueries, text: string, pageSize: number): Promise<unknown[]> {
  const items: unknown[] = [];
  let continuation: string | undefined;
  do {
    const page = await queries.run(text, { pageSize, continuation });
    items.push(...page.items);
    continuation = page.continuation;
  } while (continuation);
  return items;
}

function conformance(engine: string, make: () => Promise<{ store: Store; exec: (sql: string) => Promise<void>; close: () => Promise<void> }>, skip?: string): void {
  test(`${engine}: every query of the conformance table returns exactly its rows, whole and in pages of 2`, { skip }, async (t) => {
    const fixture = await make();
    try {
      await seed(fixture.store, fixture.exec);
      await seedTelemetry(fixture.store);
      const queries = new FleetQueries({ store: fixture.store });
      for (const [text, ids] of ID_CASES) {
        await t.test(text, async () => {
          assert.deepEqual((await allItems(queries, text, 1000)).map(idOf).sort(), [...ids].sort());
          assert.deepEqual((await allItems(queries, text, 2)).map(idOf).sort(), [...ids].sort());
        });
      }
      for (const [text, rows] of ROW_CASES) {
        await t.test(text, async () => {
          assert.deepEqual(await allItems(queries, text, 1000), rows);
          assert.deepEqual(await allItems(queries, text, 2), rows);
        });
      }
    } finally {
      await fixture.close();
    }
  });
}

conformance('SQLite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'corral-conformance-'));
  const store = SqliteStore.open(join(dir, 'store.db'));
  await store.migrate();
  const db = new Database(join(dir, 'store.db'));
  return {
    store, exec: async (sql) => { db.exec(sql); },
    close: async () => { db.close(); await store.close(); rmSync(dir, { recursive: true, force: true }); },
  };
});

const url = await requirePostgres();
const schema = `t_${randomBytes(6).toString('hex')}`;
conformance('PostgreSQL', async () => {
  const store = await PostgresStore.connect({ url: url ?? '', schema, poolSize: 4 });
  await store.migrate();
  const client = new pg.Client({ connectionString: url, options: `-c search_path=${schema}` });
  await client.connect();
  return { store, exec: async (sql) => { await client.query(sql); }, close: async () => { await client.end(); await store.close(); } };
}, skipReason('PostgreSQL'));

after(async () => {
  if (url) await dropSchemas(url, [schema]);
});
