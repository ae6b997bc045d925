import { X509Certificate } from 'node:crypto';
import type { CaCertificateRecord, Store } from '../../ports/store/index.js';
import { commonNameOf, displayName, isIssuedBy, validityProblem } from './x509.js';

/** Longest chain walked from the leaf to a registered CA: a bound on work per connection, not a policy. */
const MAX_CHAIN_LENGTH = 10;

/** Whether a presented chain vouches for an identity, and if not, why. */
export type ChainCheck =
  | { readonly ok: true; readonly caName: string }
  | { readonly ok: false; readonly reason: string };

function parseAll(certificates: readonly Buffer[]): X509Certificate[] | string {
  const out: X509Certificate[] = [];
  for (const [i, der] of certificates.entries()) {
    try {
      out.push(new X509Certificate(der));
    } catch {
      return i === 0 ? 'the client certificate is not a readable X.509 certificate' : `certificate ${i} of the presented chain is not readable`;
    }
  }
  return out;
}

/** The verified registered CA that issued `cert` and is valid now, if any. */
async function verifiedIssuer(store: Store, cert: X509Certificate, nowMs: number): Promise<CaCertificateRecord | undefined> {
  for (const ca of await store.caCertificates.findBySubject(cert.issuer)) {
    if (!ca.isVerified) continue;
    const caCert = new X509Certificate(ca.pem);
    if (validityProblem(caCert, nowMs) === undefined && isIssuedBy(cert, caCert)) return ca;
  }
  return undefined;
}

/**
 * Checks a chain a device presented (leaf first, then any intermediates, in any order) for `expectedCn`: the leaf's
 * subject CN must be `expectedCn`, every certificate valid at `nowMs`, each one signed by the next, intermediates
 * CA certificates, and the last one issued by a registered, verified CA valid now. Never throws for bad input.
 */
export async function checkDeviceChain(store: Store, certificates: readonly Buffer[], expectedCn: string, nowMs: number): Promise<ChainCheck> {
  if (certificates.length === 0) return { ok: false, reason: 'no client certificate' };
  const parsed = parseAll(certificates.slice(0, MAX_CHAIN_LENGTH));
  if (typeof parsed === 'string') return { ok: false, reason: parsed };
  const [leaf, ...rest] = parsed;
  const cn = commonNameOf(leaf);
  if (cn !== expectedCn) return { ok: false, reason: `the client certificate's subject CN is '${cn ?? '(none)'}', not '${expectedCn}'` };
  const leafProblem = validityProblem(leaf, nowMs);
  if (leafProblem) return { ok: false, reason: `the client certificate ${leafProblem}` };
  const unused = new Set(rest);
  let current = leaf;
  for (;;) {
    const ca = await verifiedIssuer(store, current, nowMs);
    if (ca) return { ok: true, caName: ca.name };
    const next = [...unused].find((c) => isIssuedBy(current, c));
    if (!next) {
      return { ok: false, reason: `no verified CA certificate is registered for issuer '${displayName(current.issuer)}' of '${displayName(current.subject)}'` };
    }
    if (!next.ca) return { ok: false, reason: `intermediate '${displayName(next.subject)}' is not a CA certificate` };
    const problem = validityProblem(next, nowMs);
    if (problem) return { ok: false, reason: `intermediate '${displayName(next.subject)}' ${problem}` };
    unused.delete(next);
    current = next;
  }
}
