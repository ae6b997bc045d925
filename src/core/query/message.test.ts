import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { QueryExpr } from '../../ports/store/query.js';
import {
  QuerySyntaxError, evaluateMessageCondition, parseBodyPath, parseMessageCondition, readBodyNumber, type MessageFacts,
} from './index.js';

const FACTS: MessageFacts = {
  system: {
    contentType: 'application/json', contentEncoding: 'utf-8', connectionDeviceId: 'd1', connectionModuleId: '',
    'iothub-connection-device-id': 'd1', 'iothub-enqueuedtime': '2026-04-01T10:00:00Z', 'dt-dataschema': 'dtmi:x;1',
  },
  app: { processingPath: 'hot', level: '5', 'alert-kind': 'fire' },
  body: { temp: 31, name: 'Sensor-7', ok: true, none: null, arr: [1, 'two'], nested: { a: { b: 2 } }, 'x y': 'spaced', n: '31' },
  twin: { tags: { site: 'paris', floor: 3 }, properties: { desired: { mode: 'eco' }, reported: { fw: '1.0' } } },
};

function holds(text: string, facts: MessageFacts = FACTS): boolean {
  return evaluateMessageCondition(parseMessageCondition(text), facts);
}

function assertConditionError(text: string, position: number, message: RegExp): void {
  assert.throws(() => parseMessageCondition(text), (err: unknown) => {
    assert.ok(err instanceof QuerySyntaxError, `not a QuerySyntaxError: ${String(err)}`);
    assert.equal(err.code, 400004);
    assert.equal(err.position, position, err.message);
    assert.match(err.message, message);
    return true;
  });
}

test('true and false alone are conditions (IoT Hub’s default route is `true`)', () => {
  assert.equal(holds('true'), true);
  assert.equal(holds('TRUE'), true);
  assert.equal(holds('false'), false);
  assert.equal(holds('true', { system: {}, app: {}, body: undefined }), true);
});

test('$body paths keep JSON types: a number compares with numbers only', () => {
  assert.equal(holds('$body.temp > 30'), true);
  assert.equal(holds('$body.n > 30'), false, "'31' is a string");
  assert.equal(holds("$body.n = '31'"), true);
  assert.equal(holds('$body.ok = true AND $body.none = null'), true);
  assert.equal(holds('$body.nested.a.b * 2 = 4'), true);
  assert.equal(holds("$body['x y'] = 'spaced'"), true);
  assert.equal(holds('$Body.temp = 31'), true, '$body matches case-insensitively');
  assert.equal(holds('$body.Temp = 31'), false, 'keys inside the body are case-sensitive');
  assert.equal(holds('$body.temp > 30', { ...FACTS, body: undefined }), false, 'a body that is not JSON has no fields');
});

test('application properties are strings, by exact name', () => {
  assert.equal(holds("processingPath = 'hot'"), true);
  assert.equal(holds("processingPath != 'cold'"), true);
  assert.equal(holds("ProcessingPath = 'hot'"), false);
  assert.equal(holds('level = 5'), false, 'a string never equals a number');
  assert.equal(holds("level = '5'"), true);
  assert.equal(holds("level > '10'"), true, 'strings compare as strings');
});

test('system properties: $contentType, $connectionDeviceId and hyphenated names, looked up case-insensitively', () => {
  assert.equal(holds("$contentType = 'application/json'"), true);
  assert.equal(holds("$CONTENTTYPE = 'application/json' AND $contentEncoding = 'utf-8'"), true);
  assert.equal(holds("$connectionDeviceId = 'd1'"), true);
  assert.equal(holds("$iothub-connection-device-id = 'd1'"), true);
  assert.equal(holds("$iothub-enqueuedtime >= '2026-04-01'"), true);
  assert.equal(holds("$dt-dataschema = 'dtmi:x;1'"), true);
  assert.equal(holds("$messageId = 'x'"), false, 'a property the message does not have is undefined');
  assert.equal(holds("$contentType = 'application/json'", { ...FACTS, system: { ContentType: 'application/json' } }), true);
  assert.equal(holds('$body.temp -1 = 30'), true, 'a hyphen joins only $-names');
});

test('$twin reads tags and desired and reported properties; without a twin they are undefined', () => {
  assert.equal(holds("$twin.tags.site = 'paris' AND $twin.tags.floor >= 3"), true);
  assert.equal(holds("$twin.properties.desired.mode = 'eco'"), true);
  assert.equal(holds("$twin.Properties.Reported.fw = '1.0'"), true);
  assert.equal(holds("$twin.tags.site = 'paris'", { ...FACTS, twin: undefined }), false);
  assert.equal(holds("NOT ($twin.tags.site = 'paris')", { ...FACTS, twin: undefined }), false);
});

