import { constants } from 'node:crypto';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';

/**
 * TLS server options for listeners devices reach: client certificates requested, not required (SAS devices send
 * none; azure-compat §1.2), and no session tickets. A resumed session keeps the client's leaf certificate but not the
 * intermediates it sent, so a device signed by an intermediate would be refused on its second connection (node's
 * https agent resumes by default); without tickets every connection is a full handshake carrying the whole chain.
 */
export const DEVICE_TLS_OPTIONS = { requestCert: true, rejectUnauthorized: false, secureOptions: constants.SSL_OP_NO_TICKET } as const;

/** A bound on the certificates taken from one handshake (the core walks at most ten). */
const MAX_CERTIFICATES = 10;

/**
 * The certificates a TLS client presented, leaf first, then the issuers node matched among what it sent (each
 * `issuerCertificate` in turn, until a self-signed one repeats); undefined when it sent none or the socket is not TLS.
 * Signatures are not checked here: the core does that against the registered CAs.
 */
export function peerCertificateChain(socket: Partial<Pick<TLSSocket, 'getPeerCertificate'>>): Buffer[] | undefined {
  if (typeof socket.getPeerCertificate !== 'function') return undefined;
  const chain: Buffer[] = [];
  const seen = new Set<DetailedPeerCertificate>();
  let cert: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  while (cert && cert.raw && !seen.has(cert) && chain.length < MAX_CERTIFICATES) {
    seen.add(cert);
    chain.push(cert.raw);
    cert = cert.issuerCertificate;
  }
  return chain.length > 0 ? chain : undefined;
}
