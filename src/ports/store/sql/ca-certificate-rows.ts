import type { CaCertificateRecord } from '../ca-certificates.js';

/** The columns of `ca_certificates`, in the order caCertificateValues() gives them. */
export const CA_CERTIFICATE_COLUMNS = [
  'name', 'pem', 'thumbprint', 'subject', 'is_verified', 'verification_code', 'verification_code_issued_ms', 'etag',
  'created_ms', 'updated_ms', 'rev',
] as const;

/** The values of a record for CA_CERTIFICATE_COLUMNS, with the rev to store; `verified` as the engine wants it. */
export function caCertificateValues<B>(r: CaCertificateRecord, rev: number, verified: (v: boolean) => B): unknown[] {
  return [
    r.name, r.pem, r.thumbprint, r.subject, verified(r.isVerified), r.verificationCode, r.verificationCodeIssuedMs, r.etag,
    r.createdMs, r.updatedMs, rev,
  ];
}

/** A row as either driver returns it (bigint columns may arrive as strings from pg, booleans as 0/1 from SQLite). */
export function caCertificateFromRow(row: Record<string, unknown>): CaCertificateRecord {
  const issued = row.verification_code_issued_ms;
  return {
    name: row.name as string,
    pem: row.pem as string,
    thumbprint: row.thumbprint as string,
    subject: row.subject as string,
    isVerified: row.is_verified === true || row.is_verified === 1,
    verificationCode: (row.verification_code as string | null) ?? null,
    verificationCodeIssuedMs: issued === null || issued === undefined ? null : Number(issued),
    etag: row.etag as string,
    createdMs: Number(row.created_ms),
    updatedMs: Number(row.updated_ms),
    rev: Number(row.rev),
  };
}
