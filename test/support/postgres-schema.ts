import { randomBytes } from 'node:crypto';
import { after } from 'node:test';
import { dropSchemas, requirePostgres, skipReason } from './services.js';

/**
 * A PostgreSQL schema of this test file's own for a hub (`--store postgres`), dropped when the file's tests end.
 * `skip` is set when PostgreSQL is absent and not required (CORRAL_REQUIRE_SERVICES).
 */
export async function postgresHubSchema(): Promise<{ readonly skip?: string; readonly storeArgs: string[] }> {
  const url = await requirePostgres();
  const schema = `e2e_${randomBytes(5).toString('hex')}`;
  after(async () => {
    if (url) await dropSchemas(url, [schema]);
  });
  return { skip: skipReason('PostgreSQL'), storeArgs: ['--store', 'postgres', '--postgres-url', url ?? '', '--postgres-schema', schema] };
}
