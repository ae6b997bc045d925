import { randomInt } from 'node:crypto';

/** IoT Hub's "never" timestamp. */
export const NEVER = '0001-01-01T00:00:00Z';

const ETAG_PREFIX = randomInt(1, 2 ** 31).toString(36);
let etagCounter = 0;

/**
 * An opaque device etag in IoT Hub's look (base64 of digits and letters); new on every identity update. A random
 * per-process prefix and a counter keep it unique across nodes and restarts without a random draw per update.
 */
export function newDeviceEtag(): string {
  return Buffer.from(`${ETAG_PREFIX}${(etagCounter++).toString(36)}`).toString('base64');
}

// .NET ticks are 100 ns since 0001-01-01: (ms + 62135596800000) * 10000 + sub-millisecond ticks.
const EPOCH_MS_IN_TICKS_BASE = 62_135_596_800_000;
let lastMsPart = 0;
let lastSub = 0;

/**
 * IoT Hub generation ids are .NET ticks: unique and increasing per create. Written as the millisecond part and a
 * four-digit sub-millisecond counter, so no BigInt is needed (the millisecond part stays below 2^53).
 */
export function newGenerationId(nowMs: number): string {
  const msPart = nowMs + EPOCH_MS_IN_TICKS_BASE;
  if (msPart > lastMsPart) {
    lastMsPart = msPart;
    lastSub = 0;
  } else if (++lastSub > 9999) {
    lastMsPart++;
    lastSub = 0;
  }
  return `${lastMsPart}${String(lastSub).padStart(4, '0')}`;
}
