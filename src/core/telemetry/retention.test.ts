import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../../ports/clock/index.js';
import { SqliteEventLog } from '../../ports/eventlog/sqlite/index.js';
import { startEventLogRetention } from './index.js';

const HOUR = 3600_000;

test('retention trims records older than the age limit, and beyond the count limit, at start and on each interval', async () => {
  const clock = new ManualClock();
  const log = SqliteEventLog.open(':memory:');
  try {
    const at = (hoursAgo: number) => ({ kind: 'telemetry', deviceId: 'd', moduleId: '', enqueuedTimeMs: clock.now() - hoursAgo * HOUR, properties: {}, body: new Uint8Array([1]) });
    await log.append([at(30), at(25), at(23), at(2), at(1), at(0)]);
    const errors: unknown[] = [];
    const stop = startEventLogRetention(log, clock, { maxAgeMs: 24 * HOUR, maxRecords: 3, intervalMs: 60_000, onError: (err) => errors.push(err) });
    await stop();
    const left = await log.read({ after: 0, limit: 100 });
    assert.deepEqual(left.map((e) => Math.round((clock.now() - e.enqueuedTimeMs) / HOUR)), [2, 1, 0]);
    assert.deepEqual(errors, []);
  } finally {
    await log.close();
  }
});
