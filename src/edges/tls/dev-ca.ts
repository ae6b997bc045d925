import forge from 'node-forge';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';

/** What the TLS listeners serve, and the CA file clients should trust. */
export interface TlsMaterial {
  readonly cert: string;
  readonly key: string;
  readonly caFile: string;
  readonly ca: string;
}

const CA_DAYS = 3650;
const SERVER_DAYS = 825;

/** A fresh RSA-2048 key pair as PEM (PKCS#8 private, SPKI public). */
export function newRsaKey(): { privatePem: string; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

function serial(): string {
  return '01' + forge.util.bytesToHex(forge.random.getBytesSync(15));
}

function issue(opts: {
  subjectCn: string; publicPem: string; issuerCert?: forge.pki.Certificate; signerPem: string; days: number; isCa: boolean; sans?: string[];
}): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(opts.publicPem);
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + opts.days * 86_400_000);
  cert.setSubject([{ name: 'commonName', value: opts.subjectCn }, { name: 'organizationName', value: 'Corral development' }]);
  cert.setIssuer(opts.issuerCert ? opts.issuerCert.subject.attributes : cert.subject.attributes);
  const ext: object[] = [
    { name: 'basicConstraints', cA: opts.isCa, critical: true },
    { name: 'keyUsage', keyCertSign: opts.isCa, cRLSign: opts.isCa, digitalSignature: true, keyEncipherment: !opts.isCa, critical: true },
    { name: 'subjectKeyIdentifier' },
  ];
  if (!opts.isCa) ext.push({ name: 'extKeyUsage', serverAuth: true });
  if (opts.sans) {
    ext.push({ name: 'subjectAltName', altNames: opts.sans.map((s) => (isIP(s) ? { type: 7, ip: s } : { type: 2, value: s })) });
  }
  cert.setExtensions(ext);
  cert.sign(forge.pki.privateKeyFromPem(opts.signerPem), forge.md.sha256.create());
  return cert;
}

function coversAll(certPem: string, names: string[]): boolean {
  const cert = new X509Certificate(certPem);
  if (Date.parse(cert.validTo) < Date.now() + 86_400_000) return false;
  return names.every((n) => (isIP(n) ? cert.checkIP(n) !== undefined : cert.checkHost(n) !== undefined));
}

function write(file: string, text: string, secret: boolean): void {
  writeFileSync(file, text, { mode: secret ? 0o600 : 0o644 });
}

/**
 * The development CA under `dir/tls` (made on first start) and a server certificate whose subjectAltNames hold
 * every name in `names`; the server certificate is issued again when a name is missing or it nears expiry.
 */
export function ensureDevCa(dataDir: string, names: string[]): TlsMaterial {
  const dir = join(dataDir, 'tls');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const files = { ca: join(dir, 'ca.pem'), caKey: join(dir, 'ca-key.pem'), cert: join(dir, 'server.pem'), key: join(dir, 'server-key.pem') };
  if (!existsSync(files.ca) || !existsSync(files.caKey)) {
    const k = newRsaKey();
    // A distinct subject per CA: a client trusting several hubs' CAs must find the right issuer by name.
    const ca = issue({ subjectCn: `Corral development CA ${forge.util.bytesToHex(forge.random.getBytesSync(4))}`, publicPem: k.publicPem, signerPem: k.privatePem, days: CA_DAYS, isCa: true });
    write(files.caKey, k.privatePem, true);
    write(files.ca, forge.pki.certificateToPem(ca), false);
  }
  const sans = [...new Set(names.filter((n) => n && n !== '0.0.0.0' && n !== '::'))];
  if (!existsSync(files.cert) || !existsSync(files.key) || !coversAll(readFileSync(files.cert, 'utf8'), sans)) {
    const caCert = forge.pki.certificateFromPem(readFileSync(files.ca, 'utf8'));
    const k = newRsaKey();
    const cert = issue({
      subjectCn: sans[0] ?? 'localhost', publicPem: k.publicPem, issuerCert: caCert,
      signerPem: readFileSync(files.caKey, 'utf8'), days: SERVER_DAYS, isCa: false, sans,
    });
    write(files.key, k.privatePem, true);
    write(files.cert, forge.pki.certificateToPem(cert) + readFileSync(files.ca, 'utf8'), false);
  }
  return { cert: readFileSync(files.cert, 'utf8'), key: readFileSync(files.key, 'utf8'), caFile: files.ca, ca: readFileSync(files.ca, 'utf8') };
}

/** Operator-supplied certificate and key (`--tls-cert`, `--tls-key`); the CA file is the certificate file. */
export function loadTlsFiles(certFile: string, keyFile: string): TlsMaterial {
  const cert = readFileSync(certFile, 'utf8');
  return { cert, key: readFileSync(keyFile, 'utf8'), caFile: certFile, ca: cert };
}
