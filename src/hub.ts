import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { HubConfig } from './config/index.js';
import { DEFAULT_POLICIES, ensurePolicies, ServiceAccess } from './core/access/index.js';
import { BulkRegistry, Registry, RegistryTransfer } from './core/identity/index.js';
import { Twins } from './core/twins/index.js';
import { registerCorralRoutes } from './edges/rest/corral.js';
import { registerCertificateRoutes } from './edges/rest/certificates.js';
import { CaCertificates } from './core/certificates/index.js';
import { registerIdentityRoutes } from './edges/rest/identity.js';
import { createRestServer } from './edges/rest/server.js';
import { registerTwinRoutes } from './edges/rest/twins.js';
import { Gateway } from './edges/mqtt/gateway.js';
import { mqttC2dSource } from './edges/mqtt/c2d-source.js';
import { listenMqtt, listenMqtts, type MqttListener } from './edges/mqtt/listen-tls.js';
import { attachMqttWebSocket } from './edges/mqtt/listen-ws.js';
import { registerMethodRoutes } from './edges/rest/methods.js';
import { registerDeviceTelemetryRoutes } from './edges/http-device/telemetry.js';
import { DeviceAuth } from './core/devices/index.js';
import { CloudToDevice, IOT_HUB_C2D_LIMITS, startC2dSweeper } from './core/c2d/index.js';
import { authenticateWith, registerC2dRoutes, registerDeviceC2dRoutes } from './edges/rest/c2d.js';
import { Methods } from './core/methods/index.js';
import { JobRunner, Jobs } from './core/jobs/index.js';
import { FleetQueries } from './core/query/service.js';
import { registerQueryRoutes } from './edges/rest/query.js';
import { registerJobRoutes } from './edges/rest/jobs.js';
import { registerIndexRoutes } from './edges/rest/indexes.js';
import { Presence } from './core/presence/index.js';
import { startEventLogRetention, Telemetry } from './core/telemetry/index.js';
import type { Bus } from './ports/bus/index.js';
import { InProcessBus } from './ports/bus/in-process/index.js';
import { NatsBus } from './ports/bus/nats/index.js';
import type { EventLog, EventLogSet } from './ports/eventlog/index.js';
import { SqliteEventLogSet } from './ports/eventlog/sqlite/index.js';
import { JetStreamEventLogSet } from './ports/eventlog/jetstream/index.js';
import { checkEndpointSpec, openEndpoint } from './ports/endpoints/index.js';
import { SystemEvents } from './core/events/index.js';
import {
  Alerts, AppendSignal, ConsumerGroups, healthProfileValidator, RulesEngine, ruleValidator, Wellness, WELLNESS_RULE, DeviceStateConsumer, endpointRemovalCheck, endpointValidator, Endpoints, enrichmentValidator,
  Pipeline, pipelineMetrics, PipelineSettings, Routing, routeValidator, signalAppends,
} from './core/pipeline/index.js';
import { registerRoutingRoutes } from './edges/rest/pipeline.js';
import { registerEventRoutes } from './edges/rest/events.js';
import { registerDeviceStateRoutes } from './edges/rest/device-state.js';
import { registerMetricsRoute } from './edges/rest/metrics.js';
import { registerAlertRoutes } from './edges/rest/alerts.js';
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
  readonly ports: { readonly https: number; readonly mqtts: number; readonly mqtt?: number };
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

async function openBus(config: HubConfig): Promise<Bus> {
  return config.bus.kind === 'nats' ? NatsBus.connect(config.bus.url, { name: config.nodeId }) : new InProcessBus();
}

async function openEventLogs(config: HubConfig): Promise<EventLogSet> {
  if (config.eventLog.kind === 'sqlite') {
    // Telemetry has a log of its own, so its group commits never wait on registry writes. No per-device index:
    // ingest is the hot path, and that index costs 6-7x its throughput (bench/eventlog.ts).
    return SqliteEventLogSet.open(join(config.dataDir, 'eventlog.db'), { deviceIndex: false });
  }
  return JetStreamEventLogSet.open({
    natsUrl: config.eventLog.url, nodeId: config.nodeId, replicas: config.eventLog.replicas,
    maxAgeMs: config.eventLogRetention.maxAgeMs, streamPrefix: config.eventLog.streamPrefix,
    subjectPrefix: config.eventLog.streamPrefix === 'CORRAL_EVENTS' ? 'corral.events' : `corral.events.${config.eventLog.streamPrefix.toLowerCase()}`,
    connectionName: `${config.nodeId} event log`,
  });
}

async function listenOr<T>(what: string, config: HubConfig, port: number, option: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    throw new ListenError(what, config.bind, port, option, err);
  }
}

