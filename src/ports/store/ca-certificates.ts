/**
 * The CA certificates of the Store port: X.509 certificate authorities registered by an operator, whose signed
 * device certificates authenticate `certificateAuthority` devices once the CA is verified. Adapters keep rows; every
 * rule (what a CA is, proof of possession, etags) is core's. Times are milliseconds since the epoch.
 */

/** One registered CA certificate. */
export interface CaCertificateRecord {
  /** The operator's name for it; the key. */
  readonly name: string;
  /** The certificate as PEM. */
  readonly pem: string;
  /** SHA-256 of the DER, upper-case hex without separators. */
  readonly thumbprint: string;
  /** The subject distinguished name as node's X509Certificate prints it (one `K=V` per line); chains look it up. */
  readonly subject: string;
  /** True once proof of possession of the CA's private key was given. */
  readonly isVerified: boolean;
  /** The code the next verification certificate must carry as its CN; null when none is outstanding. */
  readonly verificationCode: string | null;
  readonly verificationCodeIssuedMs: number | null;
  readonly etag: string;
  readonly createdMs: number;
  readonly updatedMs: number;
  /** Optimistic-concurrency revision; the adapter sets it (1 on insert, +1 on each write). */
  readonly rev: number;
}

export interface CaCertificateStore {
  get(name: string): Promise<CaCertificateRecord | undefined>;
  /** Every registered CA, by name in byte order. */
  list(): Promise<CaCertificateRecord[]>;
  /** The CAs whose subject is exactly `subject` (the issuer a certificate names), by name. */
  findBySubject(subject: string): Promise<CaCertificateRecord[]>;
  /** False when the name is taken. The stored rev is 1. */
  insert(record: CaCertificateRecord): Promise<boolean>;
  /** Compare-and-set: writes only if the stored rev is `expectedRev`; the stored rev becomes expectedRev + 1. */
  replace(record: CaCertificateRecord, expectedRev: number): Promise<boolean>;
  /** With expectedRev, only if the stored rev matches. False if nothing was deleted. */
  delete(name: string, expectedRev?: number): Promise<boolean>;
}
