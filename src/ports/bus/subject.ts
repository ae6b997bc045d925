/** Characters a token keeps as they are; every other UTF-16 code unit is escaped. */
const PLAIN = /^[A-Za-z0-9-]$/;
/** What no subject may hold anywhere: NATS splits its protocol lines on whitespace, and control characters are unsafe. */
const FORBIDDEN = /[\s\x00-\x1f\x7f]/;
/** A token that stands for the empty id; no other id encodes to it, since an escape always has hex digits after `_`. */
const EMPTY_TOKEN = '_';

/**
 * Encodes any id (device ids hold `.`, `*`, `$`, `%`…; IoT Hub allows `-.%_*?!(),:=@$'`) into one subject token of
 * only `[A-Za-z0-9_-]`: letters, digits and `-` stay, every other code unit becomes `_XX` (below U+0100) or `_uXXXX`
 * (uppercase hex). The mapping is injective and total over JS strings, and `idFromSubjectToken` inverts it.
 */
export function subjectToken(id: string): string {
  if (id.length === 0) return EMPTY_TOKEN;
  let out = '';
  for (let i = 0; i < id.length; i += 1) {
    const ch = id[i];
    if (PLAIN.test(ch)) {
      out += ch;
      continue;
    }
    const code = ch.charCodeAt(0);
    out += code < 0x100 ? `_${hex(code, 2)}` : `_u${hex(code, 4)}`;
  }
  return out;
}

/** The id `subjectToken` encoded into `token`; throws TypeError for a token it cannot have produced. */
export function idFromSubjectToken(token: string): string {
  if (token === EMPTY_TOKEN) return '';
  let id = '';
  let i = 0;
  while (i < token.length) {
    const ch = token[i];
    if (PLAIN.test(ch)) {
      id += ch;
      i += 1;
      continue;
    }
    const wide = ch === '_' && token[i + 1] === 'u';
    const digits = wide ? token.slice(i + 2, i + 6) : ch === '_' ? token.slice(i + 1, i + 3) : '';
    const width = wide ? 4 : 2;
    if (digits.length !== width || !/^[0-9A-F]+$/.test(digits)) {
      throw new TypeError(`'${token}' is not a subject token: bad escape at offset ${i}`);
    }
    const code = parseInt(digits, 16);
    if (wide !== code >= 0x100 || (!wide && PLAIN.test(String.fromCharCode(code)))) {
      throw new TypeError(`'${token}' is not a subject token: non-canonical escape at offset ${i}`);
    }
    id += String.fromCharCode(code);
    i += wide ? 6 : 3;
  }
  return id;
}

/**
 * The tokens of `subject`, after checking it: a string of non-empty '.'-separated tokens without whitespace or control
 * characters. A `literal` subject (publish, request) has no `*` or `>` token; a `pattern` (subscribe, serve) may have
 * `*` tokens and a `>` token in last place only. Throws TypeError naming the subject.
 */
export function subjectTokens(subject: string, kind: 'literal' | 'pattern'): readonly string[] {
  const bad = (why: string): TypeError => new TypeError(`bus subject ${JSON.stringify(subject)} is invalid: ${why}`);
  if (typeof subject !== 'string' || subject.length === 0) throw bad('it is empty');
  if (FORBIDDEN.test(subject)) throw bad('it holds whitespace or a control character');
  const tokens = subject.split('.');
  tokens.forEach((token, i) => {
    if (token.length === 0) throw bad(`token ${i + 1} is empty`);
    const wildcard = token === '*' || token === '>';
    if (wildcard && kind === 'literal') throw bad(`wildcard '${token}' where a literal subject is needed`);
    if (token === '>' && i !== tokens.length - 1) throw bad("'>' is not the last token");
  });
  return tokens;
}

function hex(n: number, width: number): string {
  return n.toString(16).toUpperCase().padStart(width, '0');
}
