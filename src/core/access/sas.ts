import { createHmac, timingSafeEqual } from 'node:crypto';

/** A parsed `SharedAccessSignature sr=…&sig=…&se=…[&skn=…]`; `sr` and `sig` exactly as written (still encoded). */
export interface SasToken {
  readonly sr: string;
  readonly sig: string;
  readonly se: number;
  readonly skn?: string;
}

const SCHEME = 'SharedAccessSignature ';

/** Parses a SAS token (fields in any order); undefined when it is not one. */
export function parseSasToken(text: string): SasToken | undefined {
  if (!text.startsWith(SCHEME)) return undefined;
  const fields = new Map<string, string>();
  for (const part of text.slice(SCHEME.length).trim().split('&')) {
    const eq = part.indexOf('=');
    if (eq > 0) fields.set(part.slice(0, eq), part.slice(eq + 1));
  }
  const sr = fields.get('sr');
  const sig = fields.get('sig');
  const seText = fields.get('se');
  if (!sr || !sig || !seText || !/^\d+$/.test(seText)) return undefined;
  return { sr, sig, se: Number(seText), skn: fields.get('skn') };
}

/** Strict encodeURIComponent as the Azure SDKs write it: also `! ' ( ) *`, lower-case hex (azure-compat §1.1). */
export function strictEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16));
}

/** decodeURIComponent that answers undefined for malformed input instead of throwing. */
export function safeDecode(s: string): string | undefined {
  try { return decodeURIComponent(s); } catch { return undefined; }
}

/** base64 HMAC-SHA256 keyed with the base64-decoded key over `{sr}\n{se}`. */
export function signSas(sr: string, se: number, keyBase64: string): string {
  return createHmac('sha256', Buffer.from(keyBase64, 'base64')).update(`${sr}\n${se}`).digest('base64');
}

/** Builds a token the way the SDKs do (sr encoded, sig URL-encoded). */
export function buildSasToken(resource: string, keyBase64: string, expirySeconds: number, keyName?: string): string {
  const sr = strictEncode(resource);
  const sig = encodeURIComponent(signSas(sr, expirySeconds, keyBase64));
  return `${SCHEME}sr=${sr}&sig=${sig}&se=${expirySeconds}${keyName ? `&skn=${encodeURIComponent(keyName)}` : ''}`;
}

/**
 * True when the token's signature was made with one of `keys`. The HMAC is tried over `sr` as received, then over
 * the other encodings SDKs use (strict-encoded and decoded), compared in constant time.
 */
export function isSignedBy(token: SasToken, keys: readonly string[]): boolean {
  const given = Buffer.from(safeDecode(token.sig) ?? '', 'base64');
  if (given.length !== 32) return false;
  const decoded = safeDecode(token.sr);
  const candidates = new Set([token.sr]);
  if (decoded !== undefined) { candidates.add(strictEncode(decoded)); candidates.add(decoded); }
  for (const key of keys) {
    for (const sr of candidates) {
      const expected = Buffer.from(signSas(sr, token.se, key), 'base64');
      if (timingSafeEqual(expected, given)) return true;
    }
  }
  return false;
}

/** The decoded resource URI of a token, lower-cased host part kept as written; undefined if not decodable. */
export function resourceOf(token: SasToken): string | undefined {
  return safeDecode(token.sr);
}
