import { randomBytes } from 'node:crypto';
import { after, test } from 'node:test';
import pg from 'pg';
import { requirePostgres, skipReason } from '../../../../test/support/services.js';
import { storeContract } from '../contract.js';
import { PostgresStore } from './index.js';

const url = await requirePostgres();
const schemas: string[] = [];

storeContract({
  test,
  skip: skipReason('PostgreSQL'),
  make: async () => {
    const schema = `t_${randomBytes(6).toString('hex')}`;
    schemas.push(schema);
    // Only reached when the probe found the server, so url is set.
    const store = await PostgresStore.connect({ url: url!, schema, poolSize: 4 });
    await store.migrate();
    return store;
  },
});

after(async () => {
  if (url === undefined || schemas.length === 0) return;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (const s of schemas) await client.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
  } finally {
    await client.end();
  }
});
