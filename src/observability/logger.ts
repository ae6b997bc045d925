import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

// Secrets never reach a log line: these paths are censored wherever they appear.
const REDACT = [
  'authorization', 'headers.authorization', 'req.headers.authorization', '*.primaryKey', '*.secondaryKey',
  '*.symmetricKey', 'password', '*.password', 'sharedAccessKey', '*.connectionString', 'token',
];

/** The hub's JSON logger (stderr, so stdout stays for the `corral ready` line). */
export function createLogger(level: string, nodeId: string): Logger {
  return pino({ level, base: { node: nodeId }, redact: { paths: REDACT, censor: '[redacted]' } }, pino.destination(2));
}
