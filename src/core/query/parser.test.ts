import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FieldRef, QueryExpr, ScalarValue } from '../../ports/store/query.js';
import { MAX_QUERY_CHARS, QuerySyntaxError, parseCondition, parseQuery } from './index.js';

const lit = (value: ScalarValue | undefined): QueryExpr => ({ kind: 'literal', value });
const tag = (...path: string[]): QueryExpr => ({ kind: 'field', field: { kind: 'document', document: 'tags', path } });
const col = (column: Extract<FieldRef, { kind: 'column' }>['column']): QueryExpr => ({ kind: 'field', field: { kind: 'column', column } });
const eq = (left: QueryExpr, right: QueryExpr): QueryExpr => ({ kind: 'compare', op: '=', left, right });
const and = (left: QueryExpr, right: QueryExpr): QueryExpr => ({ kind: 'and', left, right });
const or = (left: QueryExpr, right: QueryExpr): QueryExpr => ({ kind: 'or', left, right });
const a = tag('a');
const b = tag('b');
const c = tag('c');
const d = tag('d');

function where(condition: string): QueryExpr | undefined {
  return parseQuery(`SELECT * FROM devices WHERE ${condition}`).where;
}

function assertQueryError(text: string, position: number, message: RegExp, parse: (t: string) => unknown = parseQuery): void {
  assert.throws(() => parse(text), (err: unknown) => {
    assert.ok(err instanceof QuerySyntaxError, `not a QuerySyntaxError: ${String(err)}`);
    assert.equal(err.code, 400004);
    assert.equal(err.httpStatus, 400);
    assert.equal(err.position, position, err.message);
    assert.match(err.message, new RegExp(`^query error at position ${position}: `));
    assert.match(err.message, message);
    return true;
  });
}

test('the smallest query selects everything from devices', () => {
  assert.deepEqual(parseQuery('SELECT * FROM devices'), { collection: 'devices', select: { kind: 'all' } });
});

test('keywords and collection names are case-insensitive', () => {
  assert.deepEqual(parseQuery("select * from DEVICES where tags.a = 'x'"), {
    collection: 'devices', select: { kind: 'all' }, where: eq(a, lit('x')),
  });
  assert.equal(parseQuery('SELECT * FROM Devices.Modules').collection, 'modules');
  assert.equal(parseQuery('SELECT * FROM devices.JOBS').collection, 'jobs');
});

test('TOP n takes a whole number from 1 to 2^31-1', () => {
  assert.equal(parseQuery('SELECT TOP 10 * FROM devices').top, 10);
  assert.equal(parseQuery('SELECT top 0x10 * FROM devices').top, 16);
  assert.equal(parseQuery(`SELECT TOP ${2 ** 31 - 1} * FROM devices`).top, 2 ** 31 - 1);
  assertQueryError('SELECT TOP 0 * FROM devices', 12, /expected a whole number from 1 to 2147483647 after TOP, found the number 0/);
  assertQueryError(`SELECT TOP ${2 ** 31} * FROM devices`, 12, /found the number 2147483648/);
  assertQueryError('SELECT TOP 1.5 * FROM devices', 12, /whole number/);
  assertQueryError('SELECT TOP -1 * FROM devices', 12, /found '-'/);
  assertQueryError('SELECT TOP * FROM devices', 12, /found '\*'/);
});

test('OR binds looser than AND, AND looser than NOT', () => {
  assert.deepEqual(where('tags.a = 1 OR tags.b = 2 AND NOT tags.c = 3'),
    or(eq(a, lit(1)), and(eq(b, lit(2)), { kind: 'not', operand: eq(c, lit(3)) })));
});

test('parentheses override precedence', () => {
  assert.deepEqual(where('(tags.a OR tags.b) AND tags.c'), and(or(a, b), c));
});

test('NOT applies to the whole comparison and may repeat', () => {
  assert.deepEqual(where('NOT NOT tags.a = 1'), { kind: 'not', operand: { kind: 'not', operand: eq(a, lit(1)) } });
});

