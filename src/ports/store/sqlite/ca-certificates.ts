import type Database from 'better-sqlite3';
import type { CaCertificateRecord, CaCertificateStore } from '../ca-certificates.js';
import { CA_CERTIFICATE_COLUMNS, caCertificateFromRow, caCertificateValues } from '../sql/ca-certificate-rows.js';

type Row = Record<string, unknown>;

const COLS = CA_CERTIFICATE_COLUMNS.join(', ');
const PARAMS = CA_CERTIFICATE_COLUMNS.map(() => '?').join(', ');
const SET = CA_CERTIFICATE_COLUMNS.filter((c) => c !== 'name').map((c) => `${c} = ?`).join(', ');
const asInteger = (v: boolean): number => (v ? 1 : 0);

function prepare(db: Database.Database) {
  return {
    get: db.prepare(`SELECT ${COLS} FROM ca_certificates WHERE name = ?`),
    list: db.prepare(`SELECT ${COLS} FROM ca_certificates ORDER BY name`),
    bySubject: db.prepare(`SELECT ${COLS} FROM ca_certificates WHERE subject = ? ORDER BY name`),
    insert: db.prepare(`INSERT INTO ca_certificates (${COLS}) VALUES (${PARAMS}) ON CONFLICT DO NOTHING`),
    replace: db.prepare(`UPDATE ca_certificates SET ${SET} WHERE name = ? AND rev = ?`),
    delete: db.prepare('DELETE FROM ca_certificates WHERE name = ?'),
    deleteAt: db.prepare('DELETE FROM ca_certificates WHERE name = ? AND rev = ?'),
  };
}

/** CA certificates in SQLite; each call is one statement, so atomic. */
export class SqliteCaCertificates implements CaCertificateStore {
  private prepared?: ReturnType<typeof prepare>;

  constructor(private readonly db: Database.Database) {}

  /** Prepared on first use: the store is built before migrate() has created the table. */
  private get stmts(): ReturnType<typeof prepare> {
    this.prepared ??= prepare(this.db);
    return this.prepared;
  }

  async get(name: string): Promise<CaCertificateRecord | undefined> {
    const row = this.stmts.get.get(name) as Row | undefined;
    return row ? caCertificateFromRow(row) : undefined;
  }

  async list(): Promise<CaCertificateRecord[]> {
    return (this.stmts.list.all() as Row[]).map(caCertificateFromRow);
  }

  async findBySubject(subject: string): Promise<CaCertificateRecord[]> {
    return (this.stmts.bySubject.all(subject) as Row[]).map(caCertificateFromRow);
  }

  async insert(record: CaCertificateRecord): Promise<boolean> {
    return this.stmts.insert.run(...caCertificateValues(record, 1, asInteger)).changes === 1;
  }

  async replace(record: CaCertificateRecord, expectedRev: number): Promise<boolean> {
    const [name, ...rest] = caCertificateValues(record, expectedRev + 1, asInteger);
    return this.stmts.replace.run(...rest, name, expectedRev).changes === 1;
  }

  async delete(name: string, expectedRev?: number): Promise<boolean> {
    const result = expectedRev === undefined ? this.stmts.delete.run(name) : this.stmts.deleteAt.run(name, expectedRev);
    return result.changes === 1;
  }
}
