import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { CliError, CONNECTION_OPTIONS, runVerbs, type HubClient } from './client.js';
import { print, type OutputFormat } from './output.js';

const OPTIONS = {
  ...CONNECTION_OPTIONS,
  etag: { type: 'string' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

export const CERT_USAGE = `corral cert add NAME FILE [--etag E]     (a CA certificate, PEM or DER; --etag E or '*' replaces one)
  corral cert list | show NAME | delete NAME [--etag E]
  corral cert verification-code NAME       (proof of possession: sign a certificate with CN = this code by the CA)
  corral cert verify NAME FILE             (the signed verification certificate; the CA then authenticates devices)`;

const COLUMNS = ['name', 'subject', 'thumbprint', 'isVerified', 'expiry', 'verificationCode'];

function pathOf(name: string, action = ''): string {
  return `/corral/v1/certificates/${encodeURIComponent(name)}${action ? `/${action}` : ''}`;
}

/** A certificate file as the API takes it: PEM as it is, DER as base64. */
function readCertificate(file: string | undefined, verb: string): string {
  if (!file) throw new CliError(`cert ${verb} needs a certificate file (PEM or DER)`);
  const bytes = readFileSync(file);
  const text = bytes.toString('utf8');
  return text.includes('-----BEGIN CERTIFICATE-----') ? text : bytes.toString('base64');
}

function needName(pos: string[], verb: string): string {
  if (!pos[0]) throw new CliError(`cert ${verb} needs a certificate name`);
  return pos[0];
}

/** For tables: the ARM shape's properties beside its name, without the PEM. */
function rows(value: unknown, format: OutputFormat): unknown {
  if (format === 'json') return value;
  const flat = (c: { name?: unknown; properties?: Record<string, unknown> }) => {
    const { certificate: _pem, ...props } = c.properties ?? {};
    return { name: c.name, ...props };
  };
  const list = (value as { value?: unknown[] }).value;
  return Array.isArray(list) ? list.map((c) => flat(c as Parameters<typeof flat>[0])) : flat(value as Parameters<typeof flat>[0]);
}

async function run(client: HubClient, verb: string, pos: string[], v: Values, out: OutputFormat): Promise<void> {
  const show = (value: unknown) => print(rows(value, out), out, COLUMNS);
  const ifMatch = (fallback?: string): Record<string, string> => {
    const etag = v.etag ?? fallback;
    return etag === undefined ? {} : { 'if-match': `"${etag}"` };
  };
  switch (verb) {
    case 'add': {
      const name = needName(pos, 'add');
      const body = { certificate: readCertificate(pos[1], 'add') };
      return show((await client.call('PUT', pathOf(name), { body, headers: ifMatch() })).body);
    }
    case 'list': return show((await client.call('GET', '/corral/v1/certificates')).body);
    case 'show': return show((await client.call('GET', pathOf(needName(pos, 'show')))).body);
    case 'delete': {
      const name = needName(pos, 'delete');
      await client.call('DELETE', pathOf(name), { headers: ifMatch('*') });
      return print({ deleted: name }, out, ['deleted']);
    }
    case 'verification-code':
      return show((await client.call('POST', pathOf(needName(pos, 'verification-code'), 'generateVerificationCode'), { headers: ifMatch('*') })).body);
    case 'verify': {
      const name = needName(pos, 'verify');
      const body = { certificate: readCertificate(pos[1], 'verify') };
      return show((await client.call('POST', pathOf(name, 'verify'), { body, headers: ifMatch('*') })).body);
    }
    default:
      throw new CliError(`unknown verb 'cert ${verb}': add, list, show, delete, verification-code, verify`);
  }
}

/** `corral cert add|list|show|delete|verification-code|verify …`: the hub's X.509 CA certificates. */
export async function cert(args: string[]): Promise<number> {
  return runVerbs(args, OPTIONS, run);
}
