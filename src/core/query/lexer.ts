/**
 * Query text → tokens. Every token carries its 1-based position counted in characters (code points), so an error
 * points where a person reading the text would look, even after an emoji in a string.
 */

import { QuerySyntaxError } from '../errors/index.js';

export type SymbolText =
  | ',' | '.' | '(' | ')' | '[' | ']' | '{' | '}' | '*' | '+' | '-' | '/' | '%'
  | '=' | '!=' | '<>' | '<' | '<=' | '>' | '>=';

export type Token =
  | { readonly kind: 'name'; readonly text: string; readonly position: number }
  | { readonly kind: 'number'; readonly text: string; readonly value: number; readonly position: number }
  | { readonly kind: 'string'; readonly text: string; readonly value: string; readonly position: number }
  | { readonly kind: 'symbol'; readonly text: SymbolText; readonly position: number }
  | { readonly kind: 'end'; readonly text: ''; readonly position: number };

const TWO_CHAR_SYMBOLS: ReadonlySet<string> = new Set(['!=', '<>', '<=', '>=']);
const ONE_CHAR_SYMBOLS: ReadonlySet<string> = new Set([',', '.', '(', ')', '[', ']', '{', '}', '*', '+', '-', '/', '%', '=', '<', '>']);
const SIMPLE_ESCAPES: Readonly<Record<string, string>> = {
  "'": "'", '"': '"', '\\': '\\', '/': '/', n: '\n', r: '\r', t: '\t', b: '\b', f: '\f',
};

const isNameStart = (c: string): boolean => /^[A-Za-z_$]$/.test(c);
const isNamePart = (c: string): boolean => /^[A-Za-z0-9_$]$/.test(c);
const isDigit = (c: string): boolean => c >= '0' && c <= '9';
const isHexDigit = (c: string): boolean => /^[0-9A-Fa-f]$/.test(c);
const isSpace = (c: string): boolean => /^\s$/.test(c);

/** How a token reads in an error message: `'AND'`, `the string 'x'`, `the end of the query`. */
export function describeToken(token: Token): string {
  const text = token.text.length > 40 ? `${token.text.slice(0, 40)}…` : token.text;
  switch (token.kind) {
    case 'end': return 'the end of the query';
    case 'string': return `the string ${text}`;
    case 'number': return `the number ${text}`;
    case 'name':
    case 'symbol': return `'${text}'`;
  }
}

/** A character as an error message shows it: quoted, or as `U+0007` when it would not print. */
export function describeChar(c: string): string {
  return /^[\p{L}\p{N}\p{S}\p{P}]$/u.test(c)
    ? `'${c}'`
    : `U+${(c.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`;
}

/** The 1-based code-point position of each UTF-16 index (one extra entry for the end). */
function codePointPositions(text: string): Int32Array {
  const positions = new Int32Array(text.length + 1);
  let position = 1;
  for (let i = 0; i < text.length; i++) {
    positions[i] = position;
    const isPairStart = isHighSurrogate(text.charCodeAt(i)) && isLowSurrogate(text.charCodeAt(i + 1));
    if (!isPairStart) position++;
  }
  positions[text.length] = position;
  return positions;
}

function isHighSurrogate(code: number): boolean { return code >= 0xd800 && code <= 0xdbff; }
function isLowSurrogate(code: number): boolean { return code >= 0xdc00 && code <= 0xdfff; }

/** Whether a string holds a surrogate without its partner, which neither engine can store as text. */
function hasLoneSurrogate(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const code = s.charCodeAt(i);
    if (isHighSurrogate(code) && isLowSurrogate(s.charCodeAt(i + 1))) i++;
    else if (isHighSurrogate(code) || isLowSurrogate(code)) return true;
  }
  return false;
}

export interface TokenizeOptions {
  /**
   * A name starting with `$` goes on across `-` followed by a letter, as one name: routing conditions name system
   * properties `$iothub-connection-device-id` and `$dt-dataschema`. (`$a - b`, spaced, is still a subtraction.)
   */
  readonly hyphenatedDollarNames?: boolean;
}

class Lexer {
  private i = 0;
  private readonly positions: Int32Array;
  readonly tokens: Token[] = [];

  constructor(private readonly text: string, private readonly options: TokenizeOptions) {
    this.positions = codePointPositions(text);
  }

  run(): Token[] {
    for (;;) {
      while (this.i < this.text.length && isSpace(this.text[this.i])) this.i++;
      if (this.i >= this.text.length) break;
      this.tokens.push(this.nextToken());
    }
    this.tokens.push({ kind: 'end', text: '', position: this.positions[this.text.length] });
    return this.tokens;
  }

  private fail(index: number, detail: string): never {
    throw new QuerySyntaxError(this.positions[Math.min(index, this.text.length)], detail);
  }