test('a run of AND (or OR) is a balanced tree, left-associative for up to three operands', () => {
  assert.deepEqual(where('tags.a AND tags.b'), and(a, b));
  assert.deepEqual(where('tags.a AND tags.b AND tags.c'), and(and(a, b), c));
  assert.deepEqual(where('tags.a OR tags.b OR tags.c OR tags.d'), or(or(a, b), or(c, d)));
});

test('a long OR chain parses: balancing keeps it shallow', () => {
  const terms = Array.from({ length: 300 }, (_, i) => `deviceId = 'd${i}'`);
  const plan = parseQuery(`SELECT * FROM devices WHERE ${terms.join(' OR ')}`);
  assert.equal(plan.where?.kind, 'or');
});

test('every comparison operator, with <> meaning !=', () => {
  for (const op of ['=', '!=', '<', '<=', '>', '>='] as const) {
    assert.deepEqual(where(`tags.a ${op} 1`), { kind: 'compare', op, left: a, right: lit(1) });
  }
  assert.deepEqual(where('tags.a <> 1'), { kind: 'compare', op: '!=', left: a, right: lit(1) });
});

test('multiplication binds tighter than addition, both tighter than comparison, all left-associative', () => {
  const arith = (op: '+' | '-' | '*' | '/' | '%', left: QueryExpr, right: QueryExpr): QueryExpr => ({ kind: 'arithmetic', op, left, right });
  assert.deepEqual(where('tags.a + tags.b * 2 = 7'), eq(arith('+', a, arith('*', b, lit(2))), lit(7)));
  assert.deepEqual(where('tags.a - tags.b - 1 > 0'), { kind: 'compare', op: '>', left: arith('-', arith('-', a, b), lit(1)), right: lit(0) });
  assert.deepEqual(where('tags.a / 2 % 3 < 1'), { kind: 'compare', op: '<', left: arith('%', arith('/', a, lit(2)), lit(3)), right: lit(1) });
  assert.deepEqual(where('(tags.a + 1) * 2 = 4'), eq(arith('*', arith('+', a, lit(1)), lit(2)), lit(4)));
});

test('unary minus folds into a number literal and becomes 0 - x otherwise', () => {
  assert.deepEqual(where('tags.a = -5'), eq(a, lit(-5)));
  assert.deepEqual(where('tags.a = - -5'), eq(a, lit(5)));
  assert.deepEqual(where('tags.a = -0'), eq(a, lit(0)));
  assert.deepEqual(where('-tags.a = 1'), eq({ kind: 'arithmetic', op: '-', left: lit(0), right: a }, lit(1)));
});

test('literals: numbers, hexadecimal, strings in both quotes, true false null undefined in any case', () => {
  assert.deepEqual(where('tags.a = 0x1F'), eq(a, lit(31)));
  assert.deepEqual(where('tags.a = 1.5e3'), eq(a, lit(1500)));
  assert.deepEqual(where(`tags.a = "it's"`), eq(a, lit("it's")));
  assert.deepEqual(where(String.raw`tags.a = 'line\nnext \u00e9'`), eq(a, lit('line\nnext é')));
  assert.deepEqual(where('tags.a = TRUE'), eq(a, lit(true)));
  assert.deepEqual(where('tags.a = false'), eq(a, lit(false)));
  assert.deepEqual(where('tags.a = Null'), eq(a, lit(null)));
  assert.deepEqual(where('tags.a = undefined'), eq(a, lit(undefined)));
});

test('IN and NIN take a list of scalar literals', () => {
  assert.deepEqual(where("deviceId IN ['d1', 'd2']"), { kind: 'in', negated: false, operand: col('deviceId'), values: ['d1', 'd2'] });
  assert.deepEqual(where('tags.a nin [1, -2, 0x3, true, false, null, "x"]'),
    { kind: 'in', negated: true, operand: a, values: [1, -2, 3, true, false, null, 'x'] });
});

test('an IN list holds 1 to 1000 values', () => {
  const list = (n: number): string => Array.from({ length: n }, (_, i) => i).join(',');
  const plan = where(`tags.a IN [${list(1000)}]`);
  assert.equal(plan?.kind === 'in' && plan.values.length, 1000);
  assertQueryError(`SELECT * FROM devices WHERE tags.a IN [${list(1001)}]`, 40 + list(1000).length + 1, /an IN list holds at most 1000 values/);
  assertQueryError('SELECT * FROM devices WHERE tags.a IN []', 40, /expected a string, number, true, false or null in the list after '\[', found '\]'/);
});

