import { X509Certificate } from 'node:crypto';
import { ArgumentInvalid } from '../errors/index.js';

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;
const BASE64 = /^[A-Za-z0-9+/=\s]+$/;

/**
 * Parses one certificate given as PEM or as base64 DER (what Azure's certificate API takes); throws ArgumentInvalid
 * (400004) naming `what` when it is not exactly one readable X.509 certificate.
 */
export function parseCertificateText(text: unknown, what: string): X509Certificate {
  if (typeof text !== 'string' || text.trim() === '') throw new ArgumentInvalid(`${what} must be a PEM or base64 DER string`);
  const blocks = text.match(PEM_BLOCK) ?? [];
  if (blocks.length > 1) throw new ArgumentInvalid(`${what} holds ${blocks.length} certificates; send exactly one`);
  if (blocks.length === 0 && !BASE64.test(text)) throw new ArgumentInvalid(`${what} is neither PEM (-----BEGIN CERTIFICATE-----) nor base64 DER`);
  try {
    return new X509Certificate(blocks.length === 1 ? blocks[0] : Buffer.from(text.replace(/\s+/g, ''), 'base64'));
  } catch {
    throw new ArgumentInvalid(`${what} is not a readable X.509 certificate (${blocks.length === 1 ? 'PEM' : 'base64 DER'})`);
  }
}

/** SHA-1 and SHA-256 thumbprints as upper-case hex without separators. */
export function thumbprintsOf(cert: X509Certificate): { sha1: string; sha256: string } {
  return { sha1: cert.fingerprint.replace(/:/g, '').toUpperCase(), sha256: cert.fingerprint256.replace(/:/g, '').toUpperCase() };
}

/** The certificate's validity window in ms since the epoch. */
export function validityOf(cert: X509Certificate): { notBeforeMs: number; notAfterMs: number } {
  return { notBeforeMs: Date.parse(cert.validFrom), notAfterMs: Date.parse(cert.validTo) };
}

/** Undefined when valid at `nowMs`; else why not ("expired on …" / "not valid before …"). */
export function validityProblem(cert: X509Certificate, nowMs: number): string | undefined {
  const { notBeforeMs, notAfterMs } = validityOf(cert);
  if (!(notBeforeMs <= nowMs)) return `is not valid before ${new Date(notBeforeMs).toISOString()}`;
  if (!(nowMs <= notAfterMs)) return `expired on ${new Date(notAfterMs).toISOString()}`;
  return undefined;
}

// node prints names with RFC 2253 escapes (`\,` and `\0A` for control bytes): undo them to compare with ids.
function unescapeDnValue(value: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c === '\\' && /^[0-9A-Fa-f]{2}$/.test(value.slice(i + 1, i + 3))) { bytes.push(parseInt(value.slice(i + 1, i + 3), 16)); i += 2; continue; }
    if (c === '\\' && i + 1 < value.length) { bytes.push(...Buffer.from(value[i + 1], 'utf8')); i += 1; continue; }
    bytes.push(...Buffer.from(c, 'utf8'));
  }
  return Buffer.from(bytes).toString('utf8');
}

/** The subject's common name, or undefined when it has none or more than one. */
export function commonNameOf(cert: X509Certificate): string | undefined {
  const cns = cert.subject.split('\n').filter((line) => line.startsWith('CN='));
  return cns.length === 1 ? unescapeDnValue(cns[0].slice(3)) : undefined;
}

/** A subject as people read it: `CN=…, O=…`. */
export function displayName(name: string): string {
  return name.split('\n').join(', ');
}

/** True when `cert` names `issuer` as its issuer and carries a valid signature by `issuer`'s key. */
export function isIssuedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
  } catch {
    return false;
  }
}
