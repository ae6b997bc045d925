import { randomBytes } from 'node:crypto';
import { after, test } from 'node:test';
import pg from 'pg';
import { requirePostgres, skipReason } from '../support/services.js';
import { fleetSuite } from './fleet-suite.js';

// The same SDK suite as on SQLite, with the hub on PostgreSQL in a schema of its own.
const url = await requirePostgres();
const schema = `e2e_${randomBytes(5).toString('hex')}`;

fleetSuite({
  test, address: '127.0.0.19', skip: skipReason('PostgreSQL'),
  storeArgs: () => ['--store', 'postgres', '--postgres-url', url ?? '', '--postgres-schema', schema],
});

after(async () => {
  if (!url) return;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.end();
});
