import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { HubConfig } from './config/index.js';
import { ensurePolicies, ServiceAccess } from './core/access/index.js';
import { BulkRegistry, Registry, RegistryTransfer } from './core/identity/index.js';
import { Twins } from './core/twins/index.js';
import { registerCorralRoutes } from './edges/rest/corral.js';
import { registerIdentityRoutes } from './edges/rest/identity.js';
import { createRestServer } from './edges/rest/server.js';
import { registerTwinRoutes } from './edges/rest/twins.js';
import { listenMqttsUnavailable, type MqttsListener } from './edges/mqtt/listen-tls.js';
import { ensureDevCa, loadTlsFiles } from './edges/tls/dev-ca.js';
import { createLogger, type Logger } from './observability/logger.js';
import { systemClock, type Clock } from './ports/clock/index.js';
import { AesGcmKeyRing, loadMasterKey } from './ports/keyring/index.js';
import type { Store } from './ports/store/index.js';
import { PostgresStore } from './ports/store/postgres/index.js';
import { SqliteStore } from './ports/store/sqlite/index.js';

/** What `corral ready` prints and `DIR/hub.json` holds. */
export interface HubInfo {
  readonly hostName: string;
  readonly ports: { readonly https: number; readonly mqtts: number };
  readonly caFile: string;
  readonly connectionStrings: Readonly<Record<string, string>>;
}

export interface Hub {
  readonly info: HubInfo;
  readonly logger: Logger;
  /** Stops accepting, finishes requests in flight, closes the store. */
  stop(): Promise<void>;
}

/** A listener that could not bind: which one, and the option that moves it. */
export class ListenError extends Error {
  constructor(what: string, address: string, port: number, option: string, cause: unknown) {
    super(`cannot listen for ${what} on ${address}:${port} (${(cause as NodeJS.ErrnoException).code ?? String(cause)}); choose another port with ${option}`, { cause });
  }
}

async function openStore(config: HubConfig): Promise<Store> {
  const store = config.store.kind === 'sqlite'
    ? SqliteStore.open(config.store.file)
    : await PostgresStore.connect({ url: config.store.url, schema: config.store.schema });
  await store.migrate();
  return store;
}

/** The composition root: the only place that picks adapters and wires core to edges. */
export async function createHub(config: HubConfig, clock: Clock = systemClock): Promise<Hub> {
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const logger = createLogger(config.logLevel, config.nodeId);
  const keyring = new AesGcmKeyRing(loadMasterKey({ base64: config.masterKeyBase64, file: join(config.dataDir, 'keys', 'master.key') }));
  const store = await openStore(config);
  const closers: (() => Promise<void>)[] = [() => store.close()];
  try {
    const policies = await ensurePolicies(store, keyring);
    const tls = config.tls ? loadTlsFiles(config.tls.certFile, config.tls.keyFile)
      : ensureDevCa(config.dataDir, [config.hostName, config.bind, 'localhost', '127.0.0.1']);
    const access = new ServiceAccess(policies, config.hostName, clock);
    const registry = new Registry({ store, keyring, clock });
    const twins = new Twins({ store, clock, limits: config.limits.twin });
    const bulk = new BulkRegistry({ store, clock, registry, limits: config.limits.twin });
    const transfer = new RegistryTransfer({ store, keyring, clock, registry, limits: config.limits.twin });

    const rest: FastifyInstance = createRestServer({
      tls, access, logger, maxBodyBytes: config.limits.maxBodyBytes, requestsPerSecond: config.limits.serviceRequestsPerSecond,
    });
    registerIdentityRoutes(rest, { registry, bulk, keyring });
    registerTwinRoutes(rest, { twins });
    registerCorralRoutes(rest, { transfer, access, hostName: config.hostName });
    try {
      await rest.listen({ host: config.bind, port: config.httpsPort });
    } catch (err) {
      throw new ListenError('HTTPS', config.bind, config.httpsPort, '--https-port', err);
    }
    closers.unshift(() => rest.close());
    let mqtts: MqttsListener;
    try {
      mqtts = await listenMqttsUnavailable({ tls, host: config.bind, port: config.mqttsPort, logger });
    } catch (err) {
      throw new ListenError('MQTT/TLS', config.bind, config.mqttsPort, '--mqtts-port', err);
    }
    closers.unshift(() => mqtts.close());

    const info: HubInfo = {
      hostName: config.hostName,
      ports: { https: config.httpsPort, mqtts: config.mqttsPort },
      caFile: tls.caFile,
      connectionStrings: Object.fromEntries(policies.map((p) => [
        p.name, `HostName=${config.hostName};SharedAccessKeyName=${p.name};SharedAccessKey=${p.primaryKey}`,
      ])),
    };
    writeFileSync(join(config.dataDir, 'hub.json'), JSON.stringify(info, null, 2) + '\n', { mode: 0o600 });
    logger.info({ hostName: config.hostName, bind: config.bind, ports: info.ports, store: config.store.kind }, 'hub started');
    let stopping: Promise<void> | undefined;
    return {
      info, logger,
      stop: () => (stopping ??= (async () => {
        for (const close of closers) await close().catch((err: unknown) => logger.error({ err }, 'error while stopping'));
        logger.info('hub stopped');
      })()),
    };
  } catch (err) {
    for (const close of closers) await close().catch(() => {});
    throw err;
  }
}
