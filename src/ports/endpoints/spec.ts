import { X509Certificate } from 'node:crypto';
import { redactUrl } from '../bus/nats/index.js';
import { InvalidEndpointSpec, type EndpointSpec } from './index.js';
import { DEVICE_ID_PLACEHOLDER } from './nats.js';
import type { WebhookSpec } from './webhook.js';

/** Longest URL accepted: what browsers and most servers handle. */
const MAX_URL_CHARS = 2048;
const MAX_HEADERS = 20;
const MAX_HEADER_NAME_CHARS = 128;
/** Node's default limit on all request headers together is 16 KiB; each value gets a share well inside it. */
const MAX_HEADER_VALUE_CHARS = 4096;
const MAX_SECRET_CHARS = 1024;
/** A CA bundle of a few dozen certificates. */
const MAX_CA_CHARS = 64 * 1024;
const TIMEOUT_MS = { min: 100, max: 60_000 } as const;
/** A subject's length before `{deviceId}` is filled in; NATS allows more, but a routing subject this long is a mistake. */
const MAX_SUBJECT_CHARS = 256;
/** RFC 9110 §5.6.2 token: a header name. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** What Node accepts in a header value (RFC 9110 field-vchar, SP and HTAB, plus obs-text). */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
/**
 * Headers the webhook sets itself (content-*, x-corral-*), or that describe the connection rather than the request;
 * a spec setting them would corrupt the request or forge our signature.
 */
