import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';

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
