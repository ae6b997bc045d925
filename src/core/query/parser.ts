/**
 * Tokens → syntax tree, by recursive descent. The tree keeps paths as written (the checker resolves them against a
 * collection, which is only known after FROM) and the position of each node for the checker's errors.
 */

import { QuerySyntaxError } from '../errors/index.js';
import type { Aggregate, ArithmeticOp, CompareOp, QueryCollection, ScalarValue } from '../../ports/store/query.js';
import { describeToken, tokenize, type SymbolText, type Token, type TokenizeOptions } from './lexer.js';
import {
  MAX_IN_VALUES, MAX_NESTING, type RawExpr, type RawOrderKey, type RawPath, type RawQuery, type RawSelect, type RawSelectItem,
  type RawAlias,
} from './syntax.js';

const MAX_TOP = 2 ** 31 - 1;

const RESERVED: ReadonlySet<string> = new Set([
  'SELECT', 'TOP', 'FROM', 'WHERE', 'GROUP', 'ORDER', 'BY', 'AS', 'ASC', 'DESC',
  'AND', 'OR', 'NOT', 'IN', 'NIN', 'TRUE', 'FALSE', 'NULL', 'UNDEFINED',
]);
const KEYWORD_LITERALS: Readonly<Record<string, ScalarValue | undefined>> = {
  TRUE: true, FALSE: false, NULL: null, UNDEFINED: undefined,
};
const AGGREGATES: Readonly<Record<string, Aggregate>> = { COUNT: 'count', SUM: 'sum', AVG: 'avg', MIN: 'min', MAX: 'max' };
const COMPARE_OPS: Readonly<Partial<Record<SymbolText, CompareOp>>> = {
  '=': '=', '!=': '!=', '<>': '!=', '<': '<', '<=': '<=', '>': '>', '>=': '>=',
};
const ADDITIVE_OPS: ReadonlySet<string> = new Set(['+', '-']);
const MULTIPLICATIVE_OPS: ReadonlySet<string> = new Set(['*', '/', '%']);