test('an IN list refuses nested arrays, objects, undefined and paths', () => {
  assertQueryError('SELECT * FROM devices WHERE tags.a IN [1, [2]]', 43, /expected a string, number, true, false or null in the list after ',', found '\['/);
  assertQueryError('SELECT * FROM devices WHERE tags.a IN [{}]', 40, /found '\{'/);
  assertQueryError('SELECT * FROM devices WHERE tags.a IN [undefined]', 40, /found 'undefined'/);
  assertQueryError('SELECT * FROM devices WHERE tags.a IN [tags.b]', 40, /found 'tags'/);
  assertQueryError("SELECT * FROM devices WHERE tags.a IN ['x'", 43, /expected ',' or '\]' in the list, found the end/);
  assertQueryError('SELECT * FROM devices WHERE tags.a IN 1', 39, /expected '\[' to start the list after 'IN', found the number 1/);
  assertQueryError('SELECT * FROM devices WHERE tags.a IN [-x]', 41, /expected a number after '-'/);
});

test('paths take dotted names and quoted keys in brackets', () => {
  assert.deepEqual(where(`tags['my key']["other.key"].$x = 1`), eq(tag('my key', 'other.key', '$x'), lit(1)));
  assert.deepEqual(where('tags.select.from = 1'), eq(tag('select', 'from'), lit(1)));
});

