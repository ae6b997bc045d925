import { hostname as osHostname } from 'node:os';
import { isIP } from 'node:net';
import { resolve, join } from 'node:path';
import { IOT_HUB_TWIN_LIMITS, type TwinLimits } from '../core/twins/index.js';

/** Everything a hub needs to start, checked once; the only place that reads process.env. */
export interface HubConfig {
  readonly dataDir: string;
  readonly hostName: string;
  readonly bind: string;
  readonly httpsPort: number;
  readonly mqttsPort: number;
  readonly store: { readonly kind: 'sqlite'; readonly file: string } | { readonly kind: 'postgres'; readonly url: string; readonly schema?: string };
  readonly tls: { readonly certFile: string; readonly keyFile: string } | undefined;
  readonly masterKeyBase64: string | undefined;
  /** The cross-node bus: in-process (one node) or NATS. */
  readonly bus: { readonly kind: 'inprocess' } | { readonly kind: 'nats'; readonly url: string };
  /** A plain (non-TLS) MQTT listener, only when asked for. */
  readonly mqttPort: number | undefined;
  readonly logLevel: string;
  readonly nodeId: string;
  readonly limits: {
    readonly twin: TwinLimits;
    /** Largest request body the REST API reads. */
    readonly maxBodyBytes: number;
    /** Service requests per second per policy; 0 = no limit. */
    readonly serviceRequestsPerSecond: number;
    /** Largest device-to-cloud message, body and properties. */
    readonly maxMessageBytes: number;
  };
  /**
   * Where the EventLog lives: the embedded SQLite file (one node), or JetStream on the NATS server, one stream per node
   * with `replicas` copies each.
   */
  readonly eventLog: { readonly kind: 'sqlite' } | { readonly kind: 'jetstream'; readonly url: string; readonly replicas: number; readonly streamPrefix: string };
  /** How long the EventLog keeps records, and at most how many (the oldest go first). */
  readonly eventLogRetention: { readonly maxAgeMs: number; readonly maxRecords: number | undefined };
}

/** Raw `corral start` flags, as strings (parsed by the CLI, checked here). */
export type StartFlags = Partial<Record<
  | 'data' | 'hostname' | 'bind' | 'https-port' | 'mqtts-port' | 'store' | 'postgres-url' | 'postgres-schema'
  | 'tls-cert' | 'tls-key' | 'log-level' | 'node-id' | 'max-body-bytes' | 'max-requests-per-second'
  | 'twin-tags-bytes' | 'twin-desired-bytes' | 'twin-reported-bytes' | 'twin-max-depth' | 'bus' | 'nats-url'
  | 'mqtt-port' | 'max-message-bytes' | 'eventlog' | 'eventlog-replicas' | 'eventlog-stream-prefix' | 'eventlog-retention-hours'
  | 'eventlog-max-records', string>>;

/** A bad setting: names the key, the value seen and what is allowed. */
export class ConfigError extends Error {
  constructor(key: string, value: unknown, allowed: string) {
    super(`invalid ${key}: ${JSON.stringify(value)} (${allowed})`);
  }
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function port(key: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new ConfigError(`--${key}`, v, 'a TCP port 1..65535');
  return n;
}

function atLeast(key: string, v: string | undefined, min: number, why: string): number {
  if (v === undefined) return min;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new ConfigError(`--${key}`, v, `an integer ≥ ${min}: ${why}`);
  return n;
}

/** Replicas of a JetStream stream: at most 5 (JetStream's limit). */
const MAX_STREAM_REPLICAS = 5;

function parseEventLog(flags: StartFlags, natsUrl: string | undefined): HubConfig['eventLog'] {
  const kind = flags.eventlog ?? 'sqlite';
  if (kind !== 'sqlite' && kind !== 'jetstream') throw new ConfigError('--eventlog', kind, 'sqlite or jetstream');
  const replicasFlag = flags['eventlog-replicas'];
  if (kind === 'sqlite') {
    if (replicasFlag !== undefined) throw new ConfigError('--eventlog-replicas', replicasFlag, 'only with --eventlog jetstream');
    if (flags['eventlog-stream-prefix'] !== undefined) throw new ConfigError('--eventlog-stream-prefix', flags['eventlog-stream-prefix'], 'only with --eventlog jetstream');
    return { kind };
  }
  if (!natsUrl) throw new ConfigError('--nats-url', natsUrl, 'required with --eventlog jetstream (or CORRAL_NATS_URL)');
  // A node's partition is named after its id: an id that changed on every restart would leave a partition behind each time.
  if (flags['node-id'] === undefined) throw new ConfigError('--node-id', undefined, 'required with --eventlog jetstream: a stable name per node, which names its partition of the log');
  const streamPrefix = flags['eventlog-stream-prefix'] ?? 'CORRAL_EVENTS';
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(streamPrefix)) throw new ConfigError('--eventlog-stream-prefix', streamPrefix, '1 to 32 letters, digits, _ or -; one per cluster sharing a NATS server (CORRAL_EVENTS by default)');
  // 1 by default: a single NATS server can hold no more; a JetStream cluster should use 3.
  const replicas = replicasFlag === undefined ? 1 : Number(replicasFlag);
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > MAX_STREAM_REPLICAS) {
    throw new ConfigError('--eventlog-replicas', replicasFlag, `an integer 1..${MAX_STREAM_REPLICAS}, 1 by default; 3 for a JetStream cluster`);
  }
  return { kind, url: natsUrl, replicas, streamPrefix };
}