test('usesTwin and usesBody say what a condition reads', () => {
  const flags = (text: string): [boolean, boolean] => {
    const c = parseMessageCondition(text);
    return [c.usesTwin, c.usesBody];
  };
  assert.deepEqual(flags('true'), [false, false]);
  assert.deepEqual(flags("processingPath = 'hot' AND $contentType = 'x'"), [false, false]);
  assert.deepEqual(flags('$body.temp > 1'), [false, true]);
  assert.deepEqual(flags("IS_DEFINED($twin.tags.x) OR ARRAY_CONTAINS($body.arr, 1)"), [true, true]);
  const c = parseMessageCondition('$body.temp > 1');
  assert.equal(c.text, '$body.temp > 1');
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.expr));
});

test('functions work on message fields', () => {
  assert.equal(holds("STARTS_WITH($body.name, 'Sensor') AND ENDSWITH(LOWER($body.name), '-7')"), true);
  assert.equal(holds("CONTAINS(processingPath, 'o') AND LENGTH(processingPath) = 3"), true);
  assert.equal(holds("ARRAY_CONTAINS($body.arr, 'two') AND NOT ARRAY_CONTAINS($body.arr, 2)"), true);
  assert.equal(holds('IS_DEFINED($body.temp) AND NOT IS_DEFINED($body.gone) AND IS_OBJECT($body.nested)'), true);
  assert.equal(holds("UPPER($contentType) = 'APPLICATION/JSON'"), true);
  assert.equal(holds('IS_STRING(level) AND NOT IS_NUMBER(level)'), true);
});

test('missing fields are undefined: three-valued logic, never a match', () => {
  assert.equal(holds('$body.gone = 1'), false);
  assert.equal(holds('NOT ($body.gone = 1)'), false);
  assert.equal(holds('$body.gone != 1'), false);
  assert.equal(holds('$body.gone = 1 OR $body.temp = 31'), true);
  assert.equal(holds('$body.gone = 1 AND false'), false);
  assert.equal(holds('NOT ($body.gone = 1 AND false)'), true);
  assert.equal(holds('NOT (nope = 1 OR false)'), false);
  assert.equal(holds("$body.temp IN [31, 'x']"), true);
  assert.equal(holds('$body.temp NIN [30, 32]'), true);
  assert.equal(holds('$body.gone NIN [30, 32]'), false);
});

test('syntax errors name their position', () => {
  assertConditionError('$body.temp >', 13, /expected a value after '>', found the end of the query/);
  assertConditionError("$twin.site = 'x'", 1, /unknown attribute '\$twin\.site'; use \$twin\.tags\.…, \$twin\.properties\.desired\.…/);
  assertConditionError('true AND $twin.properties = 1', 10, /unknown attribute '\$twin\.properties'/);
  assertConditionError('level.x = 1', 1, /'level' is an application property, a string; it has no member 'x'/);
  assertConditionError('x = 1 AND $contentType.a = 1', 11, /'\$contentType' is a system property, a string; it has no member 'a'/);
  assertConditionError('$ = 1', 1, /expected a system property name after '\$'/);
  assertConditionError('$body.arr[0] = 1', 11, /expected a quoted key/);
  assertConditionError('FOO($body.x)', 1, /unknown function 'FOO'/);
  assertConditionError('ARRAY_CONTAINS(LOWER(x), 1)', 16, /ARRAY_CONTAINS takes a path/);
  assertConditionError('$body.x = 1 $body.y = 2', 13, /expected AND, OR or the end of the condition/);
  assertConditionError('', 1, /expected a value at the start/);
  assertConditionError('x'.repeat(8193), 8193, /the condition is 8193 characters long/);
});

test('a routing condition is not a fleet query: its expression is no QueryExpr a Store compiles', () => {
  const c = parseMessageCondition('$body.temp > 1');
  // @ts-expect-error -- message fields never reach the SQL compiler, which takes QueryExpr<FieldRef> only.
  const sql: QueryExpr = c.expr;
  assert.ok(sql);
});

test('parseBodyPath takes $body.a.b or a.b; readBodyNumber reads numbers only', () => {
  assert.deepEqual(parseBodyPath('$body.temperature'), ['temperature']);
  assert.deepEqual(parseBodyPath('readings.temp'), ['readings', 'temp']);
  assert.deepEqual(parseBodyPath("$body['x y'].z"), ['x y', 'z']);
  assert.deepEqual(parseBodyPath('$BODY'), []);
  assert.throws(() => parseBodyPath('$twin.tags.x'), (err: unknown) => err instanceof QuerySyntaxError && err.position === 1);
  assert.throws(() => parseBodyPath('a..b'), (err: unknown) => err instanceof QuerySyntaxError && err.position === 3);
  assert.throws(() => parseBodyPath('a b'), (err: unknown) => err instanceof QuerySyntaxError && err.position === 3);
  assert.throws(() => parseBodyPath(''), QuerySyntaxError);
  assert.equal(readBodyNumber(FACTS.body, ['temp']), 31);
  assert.equal(readBodyNumber(FACTS.body, ['nested', 'a', 'b']), 2);
  assert.equal(readBodyNumber(FACTS.body, ['n']), undefined);
  assert.equal(readBodyNumber(FACTS.body, ['gone', 'x']), undefined);
  assert.equal(readBodyNumber(42, []), 42);
  assert.equal(readBodyNumber(undefined, ['temp']), undefined);
});
