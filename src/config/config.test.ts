import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadHubConfig } from './index.js';

test('EventLog retention defaults to one day without a count limit, and both may be set', () => {
  assert.deepEqual(loadHubConfig({}, {}).eventLogRetention, { maxAgeMs: 24 * 3600_000, maxRecords: undefined });
  assert.deepEqual(loadHubConfig({ 'eventlog-retention-hours': '168', 'eventlog-max-records': '5000000' }, {}).eventLogRetention,
    { maxAgeMs: 168 * 3600_000, maxRecords: 5_000_000 });
});

test('a bad retention setting names the flag, the value and what is allowed', () => {
  assert.throws(() => loadHubConfig({ 'eventlog-retention-hours': '0.5' }, {}), (err: Error) => {
    assert.ok(err instanceof ConfigError);
    assert.match(err.message, /--eventlog-retention-hours: "0.5" \(an integer ≥ 1/);
    return true;
  });
  assert.throws(() => loadHubConfig({ 'eventlog-max-records': '10' }, {}), /--eventlog-max-records: "10" \(an integer ≥ 1000/);
});
