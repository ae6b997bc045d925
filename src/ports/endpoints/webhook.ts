import { createHmac } from 'node:crypto';
import { Agent, request } from 'node:https';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { rootCertificates } from 'node:tls';
import { EndpointFailed, InvalidEndpointSpec, type Endpoint, type EndpointBatch, type EndpointSpec } from './index.js';

export type WebhookSpec = Extract<EndpointSpec, { readonly type: 'webhook' }>;

/** When the spec names none: long enough for a slow receiver, short enough that a hung one does not stall a route. */
export const DEFAULT_WEBHOOK_TIMEOUT_MS = 10_000;
/** How much of a refusal's body the error message quotes. */
const QUOTED_BODY_CHARS = 200;
/**
 * An idle kept-alive socket is closed after this long: under the 5 s that Node's servers (and many proxies) keep an
 * idle connection, so a request does not go out on a socket the receiver is closing.
 */
const IDLE_SOCKET_MS = 4000;
/** Header values (and the secret) shorter than this are not scrubbed from a quoted body: they would mangle it. */
const MIN_SCRUBBED_CHARS = 4;
/** Bytes of a response body kept for that quote; the rest is read and dropped so the socket can be reused. */
const KEPT_BODY_BYTES = 4096;

/**
 * Delivers a batch as one HTTPS POST of a JSON array (see EndpointSpec). 2xx is success; 408, 429, 5xx, timeouts and
 * network or TLS failures are retryable; any other status is not. Errors name the status and the start of the
 * response body, never the URL's query, the headers' values or the secret.
 */
export class WebhookEndpoint implements Endpoint {
  private readonly url: URL;
  private readonly agent: Agent;
  private readonly timeoutMs: number;

  /** Throws InvalidEndpointSpec for a URL that is not https (the secret and the payload would travel in clear). */
  constructor(private readonly name: string, private readonly spec: WebhookSpec) {
    this.url = parseHttpsUrl(spec.url);
    this.timeoutMs = spec.timeoutMs ?? DEFAULT_WEBHOOK_TIMEOUT_MS;
    // `ca` replaces the default trust store, so the system's roots go in with the extra CA.
    const ca = spec.caCertificate === undefined ? undefined : [...rootCertificates, spec.caCertificate];
    this.agent = new Agent({ keepAlive: true, timeout: IDLE_SOCKET_MS, ca });
  }

  async deliver(batch: EndpointBatch): Promise<void> {
    const { messages } = batch;
    if (messages.length === 0) return;
    // The texts are already JSON objects: joining them is the array, with no parse and no re-encoding.
    const body = Buffer.from('[' + messages.map((m) => m.json).join(',') + ']', 'utf8');
    const headers: Record<string, string> = {
      ...this.spec.headers,
      'content-type': 'application/json',
      'content-length': String(body.length),
      'x-corral-route': batch.route,
      // A batch comes from one partition's reader; should one ever mix them, each is named, comma-separated.
      'x-corral-partition': [...new Set(messages.map((m) => m.partition))].join(','),
      'x-corral-first-sequence': String(messages[0].sequence),
      'x-corral-last-sequence': String(messages[messages.length - 1].sequence),
    };
    if (this.spec.secret !== undefined) {
      headers['x-corral-signature'] = 'sha256=' + createHmac('sha256', this.spec.secret).update(body).digest('hex');
    }
    const { status, text } = await this.post(body, headers);
    if (status >= 200 && status < 300) return;
    const retryable = status === 408 || status === 429 || status >= 500;
    const quoted = this.scrub(text.length > QUOTED_BODY_CHARS ? text.slice(0, QUOTED_BODY_CHARS) + '…' : text);
    throw new EndpointFailed(this.name, `webhook answered HTTP ${status}: ${JSON.stringify(quoted)}`, retryable);
  }

  /** The text with the secret and the spec's header values masked, in case the receiver echoes the request. */
  private scrub(text: string): string {
    const hidden = [this.spec.secret, ...Object.values(this.spec.headers ?? {})];
    return hidden.reduce<string>((t, v) => (v !== undefined && v.length >= MIN_SCRUBBED_CHARS ? t.replaceAll(v, '***') : t), text);
  }

  async close(): Promise<void> {
    this.agent.destroy();
  }

  /** One POST; resolves with the status and the start of the body, rejects (retryable) on timeout or network error. */
  private post(body: Buffer, headers: Record<string, string>): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (message: string, cause?: unknown): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.destroy();
        reject(new EndpointFailed(this.name, message, true, cause === undefined ? undefined : { cause }));
      };
      let req: ClientRequest;
      try {
        req = request(this.url, { method: 'POST', agent: this.agent, headers });
      } catch (err) {
        // Node refuses a header with a bad name or character before sending; its message names the header only.
        reject(new EndpointFailed(this.name, `webhook request not sent: ${networkReason(err)}`, false, { cause: err }));
        return;
      }
      // The whole exchange, body included: a receiver that answers headers and then stalls is as stuck as a silent one.
      const timer = setTimeout(() => fail(`webhook gave no complete answer within ${this.timeoutMs} ms`), this.timeoutMs);
      req.on('error', (err) => fail(`webhook request to ${this.url.host} failed: ${networkReason(err)}`, err));
      req.on('response', (res: IncomingMessage) => {
        readStart(res).then((text) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, text });
        }, (err: unknown) => fail(`webhook response from ${this.url.host} broke off: ${networkReason(err)}`, err));
      });
      req.end(body);
    });
  }
}

function parseHttpsUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new InvalidEndpointSpec('url', 'is not a URL');
  }
  if (url.protocol === 'http:') throw new InvalidEndpointSpec('url', `is plain http (${url.host}); webhooks need https`);
  if (url.protocol !== 'https:') throw new InvalidEndpointSpec('url', `has scheme '${url.protocol}'; webhooks need https`);
  return url;
}

/** Reads the whole body, keeping its first KEPT_BODY_BYTES as text. */
function readStart(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let kept = 0;
    res.on('data', (chunk: Buffer) => {
      if (kept >= KEPT_BODY_BYTES) return;
      chunks.push(chunk);
      kept += chunk.length;
    });
    res.on('end', () => resolve(Buffer.concat(chunks).subarray(0, KEPT_BODY_BYTES).toString('utf8')));
    res.on('error', reject);
    res.on('close', () => {
      if (!res.complete) reject(new Error('connection closed before the body ended'));
    });
  });
}

/** The error's code and message: node's network and TLS errors name neither headers nor their values. */
function networkReason(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as NodeJS.ErrnoException).code;
  return code !== undefined && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
}
