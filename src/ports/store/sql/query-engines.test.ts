import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { dropSchemas, requirePostgres, skipReason } from '../../../../test/support/services.js';
import { allIds, doc, seed, seedTelemetry } from '../contract-query-data.js';
import type { Store } from '../index.js';
import { PostgresStore } from '../postgres/index.js';
import { SqliteStore } from '../sqlite/index.js';
import { RANDOM_FIELDS, random, randomPlans } from './query-random.js';
import type { QueryPlan } from '../query.js';

/**
 * Differential: random plans over the contract's registry give the same rows, in the same order and the same pages,
 * on SQLite and PostgreSQL. The generator is seeded, so a failure names a plan that fails again.
 */

const url = await requirePostgres();
const skip = skipReason('PostgreSQL');
const PLANS = 400;
const TELEMETRY_PLANS = 150;

const stores: { sqlite?: Store; postgres?: Store } = {};
const schema = `t_${randomBytes(6).toString('hex')}`;

before(async () => {
  if (url === undefined) return;
  const file = SqliteStore.open(':memory:');
  await file.migrate();
  // Random plans read devices and modules only, so the seed's devices.jobs rows are left out.
  await seed(file, async () => undefined);
  await seedTelemetry(file);
  stores.sqlite = file;
  const postgres = await PostgresStore.connect({ url, schema, poolSize: 2 });
  await postgres.migrate();
  await seed(postgres, async () => undefined);
  await seedTelemetry(postgres);
  stores.postgres = postgres;
});

after(async () => {
  await stores.sqlite?.close();
  await stores.postgres?.close();
  if (url !== undefined) await dropSchemas(url, [schema]);
});

async function sameOnBoth(plans: () => QueryPlan, count: number): Promise<void> {
  const { sqlite, postgres } = stores;
  assert.ok(sqlite && postgres);
  for (let i = 0; i < count; i++) {
    const p = plans();
    const expected = await allIds(sqlite, p);
    const message = `plan ${i}: ${JSON.stringify(p)}`;
    assert.deepEqual(await allIds(postgres, p), expected, message);
    assert.deepEqual(await allIds(sqlite, p, 3), expected, `${message} (SQLite, pages of 3)`);
    assert.deepEqual(await allIds(postgres, p, 3), expected, `${message} (PostgreSQL, pages of 3)`);
  }
}

test(`${PLANS} random plans give the same rows, order and pages on SQLite and PostgreSQL`, { skip }, async () => {
  await sameOnBoth(randomPlans(random(20260101)).plan, PLANS);
});

test(`${TELEMETRY_PLANS} random plans reading telemetry give the same rows, order and pages on both`, { skip }, async () => {
  // No whole objects among the keys: engines order an object by its JSON text, and jsonb writes keys in its own order.
  const fields = [
    ...RANDOM_FIELDS.slice(0, 8), doc('telemetry', 'temp'), doc('telemetry', 'fw'), doc('telemetry', 'on'), doc('telemetry', 'arr'),
    doc('telemetryMeta', 'temp', '$lastUpdated'),
  ];
  await sameOnBoth(randomPlans(random(20260501), fields).plan, TELEMETRY_PLANS);
});
