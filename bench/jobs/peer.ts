import Database from 'better-sqlite3';
import { performance } from 'node:perf_hooks';
import pg from 'pg';

/**
 * The twin-update job's measured peer: one hand-written UPDATE of every device row, writing what the job writes for
 * a desired patch {bench: n} (core/twins: the property, its `$metadata` stamp, the section's `$metadata` stamp,
 * desired `$version` and twin version each + 1, and the row's rev), on a copy of the hub's database taken after the
 * import and before the job. The copy is made untimed; only the UPDATE (one statement, one transaction) is timed.
 *
 * Also here: the direct check that the job's value reached every device, read from the hub's database with no query
 * language in between.
 */

export interface PeerCopy {
  /** Runs the UPDATE once; resolves with its time in ms. Throws unless it changed `devices` rows. */
  timeUpdate(n: number, devices: number): Promise<number>;
  close(): Promise<void>;
}

const SQLITE_UPDATE = `UPDATE identities SET
    desired = json_set(desired, '$.bench', json(@n)),
    desired_meta = json_set(desired_meta,
      '$."$lastUpdated"', @now, '$."$lastUpdatedVersion"', desired_version + 1,
      '$.bench', json_object('$lastUpdated', @now, '$lastUpdatedVersion', desired_version + 1)),
    desired_version = desired_version + 1, twin_version = twin_version + 1, rev = rev + 1
  WHERE module_id = ''`;

const POSTGRES_UPDATE = `UPDATE identities SET
    desired = jsonb_set(desired, '{bench}', $1::jsonb),
    desired_meta = desired_meta || jsonb_build_object(
      '$lastUpdated', $2::text, '$lastUpdatedVersion', desired_version + 1,
      'bench', jsonb_build_object('$lastUpdated', $2::text, '$lastUpdatedVersion', desired_version + 1)),
    desired_version = desired_version + 1, twin_version = twin_version + 1, rev = rev + 1
  WHERE module_id = ''`;

function changedAll(what: string, changed: number, devices: number): void {
  if (changed !== devices) throw new Error(`${what}: the hand-written UPDATE changed ${changed} rows, expected ${devices}`);
}

/** Copies the hub's live SQLite file page by page (SQLite's online backup; the hub keeps running) to `copy`. */
export async function copySqlite(hubFile: string, copy: string): Promise<void> {
  const db = new Database(hubFile, { readonly: true, fileMustExist: true });
  try {
    await db.backup(copy);
  } finally {
    db.close();
  }
}

/** The copy, opened as the hub opens its file (SqliteStore.open's pragmas). */
export function sqlitePeer(copy: string): PeerCopy {
  const db = new Database(copy, { fileMustExist: true });
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('cache_size = -131072');
  db.pragma('foreign_keys = ON');
  const update = db.prepare(SQLITE_UPDATE);
  return {
    timeUpdate: async (n, devices) => {
      const started = performance.now();
      const { changes } = update.run({ n: JSON.stringify(n), now: new Date().toISOString() }); // as the hub writes it: 42, not 42.0
      const elapsedMs = performance.now() - started;
      changedAll('sqlite', changes, devices);
      return elapsedMs;
    },
    close: async () => { db.close(); },
  };
}

/** Copies the hub schema's identities table (rows, indexes, then VACUUM ANALYZE) into a new schema `peerSchema`. */
export async function copyPostgres(url: string, hubSchema: string, peerSchema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`CREATE SCHEMA "${peerSchema}"`);
    await client.query(`CREATE TABLE "${peerSchema}".identities (LIKE "${hubSchema}".identities INCLUDING ALL)`);
    await client.query(`INSERT INTO "${peerSchema}".identities SELECT * FROM "${hubSchema}".identities`);
    await client.query(`VACUUM ANALYZE "${peerSchema}".identities`);
  } finally {
    await client.end();
  }
}

export async function postgresPeer(url: string, peerSchema: string): Promise<PeerCopy> {
  const client = new pg.Client({ connectionString: url, options: `-c search_path="${peerSchema}"` });
  await client.connect();
  return {
    timeUpdate: async (n, devices) => {
      const started = performance.now();
      const { rowCount } = await client.query(POSTGRES_UPDATE, [JSON.stringify(n), new Date().toISOString()]);
      const elapsedMs = performance.now() - started;
      changedAll('postgres', rowCount ?? 0, devices);
      return elapsedMs;
    },
    close: () => client.end(),
  };
}

/** Devices whose stored desired.bench is `n`, counted in the hub's SQLite file (read-only, beside the hub). */
export function sqliteCountBench(hubFile: string, n: number): number {
  const db = new Database(hubFile, { readonly: true, fileMustExist: true });
  try {
    return Number(db.prepare(`SELECT COUNT(*) FROM identities WHERE module_id = '' AND json_extract(desired, '$.bench') = ?`).pluck().get(n));
  } finally {
    db.close();
  }
}

/** The same in the hub's PostgreSQL schema. */
export async function postgresCountBench(url: string, schema: string, n: number): Promise<number> {
  const client = new pg.Client({ connectionString: url, options: `-c search_path="${schema}"` });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string }>(`SELECT COUNT(*) AS n FROM identities WHERE module_id = '' AND desired -> 'bench' = $1::jsonb`, [JSON.stringify(n)]);
    return Number(rows[0].n);
  } finally {
    await client.end();
  }
}
