import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_QUERY_CHARS, QuerySyntaxError, parseCondition, parseQuery } from './index.js';

/** mulberry32: small, fast and seeded, so a failing case can be replayed from its seed and index. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEED = 0xc0441;

const VALID_QUERIES = [
  'SELECT * FROM devices',
  "SELECT * FROM devices WHERE tags.location.region = 'US'",
  "SELECT * FROM devices WHERE tags.location.region = 'US' AND properties.reported.connectivity IN ['wired', 'wifi']",
  'SELECT DeviceId, LastActivityTime FROM devices',
  'SELECT properties.reported.fw AS fw, COUNT() AS n FROM devices GROUP BY properties.reported.fw',
  "SELECT * FROM devices.modules WHERE properties.reported.status = 'scanning'",
  "SELECT * FROM devices.jobs WHERE devices.jobs.jobId = 'myJobId'",
  "SELECT * FROM devices.jobs WHERE devices.jobs.status = 'completed' ORDER BY devices.jobs.endTimeUtc DESC",
  'SELECT TOP 10 deviceId, status FROM devices ORDER BY lastActivityTime DESC, deviceId',
  'SELECT COUNT() AS total, AVG(properties.reported.temp), MAX(version) FROM devices WHERE status = "enabled"',
  "SELECT * FROM devices WHERE NOT (status = 'disabled' OR connectionState = 'Disconnected')",
  'SELECT * FROM devices WHERE properties.reported.temp * 1.8 + 32 > 0x50 AND -tags.offset < 1e3',
  "SELECT * FROM devices WHERE STARTSWITH(deviceId, 'sensor-') AND ENDS_WITH(LOWER(tags.name), 'x')",
  "SELECT * FROM devices WHERE ARRAY_CONTAINS(tags.zones, 'north') OR IS_DEFINED(tags.zone)",
  "SELECT * FROM devices WHERE tags['my key'][\"other\"] != null",
  'SELECT * FROM devices WHERE capabilities.iotEdge = true AND x509Thumbprint.primaryThumbprint = null',
  'SELECT * FROM devices WHERE properties.desired.$version > properties.reported.$version',
  'SELECT * FROM devices WHERE properties.desired.$metadata.$lastUpdated < \'2024-01-01\'',
  "SELECT tags.site, COUNT() FROM devices WHERE tags.site NIN ['lab', 'test'] GROUP BY tags.site",
  'SELECT * FROM devices.modules WHERE moduleId = \'$edgeAgent\' AND deviceId <> "d1"',
  "SELECT * FROM devices WHERE deviceId IN ['a', 'b', 'c'] AND cloudToDeviceMessageCount >= 3 % 2",
  'SELECT * FROM devices WHERE IS_NUMBER(tags.x) AND tags.x / 2 <= 10 - 1',
  "SELECT properties.reported, tags FROM devices WHERE CONTAINS(deviceId, 'ab\\u0041\\n')",
  'SELECT MIN(properties.reported.battery) AS low, SUM(tags.count) FROM devices.modules GROUP BY status',
  'SELECT * FROM devices WHERE statusUpdatedTime > \'2024\' ORDER BY tags.priority ASC',
  "SELECT * FROM devices WHERE (tags.a = 1 OR tags.b = 2) AND (tags.c = 3 OR NOT tags.d = undefined)",
  'SELECT * FROM devices WHERE LENGTH(tags.name) = 4 AND UPPER(tags.name) = \'ABCD\' AND IS_STRING(tags.name)',
  'SELECT deviceId, jobId, outcome FROM devices.jobs WHERE jobType = \'scheduleDeviceMethod\'',
  "SELECT * FROM devices WHERE tags.emoji = '😀' AND IS_PRIMITIVE(tags.emoji) AND IS_ARRAY(tags.list)",
  'SELECT * FROM devices WHERE IS_BOOL(tags.on) AND IS_OBJECT(tags.obj) AND IS_NULL(tags.gone)',
];

const TOKENS = [
  'SELECT', 'select', 'TOP', '5', 'FROM', 'devices', 'devices.modules', 'devices.jobs', 'WHERE', 'GROUP', 'BY', 'ORDER',
  'ASC', 'DESC', 'AS', 'AND', 'OR', 'NOT', 'IN', 'NIN', '*', ',', '.', '(', ')', '[', ']', '{', '}', '=', '!=', '<>', '<',
  '<=', '>', '>=', '+', '-', '/', '%', "'x'", '"y"', "'", '"', '\\', '0x1F', '1.5e3', '-0', '1e999', 'true', 'null',
  'undefined', 'deviceId', 'moduleId', 'status', 'tags', 'tags.a', "tags['k']", 'properties.reported.x',
  'properties.desired.$version', 'capabilities.iotEdge', 'etag', 'COUNT()', 'SUM', 'AVG(version)', 'LOWER',
  'IS_DEFINED', 'ARRAY_CONTAINS', 'STARTS_WITH', ';', '--', '/*', '\u0000', '😀', '\uD800', ' ', '\n', '((((',
  '))))', 'NOT NOT NOT', '$1', '__proto__', 'constructor', 'jobId',
];

const CHARS = "abcXYZ_$019 .,;()[]{}*+-/%=!<>'\"\\\n\t\u0000\u007f\u00e9\u2028😀\uD800\uDC00xe";

function pick<T>(rand: () => number, items: readonly T[]): T {
  return items[Math.floor(rand() * items.length)];
}

function tokenSoup(rand: () => number): string {
  const n = 1 + Math.floor(rand() * 25);
  const separator = rand() < 0.8 ? ' ' : '';
  return Array.from({ length: n }, () => pick(rand, TOKENS)).join(separator);
}

function mutate(rand: () => number, text: string): string {
  let out = text;
  const edits = 1 + Math.floor(rand() * 4);
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(rand() * (out.length + 1));
    const choice = rand();
    if (choice < 0.33) out = out.slice(0, at) + pick(rand, [...CHARS]) + out.slice(at);
    else if (choice < 0.66) out = out.slice(0, at) + out.slice(at + 1);
    else out = out.slice(0, at) + pick(rand, [...CHARS]) + out.slice(at + 1);
  }
  return out;
}

/** Parses, and fails the test unless the outcome is a plan or a well-formed QuerySyntaxError. */
function assertPlanOrSyntaxError(parse: (text: string) => unknown, text: string, label: string): void {
  try {
    const result = parse(text);
    assert.equal(typeof result, 'object', label);
  } catch (err) {
    if (!(err instanceof QuerySyntaxError)) assert.fail(`${label}: ${JSON.stringify(text)} threw ${String(err)}`);
    const lastPosition = [...text].length + 1;
    const positionOk = Number.isInteger(err.position) && err.position >= 1
      && (err.position <= lastPosition || err.position === MAX_QUERY_CHARS + 1);
    assert.ok(positionOk, `${label}: position ${err.position} outside ${JSON.stringify(text)}`);
    assert.ok(err.message.startsWith(`query error at position ${err.position}: `), `${label}: ${err.message}`);
  }
}

