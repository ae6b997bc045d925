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

test('the EventLog is SQLite by default; jetstream takes the NATS URL of --nats-url or CORRAL_NATS_URL, 1 replica, a stream prefix', () => {
  assert.deepEqual(loadHubConfig({}, {}).eventLog, { kind: 'sqlite' });
  assert.deepEqual(loadHubConfig({ eventlog: 'sqlite' }, {}).eventLog, { kind: 'sqlite' });
  assert.deepEqual(loadHubConfig({ eventlog: 'jetstream', 'nats-url': 'nats://n1:4222', 'node-id': 'n1' }, {}).eventLog,
    { kind: 'jetstream', url: 'nats://n1:4222', replicas: 1, streamPrefix: 'CORRAL_EVENTS' });
  assert.deepEqual(loadHubConfig({ eventlog: 'jetstream', 'eventlog-replicas': '3', 'node-id': 'n2', 'eventlog-stream-prefix': 'SITE_2' }, { CORRAL_NATS_URL: 'nats://n2:4222' }).eventLog,
    { kind: 'jetstream', url: 'nats://n2:4222', replicas: 3, streamPrefix: 'SITE_2' });
});

test('a bad EventLog setting names the flag, the value and what is allowed', () => {
  assert.throws(() => loadHubConfig({ eventlog: 'kafka' }, {}), (err: Error) => {
    assert.ok(err instanceof ConfigError);
    assert.match(err.message, /--eventlog: "kafka" \(sqlite or jetstream\)/);
    return true;
  });
  assert.throws(() => loadHubConfig({ eventlog: 'jetstream' }, {}), /--nats-url: undefined \(required with --eventlog jetstream/);
  assert.throws(() => loadHubConfig({ eventlog: 'jetstream', 'nats-url': 'nats://n1:4222' }, {}), /--node-id: undefined \(required with --eventlog jetstream/);
  assert.throws(() => loadHubConfig({ eventlog: 'jetstream', 'nats-url': 'nats://n1:4222', 'node-id': 'n', 'eventlog-stream-prefix': 'a.b' }, {}), /--eventlog-stream-prefix: "a.b" \(1 to 32 letters/);
  assert.throws(() => loadHubConfig({ 'eventlog-stream-prefix': 'X' }, {}), /--eventlog-stream-prefix: "X" \(only with --eventlog jetstream\)/);
  for (const replicas of ['0', '6', '2.5', 'three']) {
    assert.throws(() => loadHubConfig({ eventlog: 'jetstream', 'nats-url': 'nats://n1:4222', 'node-id': 'n1', 'eventlog-replicas': replicas }, {}),
      new RegExp(`--eventlog-replicas: "${replicas}" \\(an integer 1\\.\\.5`));
  }
  assert.throws(() => loadHubConfig({ 'eventlog-replicas': '3' }, {}), /--eventlog-replicas: "3" \(only with --eventlog jetstream\)/);
});
