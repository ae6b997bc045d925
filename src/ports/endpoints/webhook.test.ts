import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ensureDevCa, type TlsMaterial } from '../../edges/tls/dev-ca.js';
import { EndpointFailed, InvalidEndpointSpec, openEndpoint, type EndpointBatch, type EndpointMessage } from './index.js';
import { WebhookEndpoint } from './webhook.js';

interface Received {
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

/** An HTTPS receiver with the dev CA's server certificate; each test sets how it answers. */
class Receiver {
  readonly received: Received[] = [];
  connections = 0;
  answer: (res: ServerResponse) => void = (res) => res.end();

  private constructor(private readonly server: Server, readonly url: string) {}

  static async start(tls: TlsMaterial): Promise<Receiver> {
    const server = createServer({ cert: tls.cert, key: tls.key });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    assert.ok(address !== null && typeof address === 'object');
    const receiver = new Receiver(server, `https://127.0.0.1:${address.port}/hook?code=query-secret`);
    server.on('secureConnection', () => { receiver.connections += 1; });
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        receiver.received.push({ headers: req.headers, body: Buffer.concat(chunks) });
        receiver.answer(res);
      });
    });
    return receiver;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

let dir: string;
let tls: TlsMaterial;
let receiver: Receiver;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'corral-webhook-'));
  tls = ensureDevCa(dir, ['127.0.0.1', 'localhost']);
  receiver = await Receiver.start(tls);
});

after(async () => {
  await receiver.stop();
  rmSync(dir, { recursive: true, force: true });
});

function message(sequence: number, body: object = { n: sequence }): EndpointMessage {
  return {
    partition: '3', sequence, deviceId: 'dev-1', moduleId: '', source: 'telemetry', enqueuedTimeMs: 1_700_000_000_000 + sequence,
    json: JSON.stringify({ sequence, body }),
  };
}

function batch(...sequences: number[]): EndpointBatch {
  return { route: 'to-hook', messages: sequences.map((s) => message(s)) };
}

/** A webhook to the receiver trusting the dev CA; answer sets the receiver's reply for this test. */
function hook(answer: (res: ServerResponse) => void, extra: { secret?: string; timeoutMs?: number; headers?: Record<string, string> } = {}): WebhookEndpoint {
  receiver.received.length = 0;
  receiver.answer = answer;
  return new WebhookEndpoint('hook', { type: 'webhook', url: receiver.url, caCertificate: tls.ca, ...extra });
}

async function failure(work: Promise<unknown>): Promise<EndpointFailed> {
  const err = await work.then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof EndpointFailed, `expected EndpointFailed, got ${String(err)}`);
  return err;
}

test('a batch is posted as the JSON array of its texts with the routing headers and the spec headers', async () => {
  const endpoint = hook((res) => res.writeHead(204).end(), { headers: { Authorization: 'Bearer header-secret', 'X-Tenant': 'acme' } });
  try {
    const b = { route: 'to-hook', messages: [message(7, { text: 'é ☃ "q"' }), message(8), message(9)] };
    await endpoint.deliver(b);
    assert.equal(receiver.received.length, 1);
    const { headers, body } = receiver.received[0];
    assert.equal(body.toString('utf8'), '[' + b.messages.map((m) => m.json).join(',') + ']');
    assert.deepEqual(JSON.parse(body.toString('utf8')), b.messages.map((m) => JSON.parse(m.json)));
    assert.equal(headers['content-type'], 'application/json');
    assert.equal(headers['content-length'], String(body.length));
    assert.equal(headers['x-corral-route'], 'to-hook');
    assert.equal(headers['x-corral-partition'], '3');
    assert.equal(headers['x-corral-first-sequence'], '7');
    assert.equal(headers['x-corral-last-sequence'], '9');
    assert.equal(headers.authorization, 'Bearer header-secret');
    assert.equal(headers['x-tenant'], 'acme');
    assert.equal(headers['x-corral-signature'], undefined);
  } finally {
    await endpoint.close();
  }
});

test('with a secret, x-corral-signature is the HMAC-SHA256 of the exact body bytes', async () => {
  const endpoint = hook((res) => res.end('ok'), { secret: 'shh-its-a-secret' });
  try {
    await endpoint.deliver({ route: 'r', messages: [message(1, { t: 'ünïcödé' }), message(2)] });
    const { headers, body } = receiver.received[0];
    const expected = 'sha256=' + createHmac('sha256', 'shh-its-a-secret').update(body).digest('hex');
    assert.equal(headers['x-corral-signature'], expected);
  } finally {
    await endpoint.close();
  }
});

test('deliveries reuse one keep-alive connection', async () => {
  const endpoint = hook((res) => res.end());
  const before = receiver.connections;
  try {
    await endpoint.deliver(batch(1));
    await endpoint.deliver(batch(2));
    await endpoint.deliver(batch(3));
    assert.equal(receiver.received.length, 3);
    assert.equal(receiver.connections - before, 1);
  } finally {
    await endpoint.close();
  }
});