const RESERVED_HEADERS = new Set(['host', 'content-length', 'content-type', 'connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'expect']);
const RESERVED_HEADER_PREFIX = 'x-corral-';
/** Letters, digits and '_', not starting with a digit; 63 is PostgreSQL's NAMEDATALEN - 1 (longer names are cut). */
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

const FIELDS = {
  webhook: ['type', 'url', 'headers', 'secret', 'caCertificate', 'timeoutMs'],
  nats: ['type', 'url', 'subject', 'jetstream'],
  postgres: ['type', 'url', 'table', 'schema'],
} as const;

type Doc = Readonly<Record<string, unknown>>;

/**
 * The EndpointSpec a JSON document (a REST body) describes, with only the known fields. Throws InvalidEndpointSpec
 * naming the first bad field and the value seen; a secret's or header's value is never shown, a URL's password
 * never.
 */
export function checkEndpointSpec(doc: unknown): EndpointSpec {
  if (!isObject(doc)) throw new InvalidEndpointSpec('(document)', `is ${shown(doc)}; an endpoint spec is a JSON object`);
  const type = doc.type;
  if (type !== 'webhook' && type !== 'nats' && type !== 'postgres') {
    throw new InvalidEndpointSpec('type', `is ${shown(type)}; it must be 'webhook', 'nats' or 'postgres'`);
  }
  const known: readonly string[] = FIELDS[type];
  const unknown = Object.keys(doc).find((k) => !known.includes(k));
  if (unknown !== undefined) throw new InvalidEndpointSpec(unknown.slice(0, MAX_HEADER_NAME_CHARS), `is not a field of a ${type} endpoint (fields: ${known.join(', ')})`);
  switch (type) {
    case 'webhook': return checkWebhook(doc);
    case 'nats': return checkNats(doc);
    case 'postgres': return checkPostgres(doc);
    default: {
      const never: never = type;
      throw new InvalidEndpointSpec('type', `is ${shown(never)}`);
    }
  }
}

/** Throws InvalidEndpointSpec naming `field` unless `name` is a plain identifier (which is then quoted in SQL). */
export function checkIdentifier(field: string, name: unknown): string {
  if (typeof name !== 'string' || !IDENTIFIER.test(name)) {
    throw new InvalidEndpointSpec(field, `is ${shown(name)}; it must be 1-63 letters, digits or '_', not starting with a digit`);
  }
  return name;
}

/** `{deviceId}` filled with a stand-in, then checked as a literal subject: non-empty tokens, no wildcard, no space. */
export function checkSubject(subject: unknown): string {
  if (typeof subject !== 'string' || subject.length === 0 || subject.length > MAX_SUBJECT_CHARS) {
    throw new InvalidEndpointSpec('subject', `is ${shown(subject)}; it must be a NATS subject of 1-${MAX_SUBJECT_CHARS} characters`);
  }
  const bad = (why: string): InvalidEndpointSpec => new InvalidEndpointSpec('subject', `is ${shown(subject)}; ${why}`);
  const filled = subject.replaceAll(DEVICE_ID_PLACEHOLDER, 'x');
  if (/[{}]/.test(filled)) throw bad(`the only placeholder is '${DEVICE_ID_PLACEHOLDER}'`);
  if (/[\s\x00-\x1f\x7f]/.test(filled)) throw bad('a subject cannot hold whitespace or control characters');
  if (/[*>]/.test(filled)) throw bad("a publish subject cannot hold the wildcards '*' or '>'");
  if (filled.split('.').some((t) => t.length === 0)) throw bad("its '.'-separated tokens must not be empty");
  return subject;
}

function checkWebhook(doc: Doc): EndpointSpec {
  const url = checkUrl(doc.url, ['https:'], 'webhooks need https (plain http would carry the payload and signature in clear)');
  const out: { -readonly [K in keyof WebhookSpec]: WebhookSpec[K] } = { type: 'webhook', url };
  if (doc.headers !== undefined) out.headers = checkHeaders(doc.headers);
  if (doc.secret !== undefined) {
    if (typeof doc.secret !== 'string' || doc.secret.length === 0 || doc.secret.length > MAX_SECRET_CHARS) {
      throw new InvalidEndpointSpec('secret', `must be a string of 1-${MAX_SECRET_CHARS} characters (value not shown)`);
    }
    out.secret = doc.secret;
  }
  if (doc.caCertificate !== undefined) out.caCertificate = checkCaCertificate(doc.caCertificate);
  if (doc.timeoutMs !== undefined) {
    const t = doc.timeoutMs;
    if (typeof t !== 'number' || !Number.isInteger(t) || t < TIMEOUT_MS.min || t > TIMEOUT_MS.max) {
      throw new InvalidEndpointSpec('timeoutMs', `is ${shown(t)}; it must be a whole number of ms from ${TIMEOUT_MS.min} to ${TIMEOUT_MS.max}`);
    }
    out.timeoutMs = t;
  }
  return out;
}

function checkNats(doc: Doc): EndpointSpec {
  const url = checkUrl(doc.url, ['nats:'], "NATS endpoints take 'nats://[user:password@]host[:port]'");
  const subject = checkSubject(doc.subject);
  if (doc.jetstream !== undefined && typeof doc.jetstream !== 'boolean') {
    throw new InvalidEndpointSpec('jetstream', `is ${shown(doc.jetstream)}; it must be true or false`);
  }
  return doc.jetstream === undefined ? { type: 'nats', url, subject } : { type: 'nats', url, subject, jetstream: doc.jetstream };
}

function checkPostgres(doc: Doc): EndpointSpec {
  const url = checkUrl(doc.url, ['postgres:', 'postgresql:'], "PostgreSQL endpoints take 'postgres://user[:password]@host[:port]/database'");
  const table = checkIdentifier('table', doc.table);
  return doc.schema === undefined ? { type: 'postgres', url, table } : { type: 'postgres', url, table, schema: checkIdentifier('schema', doc.schema) };
}

function checkUrl(value: unknown, schemes: readonly string[], allowed: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_URL_CHARS) {
    throw new InvalidEndpointSpec('url', `is ${typeof value === 'string' ? `${value.length} characters` : shown(value)}; it must be a URL of 1-${MAX_URL_CHARS} characters`);
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidEndpointSpec('url', 'is not a URL (value not shown: it may hold a password)');
  }
  if (!schemes.includes(url.protocol)) throw new InvalidEndpointSpec('url', `has scheme '${url.protocol}'; ${allowed}`);
  if (url.hostname === '') throw new InvalidEndpointSpec('url', `is ${shown(redactUrl(value))}; it names no host`);
  if (url.protocol === 'https:' && (url.username !== '' || url.password !== '')) {
    throw new InvalidEndpointSpec('url', `is ${shown(redactUrl(value))}; put credentials in an Authorization header, not the URL`);
  }
  return value;
}

function checkHeaders(value: unknown): Readonly<Record<string, string>> {
  if (!isObject(value)) throw new InvalidEndpointSpec('headers', `is ${shown(value)}; it must be an object of header names to string values`);
  const entries = Object.entries(value);
  if (entries.length > MAX_HEADERS) throw new InvalidEndpointSpec('headers', `has ${entries.length} headers; at most ${MAX_HEADERS} are allowed`);
  const seen = new Set<string>();
  const out: Record<string, string> = {};
  for (const [name, v] of entries) {
    const field = `headers[${JSON.stringify(name.slice(0, MAX_HEADER_NAME_CHARS))}]`;
    if (name.length > MAX_HEADER_NAME_CHARS || !TOKEN.test(name)) {
      throw new InvalidEndpointSpec(field, `is not a header name (1-${MAX_HEADER_NAME_CHARS} token characters)`);
    }
    const lower = name.toLowerCase();
    if (RESERVED_HEADERS.has(lower) || lower.startsWith(RESERVED_HEADER_PREFIX)) {
      throw new InvalidEndpointSpec(field, `is set by the webhook itself; ${[...RESERVED_HEADERS].join(', ')} and ${RESERVED_HEADER_PREFIX}* cannot be given`);
    }
    if (seen.has(lower)) throw new InvalidEndpointSpec(field, 'appears twice (header names ignore case)');
    seen.add(lower);
    if (typeof v !== 'string' || v.length > MAX_HEADER_VALUE_CHARS || !HEADER_VALUE.test(v)) {
      throw new InvalidEndpointSpec(field, `must be a string of at most ${MAX_HEADER_VALUE_CHARS} characters without line breaks or control characters (value not shown)`);
    }
    out[name] = v;
  }
  return out;
}

function checkCaCertificate(value: unknown): string {
  const blocks = typeof value === 'string' && value.length <= MAX_CA_CHARS ? value.match(PEM_BLOCK) ?? [] : [];
  if (typeof value !== 'string' || blocks.length === 0) {
    throw new InvalidEndpointSpec('caCertificate', `must be PEM text of at most ${MAX_CA_CHARS} characters holding one or more '-----BEGIN CERTIFICATE-----' blocks`);
  }
  blocks.forEach((pem, i) => {
    try {
      new X509Certificate(pem);
    } catch (err) {
      throw new InvalidEndpointSpec('caCertificate', `certificate ${i + 1} does not parse: ${err instanceof Error ? err.message : String(err)}`);
    }
  });
  return value;
}

function isObject(value: unknown): value is Doc {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A value for a message: JSON, cut to 100 characters. */
export function shown(value: unknown): string {
  const text = value === undefined ? 'absent' : JSON.stringify(value) ?? String(value);
  return text.length > 100 ? text.slice(0, 100) + '…' : text;
}
