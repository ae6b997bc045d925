import { createHmac } from 'node:crypto';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { ensureDevCa } from '../../src/edges/tls/dev-ca.js';
import { tempDataDir } from './hub-process.js';

export interface ReceivedMessage {
  readonly route: string;
  readonly doc: Record<string, unknown> & { partition: string; sequenceNumber: number; source: string; deviceId: string; body: unknown };
}

/**
 * An HTTPS webhook receiver for routing tests: its own development CA (give `caPem` to the endpoint), checks the
 * HMAC signature when a secret is set, records each message; `failNext(n, status)` answers the next n requests
 * with an error, to exercise retries and dead letters.
 */
export class WebhookReceiver {
  readonly received: ReceivedMessage[] = [];
  /** Each request it answered 200, as it came: headers and body text. */
  readonly accepted: { readonly headers: Record<string, string | string[] | undefined>; readonly raw: string }[] = [];
  readonly caPem: string;
  badSignatures = 0;
  requests = 0;
  private failures: { left: number; status: number } = { left: 0, status: 500 };
  private waiters: (() => void)[] = [];

  private constructor(
    private readonly server: Server, readonly url: string, caPem: string, readonly caFile: string, private readonly secret: string | undefined,
    private readonly dir: string,
  ) {
    this.caPem = caPem;
  }

  static async start(address: string, secret?: string): Promise<WebhookReceiver> {
    const dir = tempDataDir('webhook');
    const tls = ensureDevCa(dir, [address]);
    let receiver: WebhookReceiver | undefined;
    const server = createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => receiver?.take(req.headers, Buffer.concat(chunks), (status) => { res.writeHead(status); res.end(); }));
    });
    server.listen(0, address);
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    receiver = new WebhookReceiver(server, `https://${address}:${port}/hook`, tls.ca, tls.caFile, secret, dir);
    return receiver;
  }

  failNext(n: number, status: number): void {
    this.failures = { left: n, status };
  }

  /** Resolves once `check` holds for what was received (checked after each request), or rejects after timeoutMs. */
  async until(check: (r: readonly ReceivedMessage[]) => boolean, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check(this.received)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`webhook: condition not met in ${timeoutMs} ms; received ${JSON.stringify(this.received.map((m) => [m.route, m.doc.source, m.doc.sequenceNumber]))}`);
      await new Promise<void>((resolve) => { const t = setTimeout(resolve, Math.min(left, 200)); this.waiters.push(() => { clearTimeout(t); resolve(); }); });
    }
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    this.server.close();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private take(headers: Record<string, string | string[] | undefined>, body: Buffer, answer: (status: number) => void): void {
    this.requests++;
    if (this.failures.left > 0) { this.failures.left--; answer(this.failures.status); return; }
    if (this.secret) {
      const expected = `sha256=${createHmac('sha256', this.secret).update(body).digest('hex')}`;
      if (headers['x-corral-signature'] !== expected) { this.badSignatures++; answer(401); return; }
    }
    const route = String(headers['x-corral-route'] ?? '');
    this.accepted.push({ headers, raw: body.toString('utf8') });
    for (const doc of JSON.parse(body.toString('utf8')) as ReceivedMessage['doc'][]) this.received.push({ route, doc });
    answer(200);
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w();
  }
}
