import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, test } from 'node:test';
import pg from 'pg';
import { dropSchemas, requirePostgres, skipReason } from '../../../../test/support/services.js';
import { storeContract } from '../contract.js';
import { queryContract } from '../contract-query.js';
import { PostgresStore } from './index.js';
import { POSTGRES_MIGRATIONS } from './migrations.js';

const url = await requirePostgres();
const skip = skipReason('PostgreSQL');
const schemas: string[] = [];

/** A schema name no other test uses; dropped after the file's tests. */
function freshSchema(): string {
  const schema = `t_${randomBytes(6).toString('hex')}`;
  schemas.push(schema);
  return schema;
}

/** Only called once the probe found the server, so url is set. */
function serverUrl(): string {
  assert.ok(url !== undefined);
  return url;
}

storeContract({
  test,
  skip,
  make: async () => {
    const store = await PostgresStore.connect({ url: serverUrl(), schema: freshSchema(), poolSize: 4 });
    await store.migrate();
    return store;
  },
});

queryContract({
  test,
  skip,
  make: async () => {
    const schema = freshSchema();
    const store = await PostgresStore.connect({ url: serverUrl(), schema, poolSize: 4 });
    await store.migrate();
    const client = new pg.Client({ connectionString: serverUrl(), options: `-c search_path=${schema}` });
    await client.connect();
    return {
      store,
      exec: async (sql) => { await client.query(sql); },
      close: async () => {
        await client.end();
        await store.close();
      },
    };
  },
});

test('several nodes connecting and migrating one new schema at once all succeed, each migration applied once', { skip }, async () => {
  const schema = freshSchema();
  const stores = await Promise.all(Array.from({ length: 4 }, () => PostgresStore.connect({ url: serverUrl(), schema, poolSize: 2 })));
  try {
    await Promise.all(stores.map((s) => s.migrate()));
    const client = new pg.Client({ connectionString: serverUrl() });
    await client.connect();
    try {
      const { rows } = await client.query<{ version: number }>(`SELECT version FROM "${schema}".schema_migrations ORDER BY version`);
      assert.deepEqual(rows.map((r) => r.version), POSTGRES_MIGRATIONS.map((m) => m.version));
    } finally {
      await client.end();
    }
  } finally {
    await Promise.all(stores.map((s) => s.close()));
  }
});

test('connect refuses a schema name that is not a plain identifier', { skip }, async () => {
  await assert.rejects(PostgresStore.connect({ url: serverUrl(), schema: 'x; DROP TABLE y' }), /not a plain identifier/);
});

after(async () => {
  if (url !== undefined) await dropSchemas(url, schemas);
});
