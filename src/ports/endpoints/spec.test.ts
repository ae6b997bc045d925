import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ensureDevCa } from '../../edges/tls/dev-ca.js';
import { checkEndpointSpec, InvalidEndpointSpec } from './index.js';

/** Asserts the document is refused naming `field`, and returns the message. */
function refused(doc: unknown, field: string): string {
  let message = '';
  assert.throws(() => checkEndpointSpec(doc), (err: unknown) => {
    assert.ok(err instanceof InvalidEndpointSpec, String(err));
    assert.equal(err.field, field, err.message);
    message = err.message;
    return true;
  });
  return message;
}

const webhook = { type: 'webhook', url: 'https://example.com/hook' };
const nats = { type: 'nats', url: 'nats://127.0.0.1:4222', subject: 'corral.telemetry' };
const postgres = { type: 'postgres', url: 'postgres://db.example.com/iot', table: 'events' };

test('valid specs of each type come back with only their fields', () => {
  assert.deepEqual(checkEndpointSpec(webhook), webhook);
  const full = { ...webhook, headers: { Authorization: 'Bearer x', 'X-Api-Key': 'k' }, secret: 's', timeoutMs: 5000 };
  assert.deepEqual(checkEndpointSpec(full), full);
  assert.deepEqual(checkEndpointSpec(nats), nats);
  assert.deepEqual(checkEndpointSpec({ ...nats, subject: 'dev.{deviceId}.out', jetstream: true }), { ...nats, subject: 'dev.{deviceId}.out', jetstream: true });
  assert.deepEqual(checkEndpointSpec(postgres), postgres);
  assert.deepEqual(checkEndpointSpec({ ...postgres, url: 'postgresql://u:p@h:5432/d', schema: 'corral_out' }), { ...postgres, url: 'postgresql://u:p@h:5432/d', schema: 'corral_out' });
});

test('a document that is not an object, or of an unknown type, is refused', () => {
  refused(null, '(document)');
  refused([webhook], '(document)');
  refused('webhook', '(document)');
  assert.match(refused({ type: 'kafka', url: 'x' }, 'type'), /"kafka"/);
  refused({ url: 'https://x' }, 'type');
});

test('an unknown field is refused by name', () => {
  refused({ ...webhook, retries: 3 }, 'retries');
  refused({ ...nats, table: 'x' }, 'table');
  refused({ ...postgres, jetstream: true }, 'jetstream');
});

test('webhook: plain http, other schemes, credentials in the URL and over-long URLs are refused', () => {
  assert.match(refused({ ...webhook, url: 'http://example.com/hook' }, 'url'), /https/);
  refused({ ...webhook, url: 'ftp://example.com/' }, 'url');
  refused({ ...webhook, url: 'not a url' }, 'url');
  refused({ ...webhook, url: 42 }, 'url');
  refused({ type: 'webhook' }, 'url');
  const credentials = refused({ ...webhook, url: 'https://user:pa55word@example.com/' }, 'url');
  assert.doesNotMatch(credentials, /pa55word/);
  const long = refused({ ...webhook, url: 'https://example.com/' + 'a'.repeat(2048) }, 'url');
  assert.match(long, /2068 characters/);
  assert.doesNotThrow(() => checkEndpointSpec({ ...webhook, url: 'https://example.com/' + 'a'.repeat(2028) }));
});