test('a bracket key that is empty or holds quotes, backslashes or control characters is refused', () => {
  assertQueryError("SELECT * FROM devices WHERE tags[''] = 1", 34, /the path segment "" may not be empty nor hold/);
  assertQueryError(`SELECT * FROM devices WHERE tags["a'b"] = 1`, 34, /the path segment "a'b"/);
  assertQueryError(String.raw`SELECT * FROM devices WHERE tags['a\"b'] = 1`, 34, /the path segment "a\\"b"/);
  assertQueryError(String.raw`SELECT * FROM devices WHERE tags['a\\b'] = 1`, 34, /the path segment "a\\\\b"/);
  assertQueryError(String.raw`SELECT * FROM devices WHERE tags['a\nb'] = 1`, 34, /the path segment "a\\nb"/);
  assertQueryError('SELECT * FROM devices WHERE tags[1] = 1', 34, /expected a quoted key such as \['my key'\] after '\[', found the number 1/);
  assertQueryError('SELECT * FROM devices WHERE tags.1 = 1', 34, /expected a name after '\.', found the number \.?1/);
});

test('GROUP BY and ORDER BY take lists; ORDER BY keys default to ascending', () => {
  const plan = parseQuery('SELECT * FROM devices ORDER BY tags.a, deviceId DESC, status ASC');
  assert.deepEqual(plan.orderBy, [
    { field: { kind: 'document', document: 'tags', path: ['a'] }, descending: false },
    { field: { kind: 'column', column: 'deviceId' }, descending: true },
    { field: { kind: 'column', column: 'status' }, descending: false },
  ]);
  const grouped = parseQuery('SELECT COUNT() FROM devices GROUP BY status, tags.a');
  assert.deepEqual(grouped.groupBy, [{ kind: 'column', column: 'status' }, { kind: 'document', document: 'tags', path: ['a'] }]);
});

test('every clause together', () => {
  assert.deepEqual(parseQuery("SELECT TOP 3 deviceId FROM devices.modules WHERE status = 'enabled' ORDER BY lastActivityTime DESC"), {
    collection: 'modules',
    select: { kind: 'paths', items: [{ kind: 'path', path: ['deviceId'], alias: 'deviceId' }] },
    where: eq(col('status'), lit('enabled')),
    orderBy: [{ field: { kind: 'column', column: 'lastActivityTime' }, descending: true }],
    top: 3,
  });
});

test('parentheses nest up to 64 deep and no deeper', () => {
  const nested = (n: number): string => `${'('.repeat(n)}tags.a = 1${')'.repeat(n)}`;
  assert.deepEqual(where(nested(63)), eq(a, lit(1)));
  assertQueryError(`SELECT * FROM devices WHERE ${nested(65)}`, 29 + 64, /the condition nests deeper than 64 levels/);
});

test('nesting 1000 deep is a QuerySyntaxError, never a stack overflow', () => {
  for (const deep of ['('.repeat(1000), 'NOT '.repeat(1000), '-'.repeat(1000), 'LOWER('.repeat(1000)]) {
    assert.throws(() => parseQuery(`SELECT * FROM devices WHERE ${deep}tags.a`), (err: unknown) =>
      err instanceof QuerySyntaxError && /nests deeper than 64 levels/.test(err.message));
  }
});

test('a long arithmetic chain counts as nesting, since it cannot be rebalanced', () => {
  assert.ok(where(`tags.a = ${Array(60).fill('1').join(' + ')}`));
  assert.throws(() => where(`tags.a = ${Array(100).fill('1').join(' + ')}`), /nests deeper than 64 levels/);
});

test('query text over 8192 characters is refused before parsing; 8192 is fine', () => {
  const head = 'SELECT * FROM devices WHERE deviceId = ';
  const exactly = `${head}'${'x'.repeat(MAX_QUERY_CHARS - head.length - 2)}'`;
  assert.equal(exactly.length, 8192);
  assert.ok(parseQuery(exactly));
  assertQueryError(`${exactly} `, 8193, /the query is 8193 characters long; the limit is 8192/);
  assertQueryError('x'.repeat(9000), 8193, /the query is 9000 characters long; the limit is 8192$/);
  assertQueryError('x'.repeat(9000), 8193, /the query is 9000 characters long/, parseCondition);
});

test('malformed queries name the position, what was expected and what was found', () => {
  assertQueryError('', 1, /expected SELECT at the start of the query, found the end of the query/);
  assertQueryError('DELETE FROM devices', 1, /expected SELECT at the start of the query, found 'DELETE'/);
  assertQueryError('SELECT * devices', 10, /expected FROM after '\*', found 'devices'/);
  assertQueryError('SELECT deviceId devices', 17, /expected ',', AS or FROM after 'deviceId', found 'devices'/);
  assertQueryError('SELECT FROM devices', 8, /expected '\*', a path or an aggregate such as COUNT\(\) after 'SELECT', found 'FROM'/);
  assertQueryError('SELECT deviceId AS id devices', 23, /expected ',' or FROM after 'id', found 'devices'/);
  assertQueryError('SELECT *, deviceId FROM devices', 9, /'\*' must be the only item/);
  assertQueryError('SELECT deviceId, FROM devices', 18, /expected a path or an aggregate such as COUNT\(\) \('\*' must be the only item\) after ',', found 'FROM'/);
  assertQueryError('SELECT deviceId, * FROM devices', 18, /'\*' must be the only item\) after ',', found '\*'/);
  assertQueryError('SELECT * FROM', 14, /expected a collection \(devices, devices.modules or devices.jobs\) after FROM, found the end/);
  assertQueryError('SELECT * FROM twins', 15, /expected a collection .* found 'twins'/);
  assertQueryError('SELECT * FROM devices.things', 23, /expected modules or jobs after 'devices\.', found 'things'/);
  assertQueryError('SELECT * FROM devices d', 23, /expected WHERE, GROUP BY, ORDER BY or the end of the query, found 'd'/);
  assertQueryError('SELECT * FROM devices WHERE', 28, /expected a value after 'WHERE', found the end of the query/);
  assertQueryError('SELECT * FROM devices WHERE tags.a = AND', 38, /expected a value after '=', found 'AND'/);
  assertQueryError('SELECT * FROM devices WHERE tags.a = 1 tags.b', 40, /expected AND, OR, GROUP BY, ORDER BY or the end of the query, found 'tags'/);
  assertQueryError('SELECT * FROM devices WHERE (tags.a = 1', 40, /expected '\)' to close the '\(' at position 29, found the end/);
  assertQueryError('SELECT * FROM devices WHERE tags.a = 1)', 39, /found '\)'/);
  assertQueryError('SELECT * FROM devices WHERE tags.a = 1 = 2', 40, /expected AND or OR between two comparisons/);
  assertQueryError('SELECT * FROM devices WHERE tags.a = 1 IN [1]', 40, /comparisons do not chain/);
  assertQueryError('SELECT * FROM devices WHERE tags. = 1', 35, /expected a name after '\.', found '='/);
  assertQueryError("SELECT * FROM devices WHERE tags['a' = 1", 38, /expected '\]' after the key, found '='/);
  assertQueryError('SELECT * FROM devices WHERE LOWER(tags.a = 1', 45, /expected ',' or '\)' in the arguments of LOWER\(…\), found the end/);
  assertQueryError('SELECT * FROM devices GROUP status', 29, /expected BY after GROUP, found 'status'/);
  assertQueryError('SELECT * FROM devices ORDER BY', 31, /expected a path after 'BY', found the end/);
  assertQueryError('SELECT * FROM devices ORDER BY status UP', 39, /expected ',', ASC, DESC or the end of the query, found 'UP'/);
  assertQueryError('SELECT COUNT() FROM devices GROUP BY status ORDER', 50, /expected BY after ORDER/);
  assertQueryError('SELECT deviceId AS FROM devices', 20, /expected a name after AS, found 'FROM'/);
  assertQueryError("SELECT deviceId AS 'x' FROM devices", 20, /expected a name after AS, found the string 'x'/);
  assertQueryError('SELECT COUNT(*) FROM devices', 14, /expected '\)' after 'COUNT\(' \(COUNT takes no argument\), found '\*'/);
  assertQueryError('SELECT SUM() FROM devices', 12, /expected a path in SUM\(…\), found '\)'/);
  assertQueryError('SELECT SUM(version, 1) FROM devices', 19, /expected '\)' after the path in SUM\(…\)/);
  assertQueryError('SELECT LOWER(deviceId) FROM devices', 8, /expected a path or one of the aggregates COUNT\(\), .* found 'LOWER'/);
  assertQueryError('SELECT 1 FROM devices', 8, /found the number 1/);
});

