import type pg from 'pg';
import type { CaCertificateRecord, CaCertificateStore } from '../ca-certificates.js';
import { CA_CERTIFICATE_COLUMNS, caCertificateFromRow, caCertificateValues } from '../sql/ca-certificate-rows.js';

type Row = Record<string, unknown>;

const COLS = CA_CERTIFICATE_COLUMNS.join(', ');
const PARAMS = CA_CERTIFICATE_COLUMNS.map((_, i) => `$${i + 1}`).join(', ');
/** Every column but the name ($1), from $2 on, in caCertificateValues() order; the expected rev is the last. */
const SET = CA_CERTIFICATE_COLUMNS.slice(1).map((c, i) => `${c} = $${i + 2}`).join(', ');
const EXPECTED_REV = `$${CA_CERTIFICATE_COLUMNS.length + 1}`;
const asBoolean = (v: boolean): boolean => v;

/** CA certificates in PostgreSQL; each call is one statement, so atomic. */
export class PostgresCaCertificates implements CaCertificateStore {
  constructor(private readonly pool: pg.Pool) {}

  async get(name: string): Promise<CaCertificateRecord | undefined> {
    const { rows } = await this.pool.query<Row>(`SELECT ${COLS} FROM ca_certificates WHERE name = $1`, [name]);
    return rows.length ? caCertificateFromRow(rows[0]) : undefined;
  }

  async list(): Promise<CaCertificateRecord[]> {
    const { rows } = await this.pool.query<Row>(`SELECT ${COLS} FROM ca_certificates ORDER BY name`);
    return rows.map(caCertificateFromRow);
  }

  async findBySubject(subject: string): Promise<CaCertificateRecord[]> {
    const { rows } = await this.pool.query<Row>(`SELECT ${COLS} FROM ca_certificates WHERE subject = $1 ORDER BY name`, [subject]);
    return rows.map(caCertificateFromRow);
  }

  async insert(record: CaCertificateRecord): Promise<boolean> {
    const { rowCount } = await this.pool.query(`INSERT INTO ca_certificates (${COLS}) VALUES (${PARAMS}) ON CONFLICT DO NOTHING`,
      caCertificateValues(record, 1, asBoolean));
    return rowCount === 1;
  }

  async replace(record: CaCertificateRecord, expectedRev: number): Promise<boolean> {
    const { rowCount } = await this.pool.query(`UPDATE ca_certificates SET ${SET} WHERE name = $1 AND rev = ${EXPECTED_REV}`,
      [...caCertificateValues(record, expectedRev + 1, asBoolean), expectedRev]);
    return rowCount === 1;
  }

  async delete(name: string, expectedRev?: number): Promise<boolean> {
    const { rowCount } = expectedRev === undefined
      ? await this.pool.query('DELETE FROM ca_certificates WHERE name = $1', [name])
      : await this.pool.query('DELETE FROM ca_certificates WHERE name = $1 AND rev = $2', [name, expectedRev]);
    return rowCount === 1;
  }
}
