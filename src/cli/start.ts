import { parseArgs } from 'node:util';
import { ConfigError, loadHubConfig, type StartFlags } from '../config/index.js';
import { createHub, ListenError } from '../hub.js';

const FLAGS = [
  'data', 'hostname', 'bind', 'https-port', 'mqtts-port', 'store', 'postgres-url', 'postgres-schema', 'tls-cert', 'tls-key',
  'log-level', 'node-id', 'max-body-bytes', 'max-requests-per-second', 'twin-tags-bytes', 'twin-desired-bytes',
  'twin-reported-bytes', 'twin-max-depth',
] as const;

export const START_USAGE = `corral start [--data DIR] [--hostname NAME] [--bind ADDR] [--https-port N] [--mqtts-port N]
             [--store sqlite|postgres] [--postgres-url URL] [--postgres-schema NAME] [--tls-cert FILE --tls-key FILE]
             [--log-level LEVEL] [--max-body-bytes N] [--max-requests-per-second N]
             [--twin-tags-bytes N] [--twin-desired-bytes N] [--twin-reported-bytes N] [--twin-max-depth N]`;

// A stop must finish within 5 s of SIGTERM/SIGINT (the start contract); past that the process exits anyway.
const STOP_DEADLINE_MS = 4500;

/** `corral start`: runs a hub until SIGTERM/SIGINT; prints `corral ready {json}` once every listener is up. */
export async function start(args: string[]): Promise<number> {
  let flags: StartFlags;
  try {
    const parsed = parseArgs({ args, options: Object.fromEntries(FLAGS.map((f) => [f, { type: 'string' as const }])), strict: true, allowPositionals: false });
    flags = parsed.values as StartFlags;
  } catch (err) {
    process.stderr.write(`corral start: ${(err as Error).message}\nusage: ${START_USAGE}\n`);
    return 2;
  }
  let hub;
  try {
    hub = await createHub(loadHubConfig(flags));
  } catch (err) {
    if (err instanceof ConfigError || err instanceof ListenError) {
      process.stderr.write(`corral start: ${err.message}\n`);
      return 1;
    }
    process.stderr.write(`corral start: ${(err as Error).message}\n`);
    return 1;
  }
  process.stdout.write(`corral ready ${JSON.stringify(hub.info)}\n`);
  await new Promise<void>((resolve) => {
    const onSignal = (sig: string) => {
      hub.logger.info({ signal: sig }, 'stopping');
      setTimeout(() => process.exit(0), STOP_DEADLINE_MS).unref();
      void hub.stop().then(resolve);
    };
    process.once('SIGTERM', () => onSignal('SIGTERM'));
    process.once('SIGINT', () => onSignal('SIGINT'));
  });
  return 0;
}