test('SQL-looking text is data inside a string and refused outside one', () => {
  assertQueryError("SELECT * FROM devices WHERE deviceId = 'x''; DROP TABLE identities; --'", 43,
    /expected AND, OR, GROUP BY, ORDER BY or the end of the query, found the string '; DROP TABLE identities; --'/);
  assert.deepEqual(where(`deviceId = "x'; DROP TABLE identities; --"`), eq(col('deviceId'), lit("x'; DROP TABLE identities; --")));
  assertQueryError("SELECT * FROM devices WHERE deviceId = 'x'; DROP TABLE identities; --'", 43, /found the character ';'/);
  assertQueryError("SELECT * FROM devices WHERE tags['a''b'] = 1", 37, /expected '\]' after the key, found the string 'b'/);
  assertQueryError("SELECT * FROM devices WHERE deviceId = 'x' OR 1=1 --", 53, /expected a value after '-', found the end/);
  assertQueryError('SELECT * FROM devices WHERE deviceId = x/**/', 42, /expected a value after '\/', found '\*'/);
  assertQueryError('SELECT * FROM devices; SELECT * FROM identities', 22, /found the character ';'/);
  assertQueryError("SELECT * FROM devices WHERE tags[\"a']--\"] = 1", 34, /the path segment "a'\]--"/);
});

test('parseCondition takes a bare condition over devices', () => {
  assert.deepEqual(parseCondition("deviceId IN ['d1','d2']"), { kind: 'in', negated: false, operand: col('deviceId'), values: ['d1', 'd2'] });
  assert.deepEqual(parseCondition("tags.building = '43'"), eq(tag('building'), lit('43')));
  assert.deepEqual(parseCondition('moduleId = undefined'), eq(lit(undefined), lit(undefined)));
  assertQueryError('', 1, /expected a value at the start, found the end of the query/, parseCondition);
  assertQueryError('WHERE deviceId = 1', 1, /expected a value at the start, found 'WHERE'/, parseCondition);
  assertQueryError("deviceId = 'a' ORDER BY deviceId", 16, /expected AND, OR or the end of the condition, found 'ORDER'/, parseCondition);
});
