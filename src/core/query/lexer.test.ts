import { test } from 'node:test';
import assert from 'node:assert/strict';
import { QuerySyntaxError } from '../errors/index.js';
import { describeToken, tokenize, type Token } from './lexer.js';

function kinds(text: string): string[] {
  return tokenize(text).map((t) => `${t.kind}:${t.text}`);
}

function valueOf(text: string): unknown {
  const [token] = tokenize(text);
  return token.kind === 'number' || token.kind === 'string' ? token.value : undefined;
}

function assertLexError(text: string, position: number, message: RegExp): void {
  assert.throws(() => tokenize(text), (err: unknown) => {
    assert.ok(err instanceof QuerySyntaxError, `not a QuerySyntaxError: ${String(err)}`);
    assert.equal(err.position, position);
    assert.match(err.message, new RegExp(`^query error at position ${position}: `));
    assert.match(err.message, message);
    return true;
  });
}

test('names, numbers, strings and operators come out in order with an end token', () => {
  assert.deepEqual(kinds("SELECT tags.$x_1 FROM devices WHERE a >= 1.5"), [
    'name:SELECT', 'name:tags', 'symbol:.', 'name:$x_1', 'name:FROM', 'name:devices', 'name:WHERE', 'name:a',
    'symbol:>=', 'number:1.5', 'end:',
  ]);
});

test('every operator is one token, the two-character ones included', () => {
  assert.deepEqual(kinds(', . ( ) [ ] { } * + - / % = != <> < <= > >='), [
    ...[',', '.', '(', ')', '[', ']', '{', '}', '*', '+', '-', '/', '%', '=', '!=', '<>', '<', '<=', '>', '>=']
      .map((s) => `symbol:${s}`),
    'end:',
  ]);
});

test('operators need no spaces around them', () => {
  assert.deepEqual(kinds('a<=-1'), ['name:a', 'symbol:<=', 'symbol:-', 'number:1', 'end:']);
});

test('positions are 1-based and the end token sits one past the text', () => {
  const tokens = tokenize('  a =\t\n12 ');
  assert.deepEqual(tokens.map((t) => t.position), [3, 5, 8, 11]);
});

test('positions count characters, so a character outside the BMP counts once', () => {
  const tokens = tokenize("'😀' = x");
  assert.deepEqual(tokens.map((t) => t.position), [1, 5, 7, 8]);
});

test('numbers: integers, decimals, exponents and hexadecimal', () => {
  assert.equal(valueOf('42'), 42);
  assert.equal(valueOf('007'), 7);
  assert.equal(valueOf('3.25'), 3.25);
  assert.equal(valueOf('1e3'), 1000);
  assert.equal(valueOf('2.5E-2'), 0.025);
  assert.equal(valueOf('1e+2'), 100);
  assert.equal(valueOf('0x1F'), 31);
  assert.equal(valueOf('0XfF'), 255);
});

test('a malformed number is refused where it goes wrong', () => {
  assertLexError('1.', 3, /expected a digit after '1\.', found the end of the query/);
  assertLexError('1.x', 3, /expected a digit after '1\.', found 'x'/);
  assertLexError('2e', 3, /expected a digit in the exponent of '2e', found the end/);
  assertLexError('0x', 3, /expected a hexadecimal digit after '0x'/);
  assertLexError('12abc', 3, /expected an operator or a space after the number 12, found 'a'/);
  assertLexError('0x1G', 4, /found 'G'/);
  assertLexError('x = 1e999', 5, /the number 1e999 is too large/);
  assertLexError('0x20000000000000', 1, /larger than 2\^53-1/);
});

test('strings in single or double quotes, with every escape', () => {
  assert.equal(valueOf(`'it\\'s'`), "it's");
  assert.equal(valueOf(`"say \\"hi\\""`), 'say "hi"');
  assert.equal(valueOf(`'a"b'`), 'a"b');
  assert.equal(valueOf(`"a'b"`), "a'b");
  assert.equal(valueOf(String.raw`'\\ \/ \n \r \t \b \f'`), '\\ / \n \r \t \b \f');
  assert.equal(valueOf(String.raw`'\u0041\u00e9'`), 'Aé');
  assert.equal(valueOf(String.raw`'\uD83D\uDE00'`), '😀');
  assert.equal(valueOf("''"), '');
});

test('a string keeps its source text for messages', () => {
  const [token] = tokenize(String.raw`'a\nb'`);
  assert.equal(token.text, String.raw`'a\nb'`);
});

test('an unterminated string is reported at its opening quote', () => {
  assertLexError("deviceId = 'abc", 12, /expected a closing ' for the string that starts here, found the end of the query/);
  assertLexError('x = "abc\\"', 5, /expected a closing " for the string/);
});

test('an unknown escape or a short \\u is refused at the backslash', () => {
  assertLexError(String.raw`'a\qb'`, 3, /expected one of .* after '\\', found 'q'/);
  assertLexError(String.raw`'\u12'`, 2, /expected four hexadecimal digits after '\\u', found '12'/);
  assertLexError(String.raw`'\u12G4'`, 2, /found '12G4'/);
});

test('a lone surrogate in a string is refused, escaped or raw', () => {
  assertLexError(String.raw`'\uD800'`, 1, /lone UTF-16 surrogate/);
  assertLexError("'\uDC00x'", 1, /lone UTF-16 surrogate/);
});

test('a character that starts no token is refused and named', () => {
  assertLexError("deviceId = 'x'; DROP", 15, /expected a name, number, string or operator, found the character ';'/);
  assertLexError('a # b', 3, /found the character '#'/);
  assertLexError('a \u0007 b', 3, /found the character U\+0007/);
  assertLexError('caf\u00e9', 4, /found the character 'é'/);
  assertLexError('a ! b', 4, /expected '=' after '!'/);
  assertLexError('a !', 4, /found the end of the query/);
});

test('tokens are described in messages by kind', () => {
  const describe = (text: string): string[] => tokenize(text).map((t: Token) => describeToken(t));
  assert.deepEqual(describe(`AND 'x' 12 >=`), ["'AND'", "the string 'x'", 'the number 12', "'>='", 'the end of the query']);
  assert.match(describe(`'${'y'.repeat(100)}'`)[0], /^the string 'y{39}…$/);
});
