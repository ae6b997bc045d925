import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { CliError, CONNECTION_OPTIONS, runVerbs, type HubClient } from './client.js';
import { print, table, type OutputFormat } from './output.js';

const BASE = '/corral/v1';

const ALERT_OPTIONS = {
  ...CONNECTION_OPTIONS, open: { type: 'boolean' }, device: { type: 'string' }, rule: { type: 'string' }, status: { type: 'string' },
  top: { type: 'string' },
} as const;
const SETTING_OPTIONS = { ...CONNECTION_OPTIONS, file: { type: 'string' }, json: { type: 'string' }, replace: { type: 'boolean' } } as const;

type AlertValues = ReturnType<typeof parseArgs<{ options: typeof ALERT_OPTIONS; allowPositionals: true }>>['values'];
type SettingValues = ReturnType<typeof parseArgs<{ options: typeof SETTING_OPTIONS; allowPositionals: true }>>['values'];

export const ALERTS_USAGE = `corral alert list [--open] [--status raised|acknowledged|cleared] [--device ID] [--rule NAME] [--top N]
  corral alert show|ack|clear ID
  corral rule add NAME (--file rule.json | --json '{"type":"threshold","condition":"$body.temperature > 30"}') [--replace]
  corral rule list | show NAME | remove NAME | enable NAME | disable NAME
  corral health-profile add NAME (--file F | --json '{"condition":"…","heartbeatSeconds":60}') [--replace]
  corral health-profile list | show NAME | remove NAME
  corral health                            (devices healthy/unhealthy, open alerts by severity)`;

const ALERT_COLUMNS = ['id', 'ruleName', 'deviceId', 'moduleId', 'severity', 'status', 'raisedTime', 'acknowledgedBy', 'clearedTime'];
const RULE_COLUMNS = ['name', 'type', 'severity', 'enabled', 'scope', 'condition', 'seconds', 'aggregate', 'updatedTime'];
const PROFILE_COLUMNS = ['name', 'condition', 'heartbeatSeconds', 'severity', 'updatedTime'];

const enc = encodeURIComponent;

function needArg(pos: string[], message: string): string {
  if (!pos[0]) throw new CliError(message);
  return pos[0];
}

/** Follows continuation tokens until the last page, or until --top alerts. */
async function listAlerts(client: HubClient, v: AlertValues, out: OutputFormat): Promise<void> {
  const top = v.top === undefined ? Infinity : Number(v.top);
  if (!(top > 0)) throw new CliError(`--top must be a positive number, got ${v.top}`);
  const params = new URLSearchParams();
  if (v.open) params.set('open', 'true');
  if (v.status) params.set('status', v.status);
  if (v.device) params.set('deviceId', v.device);
  if (v.rule) params.set('rule', v.rule);
  const items: unknown[] = [];
  let token: string | undefined;
  do {
    params.set('limit', String(Math.min(1000, top - items.length)));
    if (token) params.set('continuation', token);
    const res = await client.call('GET', `${BASE}/alerts?${params}`);
    items.push(...(res.body as unknown[]));
    token = res.headers['x-ms-continuation'] as string | undefined;
  } while (token && items.length < top);
  print(items, out, ALERT_COLUMNS);
}

async function alert(client: HubClient, verb: string, pos: string[], v: AlertValues, out: OutputFormat): Promise<void> {
  const path = (id: string): string => `${BASE}/alerts/${enc(id)}`;
  switch (verb) {
    case 'list': return listAlerts(client, v, out);
    case 'show': return print((await client.call('GET', path(needArg(pos, 'alert show needs an alert id')))).body, out, ALERT_COLUMNS);
    case 'ack':
    case 'acknowledge':
      return print((await client.call('POST', `${path(needArg(pos, 'alert ack needs an alert id'))}/acknowledge`)).body, out, ALERT_COLUMNS);
    case 'clear': return print((await client.call('POST', `${path(needArg(pos, 'alert clear needs an alert id'))}/clear`)).body, out, ALERT_COLUMNS);
    default: throw new CliError(`unknown verb 'alert ${verb}': list, show, ack, clear`);
  }
}

