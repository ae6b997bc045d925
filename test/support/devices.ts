import { once } from 'node:events';
import { join } from 'node:path';
import iothub from 'azure-iothub';
import deviceSdk from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import deviceHttp from 'azure-iot-device-http';
import { SqliteEventLog } from '../../src/ports/eventlog/sqlite/index.js';
import type { StoredEvent } from '../../src/ports/eventlog/index.js';
import type { RunningHub } from './hub-process.js';

// The SDKs are CommonJS: take their exports from the default import.
const { Client: DeviceClient, Message } = deviceSdk;
const { Mqtt, MqttWs } = deviceMqtt;
const { Http } = deviceHttp;
type DeviceClient = deviceSdk.Client;

export { DeviceClient, Message, Mqtt, MqttWs, Http };

export type Transport = 'mqtt' | 'mqttws' | 'http';

const TRANSPORTS = { mqtt: Mqtt, mqttws: MqttWs, http: Http } as const;

/** Creates a device with SAS keys through the registry; returns its device connection string. */
export async function createDevice(hub: RunningHub, deviceId: string, extra: Record<string, unknown> = {}): Promise<string> {
  const registry = iothub.Registry.fromConnectionString(hub.info.connectionStrings.iothubowner);
  const { responseBody: d } = await registry.create({ deviceId, ...extra });
  return `HostName=${hub.info.hostName};DeviceId=${deviceId};SharedAccessKey=${d.authentication?.symmetricKey?.primaryKey}`;
}

/** An opened device client of the unchanged azure-iot-device SDK over the given transport. */
export async function openDevice(connectionString: string, transport: Transport): Promise<DeviceClient> {
  const client = DeviceClient.fromConnectionString(connectionString, TRANSPORTS[transport]);
  await client.open();
  return client;
}

/** Reads the hub's event log file (WAL lets a reader in beside the hub's writer). */
export async function readEvents(hub: RunningHub, deviceId: string, kind = 'telemetry'): Promise<StoredEvent[]> {
  const log = SqliteEventLog.open(join(hub.dataDir, 'eventlog.db'), { deviceIndex: false }); // as the hub opens it
  try {
    return (await log.read({ after: 0, limit: 100_000, deviceId })).filter((e) => e.kind === kind);
  } finally {
    await log.close();
  }
}

/** Resolves with the next event of that name. */
export async function nextEvent<T = unknown>(emitter: NodeJS.EventEmitter, name: string): Promise<T> {
  const [value] = await once(emitter, name);
  return value as T;
}
