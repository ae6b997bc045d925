import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, test } from 'node:test';
import pg from 'pg';
import { dropSchemas, requirePostgres, skipReason } from '../../../test/support/services.js';
import { EndpointFailed, InvalidEndpointSpec, openEndpoint, type EndpointBatch, type EndpointMessage } from './index.js';

const url = await requirePostgres();
const skip = skipReason('PostgreSQL');
/** Keeps this run's schemas and role apart from any other run on the same server. */
const run = randomBytes(4).toString('hex');
const schemas: string[] = [];
const roles: string[] = [];

after(async () => {
  if (url === undefined) return;
  await dropSchemas(url, schemas);
  await sql(roles.map((r) => `DROP ROLE IF EXISTS "${r}"`).join('; '));
});

/** A schema name for one test, dropped after the run. */
function freshSchema(): string {
  const name = `corral_ep_${run}_${schemas.length + 1}`;
  schemas.push(name);
  return name;
}

/** Only called once the probe found the server, so url is set. */
function serverUrl(): string {
  assert.ok(url !== undefined);
  return url;
}

async function sql<R extends pg.QueryResultRow = Record<string, unknown>>(text: string, values: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: serverUrl() });
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end();
  }
}

function message(sequence: number, extra: Partial<EndpointMessage> = {}): EndpointMessage {
  return {
    partition: '0', sequence, deviceId: 'dev-1', moduleId: '', source: 'telemetry', enqueuedTimeMs: 1_700_000_000_123 + sequence,
    json: JSON.stringify({ sequence, body: { t: 21.5 } }), ...extra,
  };
}

async function failure(work: Promise<unknown>): Promise<EndpointFailed> {
  const err = await work.then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof EndpointFailed, `expected EndpointFailed, got ${String(err)}`);
  return err;
}

test('the first delivery creates schema and table; each message becomes one row', { skip }, async () => {
  const schema = freshSchema();
  const endpoint = openEndpoint('pg', { type: 'postgres', url: serverUrl(), schema, table: 'Events' });
  try {
    const batch: EndpointBatch = { route: 'store', messages: [message(1), message(2, { deviceId: 'dev-2', moduleId: 'm', source: 'twinChange' })] };
    await endpoint.deliver(batch);
    const columns = await sql<{ column_name: string; data_type: string }>(
      'SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position', [schema, 'Events']);
    assert.deepEqual(columns.map((c) => `${c.column_name} ${c.data_type}`), [
      'partition text', 'sequence bigint', 'route text', 'device_id text', 'module_id text', 'source text',
      'enqueued_time timestamp with time zone', 'message jsonb',
    ]);
    const key = await sql<{ columns: string }>(`SELECT string_agg(a.attname, ',' ORDER BY k.ord) AS columns
      FROM pg_index i CROSS JOIN unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
      JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
      WHERE i.indrelid = $1::regclass AND i.indisprimary`, [`"${schema}"."Events"`]);
    assert.equal(key[0].columns, 'partition,sequence,route');
    const rows = await sql(`SELECT partition, sequence, route, device_id, module_id, source, enqueued_time, message
      FROM "${schema}"."Events" ORDER BY sequence`);
    assert.deepEqual(rows, [
      { partition: '0', sequence: '1', route: 'store', device_id: 'dev-1', module_id: '', source: 'telemetry',
        enqueued_time: new Date(1_700_000_000_124), message: { sequence: 1, body: { t: 21.5 } } },
      { partition: '0', sequence: '2', route: 'store', device_id: 'dev-2', module_id: 'm', source: 'twinChange',
        enqueued_time: new Date(1_700_000_000_125), message: { sequence: 2, body: { t: 21.5 } } },
    ]);
  } finally {
    await endpoint.close();
  }
});