/** Builds the frozen HubConfig from flags and the environment (CORRAL_MASTER_KEY, CORRAL_POSTGRES_URL, CORRAL_NATS_URL, CORRAL_LOG_LEVEL). */
export function loadHubConfig(flags: StartFlags, env: NodeJS.ProcessEnv = process.env): HubConfig {
  const dataDir = resolve(flags.data ?? './corral-data');
  const bind = flags.bind ?? '127.0.0.1';
  if (isIP(bind) === 0) throw new ConfigError('--bind', bind, 'an IP address such as 127.0.0.1, or 0.0.0.0 for all interfaces');
  const hostName = flags.hostname ?? 'localhost';
  if (!/^[A-Za-z0-9.\-:]+$/.test(hostName)) throw new ConfigError('--hostname', hostName, 'a DNS name or IP address');
  const storeKind = flags.store ?? 'sqlite';
  if (storeKind !== 'sqlite' && storeKind !== 'postgres') throw new ConfigError('--store', storeKind, 'sqlite or postgres');
  const pgUrl = flags['postgres-url'] ?? env.CORRAL_POSTGRES_URL;
  if (storeKind === 'postgres' && !pgUrl) throw new ConfigError('--postgres-url', pgUrl, 'required with --store postgres (or CORRAL_POSTGRES_URL)');
  if ((flags['tls-cert'] === undefined) !== (flags['tls-key'] === undefined)) {
    throw new ConfigError('--tls-cert/--tls-key', flags['tls-cert'] ?? flags['tls-key'], 'give both or neither');
  }
  const logLevel = flags['log-level'] ?? env.CORRAL_LOG_LEVEL ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError('--log-level', logLevel, LOG_LEVELS.join(', '));
  const schema = flags['postgres-schema'];
  if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new ConfigError('--postgres-schema', schema, 'a lower-case SQL identifier');
  const busKind = flags.bus ?? 'inprocess';
  if (busKind !== 'inprocess' && busKind !== 'nats') throw new ConfigError('--bus', busKind, 'inprocess or nats');
  const natsUrl = flags['nats-url'] ?? env.CORRAL_NATS_URL;
  if (busKind === 'nats' && !natsUrl) throw new ConfigError('--nats-url', natsUrl, 'required with --bus nats (or CORRAL_NATS_URL)');
  const eventLog = parseEventLog(flags, natsUrl);
  const config: HubConfig = {
    dataDir, hostName, bind,
    httpsPort: port('https-port', flags['https-port'], 443),
    mqttsPort: port('mqtts-port', flags['mqtts-port'], 8883),
    store: storeKind === 'sqlite' ? { kind: 'sqlite', file: join(dataDir, 'corral.db') } : { kind: 'postgres', url: pgUrl as string, schema },
    tls: flags['tls-cert'] && flags['tls-key'] ? { certFile: resolve(flags['tls-cert']), keyFile: resolve(flags['tls-key']) } : undefined,
    masterKeyBase64: env.CORRAL_MASTER_KEY || undefined,
    bus: busKind === 'nats' ? { kind: 'nats', url: natsUrl as string } : { kind: 'inprocess' },
    mqttPort: flags['mqtt-port'] === undefined ? undefined : port('mqtt-port', flags['mqtt-port'], 0),
    logLevel,
    nodeId: flags['node-id'] ?? `${osHostname()}:${process.pid}`,
    limits: {
      twin: {
        // IoT Hub's limits are the floor; they may be raised.
        tagsBytes: atLeast('twin-tags-bytes', flags['twin-tags-bytes'], IOT_HUB_TWIN_LIMITS.tagsBytes, "IoT Hub's limit may only be raised"),
        desiredBytes: atLeast('twin-desired-bytes', flags['twin-desired-bytes'], IOT_HUB_TWIN_LIMITS.desiredBytes, "IoT Hub's limit may only be raised"),
        reportedBytes: atLeast('twin-reported-bytes', flags['twin-reported-bytes'], IOT_HUB_TWIN_LIMITS.reportedBytes, "IoT Hub's limit may only be raised"),
        maxDepth: atLeast('twin-max-depth', flags['twin-max-depth'], IOT_HUB_TWIN_LIMITS.maxDepth, "IoT Hub's limit may only be raised"),
      },
      // 1 MiB: a bulk call of 100 devices with twins fits with room to spare.
      maxBodyBytes: atLeast('max-body-bytes', flags['max-body-bytes'], 1024 * 1024, 'at least 1 MiB'),
      // IoT Hub's 256 KB device-to-cloud limit; may be raised.
      maxMessageBytes: atLeast('max-message-bytes', flags['max-message-bytes'], 256 * 1024, "IoT Hub's limit may only be raised"),
      serviceRequestsPerSecond: flags['max-requests-per-second'] === undefined ? 0 : atLeast('max-requests-per-second', flags['max-requests-per-second'], 1, '0 is the default, meaning no limit'),
    },
    eventLog,
    eventLogRetention: {
      // IoT Hub's built-in endpoint keeps one day by default.
      maxAgeMs: (flags['eventlog-retention-hours'] === undefined ? 24 : atLeast('eventlog-retention-hours', flags['eventlog-retention-hours'], 1, 'whole hours, 24 by default')) * 3600_000,
      maxRecords: flags['eventlog-max-records'] === undefined ? undefined : atLeast('eventlog-max-records', flags['eventlog-max-records'], 1000, 'no count limit by default'),
    },
  };
  return Object.freeze(config);
}

/** How the CLI's admin verbs reach a hub: a connection string, or a data dir whose hub.json holds one. */
export interface ClientConfig {
  readonly connectionString?: string;
  readonly dataDir: string;
}

export function loadClientConfig(flags: { 'connection-string'?: string; data?: string }, env: NodeJS.ProcessEnv = process.env): ClientConfig {
  return Object.freeze({
    connectionString: flags['connection-string'] ?? env.CORRAL_CONNECTION_STRING ?? undefined,
    dataDir: resolve(flags.data ?? './corral-data'),
  });
}
