import { parseArgs } from 'node:util';
import { ConfigError, loadHubConfig, type StartFlags } from '../config/index.js';
import { createHub, ListenError } from '../hub.js';

const FLAGS = [
  'data', 'hostname', 'bind', 'https-port', 'mqtts-port', 'store', 'postgres-url', 'postgres-schema', 'tls-cert', 'tls-key',
  'log-level', 'node-id', 'max-body-bytes', 'max-requests-per-second', 'twin-tags-bytes', 'twin-desired-bytes',
  'twin-reported-bytes', 'twin-max-depth', 'bus', 'nats-url', 'mqtt-port', 'max-message-bytes',
  'eventlog-retention-hours', 'eventlog-max-records', 'eventlog', 'eventlog-replicas', 'eventlog-stream-prefix',
] as const;

export const START_USAGE = `corral start [--data DIR] [--hostname NAME] [--bind ADDR] [--https-port N] [--mqtts-port N]
             [--store sqlite|postgres] [--postgres-url URL] [--postgres-schema NAME] [--tls-cert FILE --tls-key FILE]
             [--log-level LEVEL] [--max-body-bytes N] [--max-requests-per-second N]
             [--twin-tags-bytes N] [--twin-desired-bytes N] [--twin-reported-bytes N] [--twin-max-depth N]
             [--bus inprocess|nats] [--nats-url URL] [--mqtt-port N] [--max-message-bytes N]
             [--eventlog sqlite|jetstream] [--eventlog-replicas N] [--eventlog-stream-prefix NAME]
             [--eventlog-retention-hours H] [--eventlog-max-records N]`;

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
  // Signals are caught from the start: one that comes while the hub starts stops it as soon as it is up.
  let signalled: ((sig: string) => void) | undefined;
  const early: string[] = [];
  const onSignal = (sig: string) => {
    setTimeout(() => process.exit(0), STOP_DEADLINE_MS).unref();
    if (signalled) signalled(sig);
    else early.push(sig);
  };
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  process.once('SIGINT', () => onSignal('SIGINT'));
  let hub;
  try {
    hub = await createHub(loadHubConfig(flags));
  } catch (err) {
    const known = err instanceof ConfigError || err instanceof ListenError;
    process.stderr.write(`corral start: ${known ? (err as Error).message : String((err as Error).stack ?? err)}\n`);
    return 1;
  }
  const running = hub;
  // A promise nobody awaited failing is a bug to fix, not a reason to drop every device on this node.
  process.on('unhandledRejection', (err) => running.logger.error({ err }, 'unhandled promise rejection'));
  process.stdout.write(`corral ready ${JSON.stringify(running.info)}\n`);
  await new Promise<void>((resolve) => {
    signalled = (sig) => {
      running.logger.info({ signal: sig }, 'stopping');
      void running.stop().then(resolve);
    };
    if (early.length > 0) signalled(early[0]);
  });
  return 0;
}