/** The document of `add`: --file or --json, exactly one. */
function documentOf(v: SettingValues, noun: string): unknown {
  if ((v.file === undefined) === (v.json === undefined)) throw new CliError(`${noun} add needs --file FILE or --json '{…}' (one of them)`);
  const text = v.file !== undefined ? readFileSync(v.file, 'utf8') : (v.json as string);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new CliError(`${v.file !== undefined ? v.file : '--json'} is not JSON: ${(err as Error).message}`);
  }
}

/** `corral rule|health-profile …`: add (create, or replace with --replace), list, show, remove; rules also enable/disable. */
function settingCommand(noun: 'rule' | 'health-profile', path: string, columns: readonly string[]) {
  return (args: string[]): Promise<number> => runVerbs(args, SETTING_OPTIONS, async (client, verb, pos, v, out) => {
    const one = (name: string): string => `${path}/${enc(name)}`;
    const name = (): string => needArg(pos, `${noun} ${verb} needs a name`);
    switch (verb) {
      case 'add': {
        const n = name();
        return print((await client.call('PUT', `${one(n)}${v.replace ? '' : '?create=true'}`, { body: documentOf(v, noun) })).body, out, columns);
      }
      case 'list': return print((await client.call('GET', path)).body, out, columns);
      case 'show': return print((await client.call('GET', one(name()))).body, out, columns);
      case 'remove': {
        const n = name();
        await client.call('DELETE', one(n));
        return print({ name: n, removed: true }, out, ['name', 'removed']);
      }
      case 'enable':
      case 'disable': {
        if (noun !== 'rule') break;
        const n = name();
        const { name: _n, etag, createdTime: _c, updatedTime: _u, ...doc } = (await client.call('GET', one(n))).body as Record<string, unknown>;
        const body = { ...doc, enabled: verb === 'enable' };
        return print((await client.call('PUT', one(n), { body, headers: { 'if-match': String(etag) } })).body, out, columns);
      }
      default: break;
    }
    throw new CliError(`unknown verb '${noun} ${verb}': add, list, show, remove${noun === 'rule' ? ', enable, disable' : ''}`);
  });
}

interface FleetHealth {
  devices: { healthy: number; unhealthy: number };
  alerts: { open: Record<string, number>; acknowledged: number };
}

async function healthCommand(args: string[]): Promise<number> {
  return runVerbs(args, CONNECTION_OPTIONS, async (client, verb, _pos, _v, out) => {
    if (verb !== '') throw new CliError(`health takes no verb, got '${verb}'`);
    const health = (await client.call('GET', `${BASE}/health`)).body as FleetHealth;
    if (out === 'json') return print(health, out, []);
    process.stdout.write(table([health.devices], ['healthy', 'unhealthy']));
    process.stdout.write('\n');
    process.stdout.write(table([{ ...health.alerts.open, acknowledged: health.alerts.acknowledged }], ['critical', 'error', 'warning', 'info', 'acknowledged']));
  });
}

const COMMANDS: ReadonlyMap<string, (args: string[]) => Promise<number>> = new Map([
  ['alert', (args: string[]) => runVerbs(args, ALERT_OPTIONS, alert)],
  ['rule', settingCommand('rule', `${BASE}/rules`, RULE_COLUMNS)],
  ['health-profile', settingCommand('health-profile', `${BASE}/health-profiles`, PROFILE_COLUMNS)],
  ['health', healthCommand],
]);

/** The nouns of rules, alerts and wellness (`alert`, `rule`, `health-profile`, `health`): the command for one, if it is one. */
export function alertsCommand(noun: string): ((args: string[]) => Promise<number>) | undefined {
  return COMMANDS.get(noun);
}