/** Whether a key can be written into SQL JSON-path text safely: the promise FieldRef makes to the stores. */
function isValidSegment(segment: string): boolean {
  return segment.length > 0 && !/['"\\\u0000-\u001f\u007f-\u009f]/u.test(segment);
}

function tooDeep(position: number): never {
  throw new QuerySyntaxError(position, `the condition nests deeper than ${MAX_NESTING} levels; simplify it`);
}

function depthOf(position: number, ...children: readonly RawExpr[]): number {
  const depth = 1 + Math.max(0, ...children.map((c) => c.depth));
  return depth > MAX_NESTING ? tooDeep(position) : depth;
}

class Parser {
  private i = 0;
  private nesting = 0;

  constructor(private readonly tokens: readonly Token[]) {}

  private peek(ahead = 0): Token { return this.tokens[Math.min(this.i + ahead, this.tokens.length - 1)]; }
  private advance(): Token { return this.tokens[this.i < this.tokens.length - 1 ? this.i++ : this.i]; }

  private afterPrevious(): string {
    return this.i === 0 ? 'at the start' : `after ${describeToken(this.tokens[this.i - 1])}`;
  }

  fail(expected: string, token = this.peek()): never {
    throw new QuerySyntaxError(token.position, `expected ${expected}, found ${describeToken(token)}`);
  }

  private isWord(word: string, token = this.peek()): boolean {
    return token.kind === 'name' && token.text.toUpperCase() === word;
  }
  private isSymbol(symbol: SymbolText, token = this.peek()): boolean {
    return token.kind === 'symbol' && token.text === symbol;
  }
  private acceptWord(word: string): boolean {
    if (!this.isWord(word)) return false;
    this.advance();
    return true;
  }
  private acceptSymbol(symbol: SymbolText): boolean {
    if (!this.isSymbol(symbol)) return false;
    this.advance();
    return true;
  }
  private expectWord(word: string, expected: string): void {
    if (!this.acceptWord(word)) this.fail(expected);
  }
  private expectSymbol(symbol: SymbolText, expected: string): void {
    if (!this.acceptSymbol(symbol)) this.fail(expected);
  }

  expectEnd(expected: string): void {
    if (this.peek().kind !== 'end') this.fail(expected);
  }

  query(): RawQuery {
    this.expectWord('SELECT', 'SELECT at the start of the query');
    const top = this.acceptWord('TOP') ? this.top() : undefined;
    const select = this.selectList();
    this.expectWord('FROM', `${this.whatMayFollow(select)} ${this.afterPrevious()}`);
    const collection = this.collection();
    const where = this.acceptWord('WHERE') ? this.condition() : undefined;
    const groupBy = this.isWord('GROUP') ? this.groupBy() : undefined;
    const orderByPosition = this.isWord('ORDER') ? this.peek().position : undefined;
    const orderBy = orderByPosition !== undefined ? this.orderBy() : undefined;
    this.expectEnd(this.clausesStillAllowed(where, groupBy, orderBy));
    return {
      select, collection,
      ...(top !== undefined && { top }), ...(where && { where }), ...(groupBy && { groupBy }),
      ...(orderBy && { orderBy, orderByPosition }),
    };
  }

  private whatMayFollow(select: RawSelect): string {
    if (select.kind === 'all') return 'FROM';
    return select.items[select.items.length - 1].alias ? "',' or FROM" : "',', AS or FROM";
  }

  private clausesStillAllowed(where?: RawExpr, groupBy?: readonly RawPath[], orderBy?: readonly RawOrderKey[]): string {
    if (orderBy) return "',', ASC, DESC or the end of the query";
    if (groupBy) return "',', ORDER BY or the end of the query";
    if (where) return 'AND, OR, GROUP BY, ORDER BY or the end of the query';
    return 'WHERE, GROUP BY, ORDER BY or the end of the query';
  }

  private top(): number {
    const token = this.advance();
    const isWhole = token.kind === 'number' && Number.isInteger(token.value) && token.value >= 1 && token.value <= MAX_TOP;
    if (!isWhole) this.fail(`a whole number from 1 to ${MAX_TOP} after TOP`, token);
    return token.value;
  }

  private selectList(): RawSelect {
    const star = this.peek();
    if (this.acceptSymbol('*')) {
      if (this.isSymbol(',')) this.fail("FROM after '*' ('*' must be the only item in the select list)");
      return { kind: 'all', position: star.position };
    }
    const items: RawSelectItem[] = [this.selectItem("'*', a path or an aggregate such as COUNT()")];
    while (this.acceptSymbol(',')) items.push(this.selectItem("a path or an aggregate such as COUNT() ('*' must be the only item)"));
    return { kind: 'items', items };
  }

  private selectItem(expected: string): RawSelectItem {
    const token = this.peek();
    const isName = token.kind === 'name' && !RESERVED.has(token.text.toUpperCase());
    if (!isName) this.fail(`${expected} ${this.afterPrevious()}`);
    if (this.isSymbol('(', this.peek(1))) return { ...this.aggregate(), ...this.alias() };
    const path = this.path('a path');
    return { kind: 'path', path, position: path.position, ...this.alias() };
  }

  private aggregate(): RawSelectItem {
    const name = this.advance();
    const label = name.text.toUpperCase();
    if (!Object.hasOwn(AGGREGATES, label)) {
      this.fail('a path or one of the aggregates COUNT(), SUM(…), AVG(…), MIN(…), MAX(…) in the select list', name);
    }
    const aggregate = AGGREGATES[label];
    this.advance();
    if (aggregate === 'count') {
      this.expectSymbol(')', "')' after 'COUNT(' (COUNT takes no argument)");
      return { kind: 'aggregate', aggregate, position: name.position };
    }
    const arg = this.path(`a path in ${label}(…)`);
    this.expectSymbol(')', `')' after the path in ${label}(…) (${label} takes one path)`);
    return { kind: 'aggregate', aggregate, arg, position: name.position };
  }

  private alias(): { alias?: RawAlias } {
    if (!this.acceptWord('AS')) return {};
    const token = this.peek();
    if (token.kind !== 'name' || RESERVED.has(token.text.toUpperCase())) this.fail('a name after AS');
    this.advance();
    return { alias: { name: token.text, position: token.position } };
  }

  private collection(): QueryCollection {
    if (!this.acceptWord('DEVICES')) this.fail('a collection (devices, devices.modules or devices.jobs) after FROM');
    if (!this.acceptSymbol('.')) return 'devices';
    if (this.acceptWord('MODULES')) return 'modules';
    if (this.acceptWord('JOBS')) return 'jobs';
    return this.fail("modules or jobs after 'devices.'");
  }

  private groupBy(): RawPath[] {
    this.advance();
    this.expectWord('BY', "BY after GROUP");
    const paths: RawPath[] = [];
    do paths.push(this.path(`a path ${this.afterPrevious()}`)); while (this.acceptSymbol(','));
    return paths;
  }

  private orderBy(): RawOrderKey[] {
    this.advance();
    this.expectWord('BY', "BY after ORDER");
    const keys: RawOrderKey[] = [];
    do {
      const path = this.path(`a path ${this.afterPrevious()}`);
      const descending = this.acceptWord('DESC');
      if (!descending) this.acceptWord('ASC');
      keys.push({ path, descending });
    } while (this.acceptSymbol(','));
    return keys;
  }

  /** `name(.name | ['key'])*`; a quoted key is checked here, where its position is known. */
  path(expected: string): RawPath {
    const first = this.peek();
    if (first.kind !== 'name' || RESERVED.has(first.text.toUpperCase())) this.fail(expected);
    this.advance();
    const segments = [first.text];
    for (;;) {
      if (this.acceptSymbol('.')) {
        const name = this.peek();
        if (name.kind !== 'name') this.fail("a name after '.'");
        segments.push(this.advance().text);
      } else if (this.acceptSymbol('[')) {
        segments.push(this.quotedKey());
        this.expectSymbol(']', "']' after the key");
      } else {
        return { segments, position: first.position };
      }
    }
  }

  private quotedKey(): string {
    const token = this.peek();
    if (token.kind !== 'string') this.fail("a quoted key such as ['my key'] after '['");
    if (!isValidSegment(token.value)) {
      throw new QuerySyntaxError(token.position,
        `the path segment ${JSON.stringify(token.value)} may not be empty nor hold ', ", \\ or control characters`);
    }
    this.advance();
    return token.value;
  }

  condition(): RawExpr { return this.logical('OR'); }

  /** OR over AND over NOT. A run of one operator becomes a balanced tree: AND and OR associate, even with undefined. */
  private logical(word: 'OR' | 'AND'): RawExpr {
    const next = (): RawExpr => (word === 'OR' ? this.logical('AND') : this.not());
    const operands = [next()];
    const positions: number[] = [];
    while (this.isWord(word)) {
      positions.push(this.advance().position);
      operands.push(next());
    }
    return balance(word === 'OR' ? 'or' : 'and', operands, positions);
  }

  private enter(position: number): void {
    if (++this.nesting > MAX_NESTING) tooDeep(position);
  }

  private not(): RawExpr {
    const token = this.peek();
    if (!this.acceptWord('NOT')) return this.comparison();
    this.enter(token.position);
    const operand = this.not();
    this.nesting--;
    return { kind: 'not', operand, position: token.position, depth: depthOf(token.position, operand) };
  }

  private comparison(): RawExpr {
    const left = this.additive();
    const token = this.peek();
    const op = token.kind === 'symbol' ? COMPARE_OPS[token.text] : undefined;
    let result = left;
    if (op !== undefined) {
      this.advance();
      const right = this.additive();
      result = { kind: 'compare', op, left, right, position: token.position, depth: depthOf(token.position, left, right) };
    } else if (this.isWord('IN') || this.isWord('NIN')) {
      this.advance();
      const values = this.inList();
      const negated = token.text.toUpperCase() === 'NIN';
      result = { kind: 'in', negated, operand: left, values, position: token.position, depth: depthOf(token.position, left) };
    }
    const again = this.peek();
    const chains = (again.kind === 'symbol' && COMPARE_OPS[again.text] !== undefined) || this.isWord('IN') || this.isWord('NIN');
    if (result !== left && chains) this.fail('AND or OR between two comparisons (comparisons do not chain)');
    return result;
  }

  private additive(): RawExpr { return this.binary(ADDITIVE_OPS, () => this.multiplicative()); }
  private multiplicative(): RawExpr { return this.binary(MULTIPLICATIVE_OPS, () => this.unary()); }

  /** Left-associative, as arithmetic must be: floating-point addition does not associate. */
  private binary(ops: ReadonlySet<string>, operand: () => RawExpr): RawExpr {
    let left = operand();
    for (let token = this.peek(); token.kind === 'symbol' && ops.has(token.text); token = this.peek()) {
      this.advance();
      const right = operand();
      const op = token.text as ArithmeticOp;
      left = { kind: 'arithmetic', op, left, right, position: token.position, depth: depthOf(token.position, left, right) };
    }
    return left;
  }

  /** `-x`: a number literal is folded; anything else becomes `0 - x`, which is undefined for a non-number, as -x is. */
  private unary(): RawExpr {
    const minus = this.peek();
    if (!this.acceptSymbol('-')) return this.primary();
    this.enter(minus.position);
    const operand = this.unary();
    this.nesting--;
    if (operand.kind === 'literal' && typeof operand.value === 'number') {
      return { ...operand, value: operand.value === 0 ? 0 : -operand.value, position: minus.position };
    }
    const zero: RawExpr = { kind: 'literal', value: 0, position: minus.position, depth: 1 };
    return { kind: 'arithmetic', op: '-', left: zero, right: operand, position: minus.position, depth: depthOf(minus.position, operand) };
  }

  private primary(): RawExpr {
    const token = this.peek();
    if (token.kind === 'number' || token.kind === 'string') {
      this.advance();
      return { kind: 'literal', value: token.value, position: token.position, depth: 1 };
    }
    if (this.isSymbol('(')) return this.parenthesized();
    if (token.kind !== 'name') return this.fail(`a value ${this.afterPrevious()}`);
    const upper = token.text.toUpperCase();
    if (Object.hasOwn(KEYWORD_LITERALS, upper)) {
      this.advance();
      return { kind: 'literal', value: KEYWORD_LITERALS[upper], position: token.position, depth: 1 };
    }
    if (RESERVED.has(upper)) return this.fail(`a value ${this.afterPrevious()}`);
    if (this.isSymbol('(', this.peek(1))) return this.call();
    const path = this.path('a path');
    return { kind: 'path', path, position: path.position, depth: 1 };
  }

  private parenthesized(): RawExpr {
    const open = this.advance();
    this.enter(open.position);
    const inner = this.condition();
    this.nesting--;
    this.expectSymbol(')', `')' to close the '(' at position ${open.position}`);
    return inner;
  }

  private call(): RawExpr {
    const name = this.advance();
    this.advance();
    this.enter(name.position);
    const args: RawExpr[] = [];
    if (!this.acceptSymbol(')')) {
      do args.push(this.condition()); while (this.acceptSymbol(','));
      this.expectSymbol(')', `',' or ')' in the arguments of ${name.text}(…)`);
    }
    this.nesting--;
    return { kind: 'call', name: name.text, args, position: name.position, depth: depthOf(name.position, ...args) };
  }

  private inList(): ScalarValue[] {
    this.expectSymbol('[', `'[' to start the list ${this.afterPrevious()}`);
    const values: ScalarValue[] = [];
    do {
      if (values.length === MAX_IN_VALUES) {
        throw new QuerySyntaxError(this.peek().position, `an IN list holds at most ${MAX_IN_VALUES} values`);
      }
      values.push(this.listValue());
    } while (this.acceptSymbol(','));
    this.expectSymbol(']', "',' or ']' in the list");
    return values;
  }

  private listValue(): ScalarValue {
    const expected = `a string, number, true, false or null in the list ${this.afterPrevious()}`;
    const negative = this.acceptSymbol('-');
    const token = this.peek();
    if (token.kind === 'number') {
      this.advance();
      return negative && token.value !== 0 ? -token.value : token.value;
    }
    if (negative) return this.fail(`a number after '-'`);
    const upper = token.text.toUpperCase();
    const isLiteral = token.kind === 'name' && upper !== 'UNDEFINED' && Object.hasOwn(KEYWORD_LITERALS, upper);
    if (token.kind !== 'string' && !isLiteral) return this.fail(expected);
    this.advance();
    return token.kind === 'string' ? token.value : KEYWORD_LITERALS[upper] ?? null;
  }
}

function balance(kind: 'and' | 'or', operands: readonly RawExpr[], positions: readonly number[]): RawExpr {
  if (operands.length === 1) return operands[0];
  // Split after ceil(n/2): two or three operands come out as left-associative as they were written.
  const mid = Math.ceil(operands.length / 2);
  const left = balance(kind, operands.slice(0, mid), positions.slice(0, mid - 1));
  const right = balance(kind, operands.slice(mid), positions.slice(mid));
  const position = positions[mid - 1];
  return { kind, left, right, position, depth: depthOf(position, left, right) };
}

/** Parses `SELECT … FROM …` into a syntax tree; throws QuerySyntaxError with the position of the first problem. */
export function parseQueryText(text: string): RawQuery {
  const parser = new Parser(tokenize(text));
  return parser.query();
}

/** Parses a bare condition (a job's `queryCondition`, a route's condition); throws QuerySyntaxError. */
export function parseConditionText(text: string, options: TokenizeOptions = {}): RawExpr {
  const parser = new Parser(tokenize(text, options));
  const condition = parser.condition();
  parser.expectEnd('AND, OR or the end of the condition');
  return condition;
}

/** Parses a lone path (`$body.a['b c']`); throws QuerySyntaxError naming `expected` where no path starts. */
export function parsePathText(text: string, expected: string): RawPath {
  const parser = new Parser(tokenize(text));
  const path = parser.path(expected);
  parser.expectEnd("'.', '[' or the end of the path");
  return path;
}
