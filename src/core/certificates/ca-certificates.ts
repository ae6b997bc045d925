import { randomBytes, X509Certificate } from 'node:crypto';
import { ArgumentInvalid, CorralError, PreconditionFailed } from '../errors/index.js';
import type { Clock } from '../../ports/clock/index.js';
import type { CaCertificateRecord, Store } from '../../ports/store/index.js';
import { commonNameOf, displayName, parseCertificateText, thumbprintsOf, validityOf, validityProblem } from './x509.js';

/** Azure's rule for certificate names (ARM `certificateName`). */
const NAME = /^[A-Za-z0-9._-]{1,64}$/;
/** Attempts of a read-modify-write before giving up under concurrent writers. */
const MAX_ATTEMPTS = 20;

/** A registered CA certificate as core describes it. */
export interface CaCertificate {
  readonly name: string;
  readonly etag: string;
  /** `CN=…, O=…`. */
  readonly subject: string;
  /** SHA-256, upper-case hex. */
  readonly thumbprint: string;
  readonly isVerified: boolean;
  /** The outstanding verification code, if one was generated and not used yet. */
  readonly verificationCode: string | null;
  readonly pem: string;
  readonly createdMs: number;
  readonly updatedMs: number;
  readonly expiryMs: number;
}

/** 404 for a certificate name nothing is registered under. */
export class CaCertificateNotFound extends CorralError {
  constructor(name: string) { super(404999, `no CA certificate named '${name}'`); }
}

/** 412 for a PUT without If-Match on a name already taken (Azure: If-Match is required to replace). */
export class CaCertificateExists extends CorralError {
  constructor(name: string) { super(412002, `a CA certificate named '${name}' exists already; send If-Match with its etag (or *) to replace it`); }
}

/** 503 when a certificate kept changing under concurrent writers. */
class CaCertificateContended extends CorralError {
  constructor(name: string) { super(503001, `CA certificate '${name}' kept changing under concurrent writes; retry`); }
}

function checkName(name: string): void {
  if (!NAME.test(name)) throw new ArgumentInvalid(`certificate name must be 1-64 letters, digits, '.', '_' or '-', got '${name}'`);
}

function newEtag(): string {
  return randomBytes(8).toString('base64');
}

function describe(r: CaCertificateRecord): CaCertificate {
  const cert = new X509Certificate(r.pem);
  return {
    name: r.name, etag: r.etag, subject: displayName(r.subject), thumbprint: r.thumbprint, isVerified: r.isVerified,
    verificationCode: r.verificationCode, pem: r.pem, createdMs: r.createdMs, updatedMs: r.updatedMs,
    expiryMs: validityOf(cert).notAfterMs,
  };
}

function checkEtag(r: CaCertificateRecord, ifMatch: string): void {
  if (ifMatch !== '*' && ifMatch !== r.etag) throw new PreconditionFailed(`CA certificate '${r.name}'`, ifMatch, r.etag);
}

/**
 * The hub's registered X.509 CA certificates (Azure's certificate API): register, read, delete, and proof of
 * possession of the CA's private key by a verification certificate. Only verified CAs vouch for devices.
 */
export class CaCertificates {
  constructor(private readonly deps: { store: Store; clock: Clock }) {}

  /**
   * Registers `certificateText` (PEM or base64 DER) under `name`, unverified. Without `ifMatch` the name must be
   * free (else 412002); with it (an etag or `*`) it replaces that certificate and its verification. Throws 400004
   * unless it is a CA certificate (basicConstraints CA:true) valid now.
   */
  async register(name: string, certificateText: unknown, ifMatch?: string): Promise<CaCertificate> {
    checkName(name);
    const cert = parseCertificateText(certificateText, 'certificate');
    if (!cert.ca) throw new ArgumentInvalid(`certificate '${displayName(cert.subject)}' is not a CA certificate (basicConstraints CA:true)`);
    const now = this.deps.clock.now();
    const problem = validityProblem(cert, now);
    if (problem) throw new ArgumentInvalid(`certificate '${displayName(cert.subject)}' ${problem}`);
    const fields = {
      pem: cert.toString(), thumbprint: thumbprintsOf(cert).sha256, subject: cert.subject, isVerified: false,
      verificationCode: null, verificationCodeIssuedMs: null, updatedMs: now,
    };
    if (ifMatch === undefined) {
      const record: CaCertificateRecord = { name, ...fields, etag: newEtag(), createdMs: now, rev: 1 };
      if (!(await this.deps.store.caCertificates.insert(record))) throw new CaCertificateExists(name);
      return describe(record);
    }
    return describe(await this.mutate(name, ifMatch, (r) => ({ ...r, ...fields })));
  }