test('an empty batch sends nothing', async () => {
  const endpoint = hook((res) => res.end());
  try {
    await endpoint.deliver({ route: 'r', messages: [] });
    assert.equal(receiver.received.length, 0);
  } finally {
    await endpoint.close();
  }
});

test('500, 408 and 429 are retryable failures naming the status', async () => {
  for (const status of [500, 503, 408, 429]) {
    const endpoint = hook((res) => res.writeHead(status).end('try later'));
    try {
      const err = await failure(endpoint.deliver(batch(1)));
      assert.equal(err.retryable, true, `HTTP ${status}`);
      assert.match(err.message, new RegExp(`HTTP ${status}`));
      assert.match(err.message, /try later/);
      assert.equal(err.endpoint, 'hook');
    } finally {
      await endpoint.close();
    }
  }
});

test('400 is not retryable; the message quotes 200 characters of the body and no secret, header value or query', async () => {
  const long = 'bad payload: ' + 'x'.repeat(500);
  const endpoint = hook((res) => res.writeHead(400).end(long), { secret: 'sig-secret', headers: { Authorization: 'Bearer header-secret' } });
  try {
    const err = await failure(endpoint.deliver(batch(1)));
    assert.equal(err.retryable, false);
    assert.match(err.message, /HTTP 400/);
    assert.ok(err.message.includes(long.slice(0, 200)));
    assert.ok(!err.message.includes(long.slice(0, 201)));
    for (const secret of ['sig-secret', 'header-secret', 'query-secret']) assert.ok(!err.message.includes(secret), secret);
  } finally {
    await endpoint.close();
  }
});

test('a refusal that echoes the request has the secret and header values masked', async () => {
  const endpoint = hook((res) => res.writeHead(401).end('bad token "Bearer header-secret" for key sig-secret'),
    { secret: 'sig-secret', headers: { Authorization: 'Bearer header-secret' } });
  try {
    const err = await failure(endpoint.deliver(batch(1)));
    assert.match(err.message, /bad token \\"\*\*\*\\" for key \*\*\*/);
  } finally {
    await endpoint.close();
  }
});

test('other 4xx are not retryable', async () => {
  for (const status of [401, 403, 404, 413]) {
    const endpoint = hook((res) => res.writeHead(status).end());
    try {
      assert.equal((await failure(endpoint.deliver(batch(1)))).retryable, false, `HTTP ${status}`);
    } finally {
      await endpoint.close();
    }
  }
});

test('a receiver that does not answer within timeoutMs gives a retryable failure', async () => {
  let held: ServerResponse | undefined;
  const endpoint = hook((res) => { held = res; }, { timeoutMs: 200 });
  try {
    const err = await failure(endpoint.deliver(batch(1)));
    assert.equal(err.retryable, true);
    assert.match(err.message, /within 200 ms/);
  } finally {
    held?.end();
    await endpoint.close();
  }
});

test('a body that stalls after the status line times out too', async () => {
  let held: ServerResponse | undefined;
  const endpoint = hook((res) => { held = res; res.writeHead(200); res.write('['); }, { timeoutMs: 200 });
  try {
    assert.equal((await failure(endpoint.deliver(batch(1)))).retryable, true);
  } finally {
    held?.end();
    await endpoint.close();
  }
});

test('a plain http URL is refused when the endpoint is made', () => {
  assert.throws(() => openEndpoint('hook', { type: 'webhook', url: 'http://127.0.0.1:1/hook' }), (err: unknown) => {
    assert.ok(err instanceof InvalidEndpointSpec);
    assert.match(err.message, /https/);
    return true;
  });
});

test('a server certificate from a CA not trusted fails, retryably, naming the TLS problem', async () => {
  receiver.answer = (res) => res.end();
  receiver.received.length = 0;
  const endpoint = openEndpoint('hook', { type: 'webhook', url: receiver.url });
  try {
    const err = await failure(endpoint.deliver(batch(1)));
    assert.equal(err.retryable, true);
    assert.match(err.message, /certificate/i);
    assert.ok(!err.message.includes('query-secret'));
    assert.equal(receiver.received.length, 0);
  } finally {
    await endpoint.close();
  }
});

test('the trusted CA adds to the system roots instead of replacing them', async () => {
  const endpoint = hook((res) => res.end());
  try {
    await endpoint.deliver(batch(1));
    // The agent's trust list is the system's roots plus the dev CA.
    const agent = (endpoint as unknown as { agent: { options: { ca?: string[] } } }).agent;
    assert.ok(Array.isArray(agent.options.ca));
    assert.equal(agent.options.ca.at(-1), tls.ca);
    assert.ok(agent.options.ca.length > 1);
  } finally {
    await endpoint.close();
  }
});

test('a refused connection is a retryable failure', async () => {
  const endpoint = openEndpoint('hook', { type: 'webhook', url: 'https://127.0.0.1:1/hook' });
  try {
    const err = await failure(endpoint.deliver(batch(1)));
    assert.equal(err.retryable, true);
    assert.match(err.message, /ECONNREFUSED/);
  } finally {
    await endpoint.close();
  }
});
