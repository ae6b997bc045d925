import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { JsonObject } from '../../src/ports/store/index.js';
import { seededRandom as random } from '../../test/support/mqtt-raw.js';

/**
 * The benchmark's fleet: device i is the same in every run (a seeded generator), so the JSONL file the hub imports
 * and the rows the peer inserts describe the same devices. Twins look like a building-automation fleet's: tags
 * ~150 bytes, desired ~100, reported ~200 (JSON text); no keys, so the hub generates and seals them on import.
 */
export interface BenchDevice {
  readonly id: string;
  readonly status: 'enabled';
  readonly tags: JsonObject;
  readonly properties: { readonly desired: JsonObject; readonly reported: JsonObject };
}

const MODELS = ['TX-4400', 'TX-4410', 'HV-200', 'HV-220e', 'AQ-9'];
const CHANNELS = ['stable', 'stable', 'stable', 'beta', 'lts'];
const MODES = ['auto', 'eco', 'comfort', 'off'];
const ZONES = ['north', 'south', 'east', 'west'];

/**
 * Optional additions to the fleet, off by default so the registry benchmark's fleet stays as it was.
 * `batches`: tags.batch = 'b-<i mod batches>', so a fleet of 10 × batches devices has exactly 10 devices in each batch,
 * spread over the whole id range (b, b + batches, b + 2 × batches, …) rather than side by side.
 */
export interface FleetShape {
  readonly batches?: number;
}

/** The tags.batch value of batch b. */
export function batchTag(b: number): string {
  return `b-${b}`;
}

/** The id of device i (0-based): sortable, fixed width. */
export function benchDeviceId(i: number): string {
  return `bench-dev-${String(i).padStart(8, '0')}`;
}

/** Device i with its twin, always the same for the same i. */
export function benchDevice(i: number, shape: FleetShape = {}): BenchDevice {
  const r = random(i * 2654435761);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  const fixed = (lo: number, hi: number, digits: number) => Number((lo + r() * (hi - lo)).toFixed(digits));
  const minor = int(0, 9);
  return {
    id: benchDeviceId(i),
    status: 'enabled',
    tags: {
      site: `plant-${String(int(1, 40)).padStart(2, '0')}`,
      building: `B${int(1, 9)}`,
      floor: int(0, 24),
      room: `R${int(100, 999)}`,
      zone: pick(ZONES),
      model: pick(MODELS),
      firmwareChannel: pick(CHANNELS),
      owner: `facilities-team-${int(1, 60)}`,
      ...(shape.batches === undefined ? {} : { batch: batchTag(i % shape.batches) }),
    },
    properties: {
      desired: {
        telemetryIntervalSeconds: pick([15, 30, 60, 300]),
        setpoint: fixed(18, 24, 1),
        mode: pick(MODES),
        firmware: { version: `4.${minor}.${int(0, 5)}` },
      },
      reported: {
        firmware: { version: `4.${minor}.${int(0, 5)}`, updatedAt: new Date(Date.UTC(2025, 0, 1) + int(0, 3e10)).toISOString() },
        temperature: fixed(15, 30, 2),
        uptimeSeconds: int(60, 9_000_000),
        network: { rssi: -int(40, 90), ip: `10.${int(0, 255)}.${int(0, 255)}.${int(1, 254)}` },
        battery: { level: int(5, 100), charging: r() < 0.2 },
      },
    },
  };
}

/** Writes devices 0..count-1 as JSON Lines; resolves with the file's size in bytes. */
export async function writeDevicesFile(file: string, count: number, shape: FleetShape = {}): Promise<number> {
  const out = createWriteStream(file);
  let bytes = 0;
  const LINES_PER_CHUNK = 1000;
  for (let start = 0; start < count; start += LINES_PER_CHUNK) {
    let chunk = '';
    for (let i = start; i < Math.min(count, start + LINES_PER_CHUNK); i++) chunk += JSON.stringify(benchDevice(i, shape)) + '\n';
    bytes += Buffer.byteLength(chunk);
    if (!out.write(chunk)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  return bytes;
}