test('webhook headers: names must be tokens, not reserved, at most 20; values are never echoed', () => {
  refused({ ...webhook, headers: ['Authorization'] }, 'headers');
  refused({ ...webhook, headers: { 'bad name': 'v' } }, 'headers["bad name"]');
  refused({ ...webhook, headers: { 'x:y': 'v' } }, 'headers["x:y"]');
  for (const name of ['Host', 'content-length', 'Content-Type', 'Transfer-Encoding', 'X-Corral-Signature', 'x-corral-route']) {
    refused({ ...webhook, headers: { [name]: 'v' } }, `headers[${JSON.stringify(name)}]`);
  }
  refused({ ...webhook, headers: { 'X-A': '1', 'x-a': '2' } }, 'headers["x-a"]');
  const many = Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`x-h${i}`, 'v']));
  assert.match(refused({ ...webhook, headers: many }, 'headers'), /21/);
  assert.doesNotThrow(() => checkEndpointSpec({ ...webhook, headers: Object.fromEntries(Object.entries(many).slice(0, 20)) }));
  const injected = refused({ ...webhook, headers: { Authorization: 'Bearer top-secret\r\nX-Evil: 1' } }, 'headers["Authorization"]');
  assert.doesNotMatch(injected, /top-secret/);
  refused({ ...webhook, headers: { Authorization: 7 } }, 'headers["Authorization"]');
  const huge = refused({ ...webhook, headers: { Authorization: 'Bearer ' + 'k'.repeat(5000) } }, 'headers["Authorization"]');
  assert.doesNotMatch(huge, /kkkk/);
});

test('webhook secret: a non-empty string, never echoed', () => {
  refused({ ...webhook, secret: '' }, 'secret');
  refused({ ...webhook, secret: 12345 }, 'secret');
  const long = refused({ ...webhook, secret: 'S'.repeat(1025) }, 'secret');
  assert.doesNotMatch(long, /SSSS/);
});

test('webhook timeoutMs: a whole number from 100 to 60000', () => {
  for (const bad of [99, 60_001, 1.5, '1000', null, -1]) {
    assert.ok(refused({ ...webhook, timeoutMs: bad }, 'timeoutMs').includes(`is ${JSON.stringify(bad)};`), String(bad));
  }
  for (const good of [100, 60_000]) assert.doesNotThrow(() => checkEndpointSpec({ ...webhook, timeoutMs: good }));
});

test('webhook caCertificate: PEM certificates that parse', () => {
  const dir = mkdtempSync(join(tmpdir(), 'corral-spec-'));
  try {
    const { ca, cert } = ensureDevCa(dir, ['localhost']);
    assert.equal((checkEndpointSpec({ ...webhook, caCertificate: ca }) as { caCertificate?: string }).caCertificate, ca);
    assert.doesNotThrow(() => checkEndpointSpec({ ...webhook, caCertificate: cert })); // a bundle of two
    refused({ ...webhook, caCertificate: 'hello' }, 'caCertificate');
    refused({ ...webhook, caCertificate: 7 }, 'caCertificate');
    const broken = ca.replace(/\n[A-Za-z0-9+/]{10}/, '\n!!!!!!!!!!');
    assert.match(refused({ ...webhook, caCertificate: broken }, 'caCertificate'), /certificate 1/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('nats: URL scheme nats, subject a literal subject where {deviceId} is the only placeholder', () => {
  refused({ ...nats, url: 'https://127.0.0.1:4222' }, 'url');
  assert.doesNotMatch(refused({ ...nats, url: 'tls://u:hunter2@h' }, 'url'), /hunter2/);
  for (const subject of ['', 'a..b', '.a', 'a.', 'a.*', 'a.>', 'a b', 'a.\tb', 'a.{device}', 'a.{deviceId', 'x'.repeat(257), 7]) {
    refused({ ...nats, subject }, 'subject');
  }
  assert.doesNotThrow(() => checkEndpointSpec({ ...nats, subject: '{deviceId}' }));
  assert.doesNotThrow(() => checkEndpointSpec({ ...nats, subject: 'a.dev-{deviceId}-x.b' }));
  refused({ ...nats, jetstream: 'yes' }, 'jetstream');
});

test('postgres: URL scheme postgres, table and schema plain identifiers', () => {
  refused({ ...postgres, url: 'mysql://h/db' }, 'url');
  refused({ ...postgres, table: 'a-b' }, 'table');
  refused({ ...postgres, table: 'a'.repeat(64) }, 'table');
  assert.match(refused({ ...postgres, table: 'x"; DROP TABLE y' }, 'table'), /DROP TABLE/);
  refused({ ...postgres, schema: '9lives' }, 'schema');
  refused({ type: 'postgres', url: postgres.url }, 'table');
});