/** The composition root: the only place that picks adapters and wires core to edges. */
export async function createHub(config: HubConfig, clock: Clock = systemClock): Promise<Hub> {
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const logger = createLogger(config.logLevel, config.nodeId);
  const keyring = new AesGcmKeyRing(loadMasterKey({ base64: config.masterKeyBase64, file: join(config.dataDir, 'keys', 'master.key') }));
  const store = await openStore(config);
  const closers: (() => Promise<void>)[] = [() => store.close()];
  try {
    const logs = await openEventLogs(config);
    closers.unshift(() => logs.close());
    // Every append on this node wakes the pipeline's cursors at once; other partitions are polled.
    const appended = new AppendSignal();
    const eventLog: EventLog = signalAppends(logs.local, appended);
    const events = new SystemEvents({
      eventLog, clock, hubName: config.hostName,
      onError: (err, source) => logger.warn({ err, source }, 'a system event could not be appended to the EventLog'),
    });
    // A minute between trims: retention is counted in hours, and each trim removes only a prefix of the log.
    closers.unshift(startEventLogRetention(eventLog, clock, {
      ...config.eventLogRetention, intervalMs: 60_000, onError: (err) => logger.warn({ err }, 'EventLog retention trim failed'),
    }));
    const bus = await openBus(config);
    closers.unshift(() => bus.close());
    const policies = await ensurePolicies(store, keyring);
    const tls = config.tls ? loadTlsFiles(config.tls.certFile, config.tls.keyFile)
      : ensureDevCa(config.dataDir, [config.hostName, config.bind, 'localhost', '127.0.0.1']);
    const access = new ServiceAccess(policies, config.hostName, clock);
    const registry = new Registry({ store, keyring, clock, bus, events });
    const twins = new Twins({ store, clock, limits: config.limits.twin, bus, events });
    const bulk = new BulkRegistry({ store, clock, registry, limits: config.limits.twin, bus, events });
    const transfer = new RegistryTransfer({ store, keyring, clock, registry, limits: config.limits.twin });
    const methods = new Methods({ store, bus });
    const deviceAuth = new DeviceAuth({ store, keyring, clock, hostName: config.hostName, policies });
    const c2d = new CloudToDevice({
      store, clock, bus, limits: IOT_HUB_C2D_LIMITS,
      onWakeUpError: (err, key) => logger.warn({ err, deviceId: key.deviceId, moduleId: key.moduleId }, 'C2D wake-up not published'),
    });
    // Expiry and dead-lettering happen on time, not only when a device asks; 5 s keeps feedback prompt and cheap.
    closers.unshift(startC2dSweeper(c2d, { intervalMs: 5000, onError: (err) => logger.warn({ err }, 'C2D sweep failed') }));
    const telemetry = new Telemetry({ eventLog, clock, limits: { maxMessageBytes: config.limits.maxMessageBytes } });
    const presence = new Presence({ store, eventLog, clock, events });
    const gateway = new Gateway({
      hostName: config.hostName, clock, logger: logger.child({ edge: 'mqtt' }), bus, twins, c2d: mqttC2dSource(c2d),
      auth: deviceAuth, telemetry, presence, sessions: store.mqttSessions, maxPacketBytes: config.limits.maxMessageBytes + 64 * 1024,
    });

    const runner = new JobRunner({
      store, twins, methods, clock, limits: config.limits.twin, nodeId: config.nodeId, events,
      onError: (err, jobId) => logger.warn({ err, jobId }, 'job step failed; it is retried'),
    });
    const jobs = new Jobs({ store, clock, limits: config.limits.twin, onScheduled: () => runner.wake(), events });
    const queries = new FleetQueries({ store });

    // The pipeline: settings every node shares through the Store, endpoints, and the consumers of the log.
    const settings = new PipelineSettings({ store: store.pipeline, clock });
    settings.register('endpoint', endpointValidator(checkEndpointSpec), endpointRemovalCheck);
    settings.register('route', routeValidator);
    settings.register('enrichment', enrichmentValidator);
    const endpoints = new Endpoints({ clock, deadLetters: eventLog, open: openEndpoint, checkSpec: checkEndpointSpec });
    closers.unshift(() => endpoints.close());
    settings.register('rule', ruleValidator);
    settings.register('healthProfile', healthProfileValidator);
    const alerts = new Alerts({ store: store.pipeline, clock, events });
    const wellness = new Wellness({
      store: store.pipeline, alerts, settings, clock, onError: (err, profile) => logger.warn({ err, profile }, 'health profile skipped'),
    });
    const rules = new RulesEngine({
      settings, alerts, store, clock, onError: (err, ctx) => logger.warn({ err, ...ctx }, 'rule skipped a record'),
    });
    const stateConsumer = new DeviceStateConsumer({
      store: store.pipeline, onSeen: (keys, nowMs) => wellness.seen(keys, nowMs),
      onDeleted: async (ids) => {
        for (const deviceId of ids) await alerts.clear(WELLNESS_RULE, { deviceId, moduleId: '' }, { reason: 'the device was deleted' });
      },
    });
    const pipeline: Pipeline = new Pipeline({
      store, log: logs, clock, settings, endpoints, signal: appended, hubName: config.hostName,
      consumers: [stateConsumer, rules],
      sweepers: [
        // Windows live in the memory of the node reading their partition; absence rules and wellness are fleet-wide.
        { name: 'windows', intervalMs: 1000, perNode: true, run: (now) => rules.sweepWindows(now) },
        { name: 'rules', intervalMs: 5000, run: (now) => rules.sweepFleet(now) },
        { name: 'wellness', intervalMs: 5000, run: async (now) => { await wellness.sweep(now); } },
      ],
      onPartitionStopped: (p) => rules.forgetPartition(p),
      onError: (err, what) => logger.warn({ err, what }, 'pipeline step failed; it is retried'),
    });
    const routing = new Routing({ settings, pipeline, store, hubName: config.hostName });
    const groups = new ConsumerGroups({ store, log: logs, settings, clock, routes: () => pipeline.routeTable() });

    const rest: FastifyInstance = createRestServer({
      tls, access, logger, maxBodyBytes: config.limits.maxBodyBytes, requestsPerSecond: config.limits.serviceRequestsPerSecond,
    });
    registerIdentityRoutes(rest, { registry, bulk, keyring, health: () => store.pipeline.healthCounts() });
    registerTwinRoutes(rest, { twins });
    registerMethodRoutes(rest, { methods });
    registerC2dRoutes(rest, { c2d });
    registerDeviceC2dRoutes(rest, { c2d, authenticateDevice: authenticateWith(deviceAuth) });
    registerDeviceTelemetryRoutes(rest, { auth: deviceAuth, telemetry, presence });
    registerCorralRoutes(rest, { transfer, access, hostName: config.hostName });
    registerCertificateRoutes(rest, { certificates: new CaCertificates({ store, clock }) });
    registerQueryRoutes(rest, { queries });
    registerJobRoutes(rest, { jobs });
    registerIndexRoutes(rest, { queries, now: () => new Date(clock.now()).toISOString() });
    registerRoutingRoutes(rest, { settings, routing, pipeline });
    registerEventRoutes(rest, { groups, settings, signal: appended });
    registerDeviceStateRoutes(rest, { store, groups, now: () => clock.now() });
    registerAlertRoutes(rest, { settings, alerts, wellness });
    registerMetricsRoute(rest, { collect: () => pipelineMetrics({ log: logs, pipeline, store, acceptedCount: () => telemetry.acceptedCount }) });
    const ws = attachMqttWebSocket(rest.server, gateway);
    await listenOr('HTTPS', config, config.httpsPort, '--https-port', () => rest.listen({ host: config.bind, port: config.httpsPort }));
    closers.unshift(async () => { ws.close(); await rest.close(); });
    const mqtts: MqttListener = await listenOr('MQTT/TLS', config, config.mqttsPort, '--mqtts-port',
      () => listenMqtts({ tls, host: config.bind, port: config.mqttsPort, gateway }));
    closers.unshift(() => mqtts.close());
    if (config.mqttPort !== undefined) {
      const port = config.mqttPort;
      const plain = await listenOr('MQTT', config, port, '--mqtt-port', () => listenMqtt({ host: config.bind, port, gateway }));
      closers.unshift(() => plain.close());
    }
    // Jobs start once every listener is up; on stop they hand their leased devices back first.
    runner.start();
    closers.unshift(() => runner.stop());
    pipeline.start();
    closers.unshift(() => pipeline.stop());
    // Device connections close before the listeners, so their presence is written while the store is open.
    closers.unshift(() => gateway.closeAll('hub stopping'));

    const info: HubInfo = {
      hostName: config.hostName,
      ports: { https: config.httpsPort, mqtts: config.mqttsPort, ...(config.mqttPort !== undefined ? { mqtt: config.mqttPort } : {}) },
      caFile: tls.caFile,
      // In the start contract's order: iothubowner, service, registryRead, registryReadWrite, device.
      connectionStrings: Object.fromEntries(Object.keys(DEFAULT_POLICIES).map((name) => policies.find((p) => p.name === name))
        .filter((p) => p !== undefined).map((p) => [
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