  /** The certificate registered under `name`; 404 if none. */
  async get(name: string): Promise<CaCertificate> {
    const r = await this.deps.store.caCertificates.get(name);
    if (!r) throw new CaCertificateNotFound(name);
    return describe(r);
  }

  /** Every registered certificate, by name. */
  async list(): Promise<CaCertificate[]> {
    return (await this.deps.store.caCertificates.list()).map(describe);
  }

  /** Deletes it (`ifMatch` an etag or `*`); 404 if none, 412002 on a stale etag. */
  async delete(name: string, ifMatch = '*'): Promise<void> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const r = await this.deps.store.caCertificates.get(name);
      if (!r) throw new CaCertificateNotFound(name);
      checkEtag(r, ifMatch);
      if (await this.deps.store.caCertificates.delete(name, r.rev)) return;
    }
    throw new CaCertificateContended(name);
  }

  /** A new random verification code (replacing any earlier one) for the proof of possession. */
  async generateVerificationCode(name: string, ifMatch = '*'): Promise<CaCertificate> {
    const code = randomBytes(24).toString('hex').toUpperCase();
    const now = this.deps.clock.now();
    return describe(await this.mutate(name, ifMatch, (r) => ({ ...r, verificationCode: code, verificationCodeIssuedMs: now, updatedMs: now })));
  }

  /**
   * Proof of possession: `certificateText` must be a certificate whose subject CN is the current verification code,
   * signed by the registered CA's key, valid now. Marks the CA verified and uses the code up; anything else is 400004
   * naming what was wrong.
   */
  async verify(name: string, certificateText: unknown, ifMatch = '*'): Promise<CaCertificate> {
    const proof = parseCertificateText(certificateText, 'verification certificate');
    const now = this.deps.clock.now();
    return describe(await this.mutate(name, ifMatch, (r) => {
      checkProof(r, proof, now);
      return { ...r, isVerified: true, verificationCode: null, verificationCodeIssuedMs: null, updatedMs: now };
    }));
  }

  /** Read-modify-write under the store's optimistic concurrency; a new etag on every write. */
  private async mutate(name: string, ifMatch: string, change: (r: CaCertificateRecord) => CaCertificateRecord): Promise<CaCertificateRecord> {
    checkName(name);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const current = await this.deps.store.caCertificates.get(name);
      if (!current) throw new CaCertificateNotFound(name);
      checkEtag(current, ifMatch);
      const next = { ...change(current), etag: newEtag() };
      if (await this.deps.store.caCertificates.replace(next, current.rev)) return { ...next, rev: current.rev + 1 };
    }
    throw new CaCertificateContended(name);
  }
}

function checkProof(r: CaCertificateRecord, proof: X509Certificate, nowMs: number): void {
  if (r.verificationCode === null) {
    throw new ArgumentInvalid(`CA certificate '${r.name}' has no verification code outstanding; generate one first`);
  }
  const cn = commonNameOf(proof);
  if (cn === undefined || cn.toUpperCase() !== r.verificationCode.toUpperCase()) {
    throw new ArgumentInvalid(`the verification certificate's subject CN is '${cn ?? '(none)'}', not the verification code '${r.verificationCode}'`);
  }
  const ca = new X509Certificate(r.pem);
  let signed: boolean;
  try { signed = proof.verify(ca.publicKey); } catch { signed = false; }
  if (!signed) throw new ArgumentInvalid(`the verification certificate is not signed by the private key of CA certificate '${r.name}'`);
  const problem = validityProblem(proof, nowMs);
  if (problem) throw new ArgumentInvalid(`the verification certificate ${problem}`);
}
