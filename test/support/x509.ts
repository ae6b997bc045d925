import forge from 'node-forge';
import { X509Certificate } from 'node:crypto';
import { newRsaKey } from '../../src/edges/tls/dev-ca.js';

/** A certificate made for a test, with its key. */
export interface TestCert {
  readonly cn: string;
  readonly certPem: string;
  readonly keyPem: string;
  readonly der: Buffer;
  /** SHA-1 and SHA-256 thumbprints, upper-case hex without separators. */
  readonly sha1: string;
  readonly sha256: string;
  /** For issuing further certificates. */
  readonly forgeCert: forge.pki.Certificate;
}

const DAY_MS = 86_400_000;
let serialCounter = 1;

/**
 * Issues a certificate with node-forge: a CA (basicConstraints CA:true) or a leaf (CA:false, client auth), signed by
 * `issuer`'s key or, without one, self-signed. Valid from a minute ago for a year unless told otherwise.
 */
export function issueCert(opts: {
  cn: string; issuer?: TestCert; isCa?: boolean; notBefore?: Date; notAfter?: Date; organization?: string;
}): TestCert {
  const key = newRsaKey();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(key.publicPem);
  cert.serialNumber = (0x10000 + serialCounter++).toString(16).padStart(8, '0');
  cert.validity.notBefore = opts.notBefore ?? new Date(Date.now() - 60_000);
  cert.validity.notAfter = opts.notAfter ?? new Date(Date.now() + 365 * DAY_MS);
  cert.setSubject([{ name: 'commonName', value: opts.cn }, { name: 'organizationName', value: opts.organization ?? 'Corral tests' }]);
  cert.setIssuer(opts.issuer ? opts.issuer.forgeCert.subject.attributes : cert.subject.attributes);
  const isCa = opts.isCa ?? false;
  cert.setExtensions([
    { name: 'basicConstraints', cA: isCa, critical: true },
    { name: 'keyUsage', keyCertSign: isCa, cRLSign: isCa, digitalSignature: true, keyEncipherment: !isCa, critical: true },
    ...(isCa ? [] : [{ name: 'extKeyUsage', clientAuth: true }]),
    { name: 'subjectKeyIdentifier' },
  ]);
  const signer = opts.issuer ? opts.issuer.keyPem : key.privatePem;
  cert.sign(forge.pki.privateKeyFromPem(signer), forge.md.sha256.create());
  const certPem = forge.pki.certificateToPem(cert);
  const x = new X509Certificate(certPem);
  return {
    cn: opts.cn, certPem, keyPem: key.privatePem, der: Buffer.from(x.raw), forgeCert: cert,
    sha1: x.fingerprint.replace(/:/g, ''), sha256: x.fingerprint256.replace(/:/g, ''),
  };
}

/** A CA certificate (self-signed root, or an intermediate under `issuer`). */
export function issueCa(cn: string, issuer?: TestCert, over: { notBefore?: Date; notAfter?: Date } = {}): TestCert {
  return issueCert({ cn, issuer, isCa: true, ...over });
}

/** A date `days` from now (negative: in the past). */
export function daysFromNow(days: number): Date {
  return new Date(Date.now() + days * DAY_MS);
}