test('a redelivery inserts nothing; the same record on another route is another row', { skip }, async () => {
  const schema = freshSchema();
  const endpoint = openEndpoint('pg', { type: 'postgres', url: serverUrl(), schema, table: 'events' });
  try {
    const batch: EndpointBatch = { route: 'a', messages: [message(1), message(2)] };
    await endpoint.deliver(batch);
    await endpoint.deliver(batch);
    await endpoint.deliver({ route: 'a', messages: [message(2), message(3), message(3)] });
    await endpoint.deliver({ route: 'b', messages: [message(1)] });
    const rows = await sql<{ route: string; sequence: string }>(`SELECT route, sequence FROM "${schema}".events ORDER BY route, sequence`);
    assert.deepEqual(rows.map((r) => `${r.route}:${r.sequence}`), ['a:1', 'a:2', 'a:3', 'b:1']);
  } finally {
    await endpoint.close();
  }
});

test('endpoints of several nodes creating one table at once all deliver', { skip }, async () => {
  const schema = freshSchema();
  const endpoints = [1, 2, 3, 4].map((n) => openEndpoint(`pg-${n}`, { type: 'postgres', url: serverUrl(), schema, table: 'events' }));
  try {
    await Promise.all(endpoints.map((e, i) => e.deliver({ route: 'r', messages: [message(i + 1)] })));
    const rows = await sql(`SELECT 1 FROM "${schema}".events`);
    assert.equal(rows.length, 4);
  } finally {
    await Promise.all(endpoints.map((e) => e.close()));
  }
});

test('table and schema names that are not plain identifiers are refused when the endpoint is made', () => {
  const bad: Array<{ table: string; schema?: string; field: string }> = [
    { table: 'a-b', field: 'table' },
    { table: 'x"; DROP TABLE y; --', field: 'table' },
    { table: '', field: 'table' },
    { table: '1abc', field: 'table' },
    { table: 'a'.repeat(64), field: 'table' },
    { table: 'ok', schema: 'pub.lic', field: 'schema' },
  ];
  for (const { table, schema, field } of bad) {
    const spec = schema === undefined ? { type: 'postgres' as const, url: 'postgres://h/db', table } : { type: 'postgres' as const, url: 'postgres://h/db', table, schema };
    assert.throws(() => openEndpoint('pg', spec), (err: unknown) => err instanceof InvalidEndpointSpec && err.field === field, JSON.stringify(spec));
  }
  assert.doesNotThrow(() => void openEndpoint('pg', { type: 'postgres', url: 'postgres://h/db', table: 'a'.repeat(63), schema: '_x1' }).close());
});

test('a message that is not JSON fails, not retryable', { skip }, async () => {
  const endpoint = openEndpoint('pg', { type: 'postgres', url: serverUrl(), schema: freshSchema(), table: 'events' });
  try {
    const err = await failure(endpoint.deliver({ route: 'r', messages: [message(1, { json: '{not json' })] }));
    assert.equal(err.retryable, false);
    assert.match(err.message, /SQLSTATE 22P02/);
  } finally {
    await endpoint.close();
  }
});

test('permission denied is not retryable', { skip }, async (t) => {
  const schema = freshSchema();
  const role = `corral_ep_${run}_writer`;
  await sql(`CREATE SCHEMA "${schema}"`);
  try {
    await sql(`CREATE ROLE "${role}" LOGIN`);
  } catch (err) {
    // A test user without CREATEROLE cannot make the unprivileged writer this needs.
    if (err instanceof pg.DatabaseError && err.code === '42501') return t.skip(`cannot create a role: ${err.message}`);
    throw err;
  }
  roles.push(role);
  const asRole = new URL(serverUrl());
  asRole.username = role;
  const endpoint = openEndpoint('pg', { type: 'postgres', url: asRole.toString(), schema, table: 'events' });
  try {
    const err = await failure(endpoint.deliver({ route: 'r', messages: [message(1)] }));
    assert.equal(err.retryable, false);
    assert.match(err.message, /SQLSTATE 42501/);
  } finally {
    await endpoint.close();
  }
});

test('an unreachable server is a retryable failure without the password in the message', async () => {
  const endpoint = openEndpoint('pg', { type: 'postgres', url: 'postgres://corral:s3cret@127.0.0.1:1/test', table: 'events' });
  try {
    const err = await failure(endpoint.deliver({ route: 'r', messages: [message(1)] }));
    assert.equal(err.retryable, true);
    assert.doesNotMatch(err.message, /s3cret/);
  } finally {
    await endpoint.close();
  }
});
