import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { parseIdentitySpec, Registry } from '../../src/core/identity/index.js';
import { IOT_HUB_TWIN_LIMITS, replaceTwinSections } from '../../src/core/twins/index.js';
import { isoTime, systemClock } from '../../src/ports/clock/index.js';
import { AesGcmKeyRing, type KeyRing } from '../../src/ports/keyring/index.js';
import { IDENTITY_COLUMNS, identityValues, type IdentityRowValues } from '../../src/ports/store/sql/rows.js';
import { SqliteStore } from '../../src/ports/store/sqlite/index.js';
import { SQLITE_MIGRATIONS } from '../../src/ports/store/sqlite/migrations.js';
import { benchDevice } from './devices.js';

/**
 * The import's peer: plain batched INSERTs of the same rows into a fresh SQLite file with the hub's schema and
 * pragmas. The rows are built beforehand with the hub's own record and twin code (keys: one fixed pre-sealed
 * string), so only the inserts are timed: the floor an import into this schema could reach.
 */

/** Rows per transaction, as the brief fixes it. */
const ROWS_PER_TRANSACTION = 1000;
/** Rows per multi-row INSERT: 100 × 30 columns = 3000 parameters, well under SQLite's 32766. */
const ROWS_PER_STATEMENT = 100;

/** The rows, ready to bind: per transaction, per statement, up to ROWS_PER_STATEMENT rows' values back to back. */
export interface PeerRows {
  readonly count: number;
  readonly transactions: readonly (readonly IdentityRowValues[])[];
}

/** A keyring whose every seal is the same pre-sealed key: the peer does no key generation or encryption. */
function fixedSealKeyring(): KeyRing {
  const sealed = new AesGcmKeyRing(randomBytes(32)).seal(randomBytes(32).toString('base64'));
  return {
    seal: () => sealed,
    newKey: () => '',
    open: () => { throw new Error('the peer never opens keys'); },
  };
}

/** Rows for devices 0..count-1, exactly as the hub's import would write them but for the key values. */
export function buildPeerRows(count: number): PeerRows {
  const scratch = SqliteStore.open(':memory:'); // Registry.build never touches its store
  const registry = new Registry({ store: scratch, keyring: fixedSealKeyring(), clock: systemClock });
  const transactions: IdentityRowValues[][] = [];
  for (let start = 0; start < count; start += ROWS_PER_STATEMENT) {
    if (start % ROWS_PER_TRANSACTION === 0) transactions.push([]);
    const values: IdentityRowValues = [];
    const now = isoTime(systemClock.now());
    for (let i = start; i < Math.min(count, start + ROWS_PER_STATEMENT); i++) {
      const d = benchDevice(i);
      const base = registry.build({ deviceId: d.id, moduleId: '' }, parseIdentitySpec(d));
      const twin = replaceTwinSections(base.twin, { tags: d.tags, ...d.properties }, now, IOT_HUB_TWIN_LIMITS);
      for (const v of identityValues({ ...base, twin }, 1)) values.push(v);
    }
    transactions[transactions.length - 1].push(values);
  }
  void scratch.close();
  return { count, transactions };
}

/** Opens `file` as the hub's store would (same pragmas, same migrations). */
function openLikeTheHub(file: string): Database.Database {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = ON');
  for (const m of SQLITE_MIGRATIONS) db.exec(m.sql);
  return db;
}

function multiRowInsert(db: Database.Database, rows: number): Database.Statement {
  const tuple = `(${IDENTITY_COLUMNS.map(() => '?').join(', ')})`;
  return db.prepare(`INSERT INTO identities (${IDENTITY_COLUMNS.join(', ')}) VALUES ${Array(rows).fill(tuple).join(', ')}`);
}

/** Inserts the rows into a fresh database at `file`; resolves with the milliseconds the inserts took. */
export function insertPeerRows(file: string, rows: PeerRows): number {
  const db = openLikeTheHub(file);
  try {
    const width = IDENTITY_COLUMNS.length;
    const full = multiRowInsert(db, ROWS_PER_STATEMENT);
    const last = rows.count % ROWS_PER_STATEMENT === 0 ? full : multiRowInsert(db, rows.count % ROWS_PER_STATEMENT);
    const insertTransaction = db.transaction((statements: readonly IdentityRowValues[]) => {
      for (const values of statements) (values.length === ROWS_PER_STATEMENT * width ? full : last).run(values);
    });
    const started = performance.now();
    for (const statements of rows.transactions) insertTransaction.immediate(statements);
    const elapsedMs = performance.now() - started;
    const stored = db.prepare('SELECT COUNT(*) FROM identities').pluck().get();
    if (stored !== rows.count) throw new Error(`peer stored ${String(stored)} rows, expected ${rows.count}`);
    return elapsedMs;
  } finally {
    db.close();
  }
}