  private nextToken(): Token {
    const c = this.text[this.i];
    if (isNameStart(c)) return this.name();
    if (isDigit(c)) return this.number();
    if (c === "'" || c === '"') return this.string(c);
    const two = this.text.slice(this.i, this.i + 2);
    const position = this.positions[this.i];
    if (TWO_CHAR_SYMBOLS.has(two)) {
      this.i += 2;
      return { kind: 'symbol', text: two as SymbolText, position };
    }
    if (ONE_CHAR_SYMBOLS.has(c)) {
      this.i += 1;
      return { kind: 'symbol', text: c as SymbolText, position };
    }
    if (c === '!') this.fail(this.i + 1, `expected '=' after '!' (write != for "not equal"), found ${this.charAt(this.i + 1)}`);
    const whole = String.fromCodePoint(this.text.codePointAt(this.i) ?? 0);
    // Names are ASCII (IoT Hub's grammar); a key in another script is still reachable in brackets.
    const bracketHint = /^\p{L}$/u.test(whole) ? ` (names use only A-Z, a-z, 0-9, _ and $; write other keys in brackets, as in tags['${whole}'])` : '';
    return this.fail(this.i, `expected a name, number, string or operator, found the character ${describeChar(whole)}${bracketHint}`);
  }

  private charAt(index: number): string {
    if (index >= this.text.length) return 'the end of the query';
    return describeChar(String.fromCodePoint(this.text.codePointAt(index) ?? 0));
  }

  private name(): Token {
    const start = this.i;
    const hyphens = this.options.hyphenatedDollarNames === true && this.text[start] === '$';
    for (;;) {
      while (this.i < this.text.length && isNamePart(this.text[this.i])) this.i++;
      if (!hyphens || this.text[this.i] !== '-' || !/^[A-Za-z]$/.test(this.text[this.i + 1] ?? '')) break;
      this.i++;
    }
    return { kind: 'name', text: this.text.slice(start, this.i), position: this.positions[start] };
  }

  private number(): Token {
    const start = this.i;
    const isHex = this.text[start] === '0' && (this.text[start + 1] === 'x' || this.text[start + 1] === 'X');
    const value = isHex ? this.hexDigits() : this.decimalDigits();
    if (this.i < this.text.length && isNamePart(this.text[this.i])) {
      this.fail(this.i, `expected an operator or a space after the number ${this.text.slice(start, this.i)}, found ${this.charAt(this.i)}`);
    }
    const text = this.text.slice(start, this.i);
    if (!Number.isFinite(value)) this.fail(start, `the number ${text} is too large; the largest is about 1.8e308`);
    return { kind: 'number', text, value, position: this.positions[start] };
  }

  private hexDigits(): number {
    const start = this.i;
    this.i += 2;
    const digitsStart = this.i;
    while (this.i < this.text.length && isHexDigit(this.text[this.i])) this.i++;
    if (this.i === digitsStart) this.fail(this.i, `expected a hexadecimal digit after '0x', found ${this.charAt(this.i)}`);
    const value = Number.parseInt(this.text.slice(digitsStart, this.i), 16);
    // Hex spells exact bits; beyond 2^53-1 a double would silently round them.
    if (!Number.isSafeInteger(value)) this.fail(start, `the number ${this.text.slice(start, this.i)} is larger than 2^53-1`);
    return value;
  }

  private decimalDigits(): number {
    const start = this.i;
    this.skipDigits();
    if (this.text[this.i] === '.') {
      this.i++;
      this.requireDigit(`after '${this.text.slice(start, this.i)}'`);
      this.skipDigits();
    }
    if (this.text[this.i] === 'e' || this.text[this.i] === 'E') {
      this.i++;
      if (this.text[this.i] === '+' || this.text[this.i] === '-') this.i++;
      this.requireDigit(`in the exponent of '${this.text.slice(start, this.i)}'`);
      this.skipDigits();
    }
    return Number(this.text.slice(start, this.i));
  }

  private requireDigit(where: string): void {
    if (!isDigit(this.text[this.i] ?? '')) this.fail(this.i, `expected a digit ${where}, found ${this.charAt(this.i)}`);
  }

  private skipDigits(): void {
    while (this.i < this.text.length && isDigit(this.text[this.i])) this.i++;
  }

  private string(quote: string): Token {
    const start = this.i;
    this.i++;
    let value = '';
    for (;;) {
      if (this.i >= this.text.length) {
        this.fail(start, `expected a closing ${quote} for the string that starts here, found the end of the query`);
      }
      const c = this.text[this.i];
      if (c === quote) break;
      if (c === '\\') value += this.escape();
      else { value += c; this.i++; }
    }
    this.i++;
    if (hasLoneSurrogate(value)) this.fail(start, 'the string holds a lone UTF-16 surrogate, which is not text');
    return { kind: 'string', text: this.text.slice(start, this.i), value, position: this.positions[start] };
  }

  private escape(): string {
    const at = this.i;
    const c = this.text[at + 1] ?? '';
    const simple = SIMPLE_ESCAPES[c];
    if (simple !== undefined && Object.hasOwn(SIMPLE_ESCAPES, c)) {
      this.i += 2;
      return simple;
    }
    if (c === 'u') {
      const hex = this.text.slice(at + 2, at + 6);
      if (hex.length !== 4 || ![...hex].every(isHexDigit)) {
        this.fail(at, `expected four hexadecimal digits after '\\u', found '${hex}'`);
      }
      this.i += 6;
      return String.fromCharCode(Number.parseInt(hex, 16));
    }
    const found = c === '' ? 'the end of the query' : describeChar(c);
    return this.fail(at, `expected one of \\' \\" \\\\ \\/ \\n \\r \\t \\b \\f \\uXXXX after '\\', found ${found}`);
  }
}

/** Splits query text into tokens, ending with an `end` token; throws QuerySyntaxError at the first bad character. */
export function tokenize(text: string, options: TokenizeOptions = {}): Token[] {
  return new Lexer(text, options).run();
}
