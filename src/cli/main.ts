import { admin } from './admin.js';
import { ALERTS_USAGE, alertsCommand } from './alerts.js';
import { C2D_USAGE } from './c2d.js';
import { CERT_USAGE } from './cert.js';
import { PIPELINE_USAGE, pipelineCommand } from './pipeline.js';
import { QUERY_USAGE } from './query.js';
import { CliError } from './client.js';
import { START_USAGE, start } from './start.js';

const USAGE = `Corral — a self-hosted IoT hub, wire-compatible with Azure IoT Hub.

usage:
  ${START_USAGE}
  corral device create|show|list|update|delete ID [--module M] [--status enabled|disabled] [--auth sas|selfSigned|certificateAuthority|none]
                [--primary-key K] [--secondary-key K] [--primary-thumbprint T] [--secondary-thumbprint T] [--edge] [--etag E]
  corral device import FILE.jsonl          (JSON Lines; all lines apply or none)
  corral device export [FILE] [--keys]     (JSON Lines to FILE or stdout)
  corral twin show ID [--module M]
  corral twin update ID [--module M] (--patch JSON | --tags JSON | --desired JSON) [--replace] [--etag E]
  ${C2D_USAGE}
  ${CERT_USAGE}
  ${QUERY_USAGE}
  ${PIPELINE_USAGE}
  ${ALERTS_USAGE}
  corral policy list
  corral stats

Admin verbs reach the hub with --connection-string, CORRAL_CONNECTION_STRING, or --data DIR (reads DIR/hub.json).
Output is JSON; --output table for people.
`;

/** Runs the CLI; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(USAGE);
    return command ? 0 : 2;
  }
  if (command === 'start') return start(rest);
  try {
    const pipeline = pipelineCommand(command) ?? alertsCommand(command);
    return await (pipeline ? pipeline(rest) : admin(command, rest));
  } catch (err) {
    if (err instanceof CliError || (err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`corral ${command}: ${(err as Error).message}\n`);
      return 1;
    }
    throw err;
  }
}
