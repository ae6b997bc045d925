import { randomInt } from 'node:crypto';
import type { IdentityKey } from '../../ports/store/index.js';

/** IoT Hub's "never" timestamp. */
export const NEVER = '0001-01-01T00:00:00Z';

/** An opaque device etag in IoT Hub's look (base64 of a decimal number); new on every identity update. */
export function newDeviceEtag(): string {
  return Buffer.from(String(randomInt(1, 2 ** 47))).toString('base64');
}

let lastGeneration = 0n;
/** IoT Hub generation ids are .NET ticks (100 ns since 0001-01-01): unique and increasing per create. */
export function newGenerationId(nowMs: number): string {
  const ticks = BigInt(nowMs) * 10_000n + 621_355_968_000_000_000n;
  lastGeneration = ticks > lastGeneration ? ticks : lastGeneration + 1n;
  return lastGeneration.toString();
}

export function keyOf(r: { deviceId: string; moduleId: string }): IdentityKey {
  return { deviceId: r.deviceId, moduleId: r.moduleId };
}