test('every seed query is valid', () => {
  for (const text of VALID_QUERIES) assert.doesNotThrow(() => parseQuery(text), text);
});

test('20,000 token soups and mutated queries give a plan or a QuerySyntaxError, quickly', { timeout: 120_000 }, () => {
  const rand = prng(SEED);
  let slowestMs = 0;
  for (let i = 0; i < 20_000; i++) {
    const text = i % 2 === 0 ? tokenSoup(rand) : mutate(rand, pick(rand, VALID_QUERIES));
    const started = performance.now();
    assertPlanOrSyntaxError(parseQuery, text, `seed ${SEED} case ${i} (query)`);
    assertPlanOrSyntaxError(parseCondition, text.replace(/^.*?WHERE /s, ''), `seed ${SEED} case ${i} (condition)`);
    slowestMs = Math.max(slowestMs, performance.now() - started);
  }
  // Linear-time parsing: no input this small should take long, however malformed.
  assert.ok(slowestMs < 500, `slowest case took ${slowestMs.toFixed(1)} ms`);
});

test('large inputs at the length limit parse or fail in linear time', () => {
  const cases = [
    `SELECT * FROM devices WHERE ${'('.repeat(8000)}`,
    `SELECT * FROM devices WHERE ${Array(1500).fill('tags.a=1').join(' OR ')}`.slice(0, MAX_QUERY_CHARS),
    `SELECT * FROM devices WHERE tags.a IN [${Array(2000).fill('1').join(',')}]`,
    `SELECT * FROM devices WHERE tags${".a".repeat(4000)} = 1`,
    `SELECT * FROM devices WHERE ${'-'.repeat(8000)}1`,
    `SELECT * FROM devices WHERE ${'LOWER('.repeat(1300)}`,
    `SELECT * FROM devices WHERE '${'\\u0041'.repeat(1300)}' = tags.a`,
    'SELECT '.repeat(1170),
  ];
  for (const [i, text] of cases.entries()) {
    const started = performance.now();
    assertPlanOrSyntaxError(parseQuery, text, `large case ${i}`);
    assert.ok(performance.now() - started < 500, `large case ${i} is slow`);
  }
});
