import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SelectItem } from '../../ports/store/query.js';
import { parseQuery, projectRow } from './index.js';

const twin = {
  deviceId: 'd1',
  etag: 'AAAAAAAAAAE=',
  deviceEtag: 'ODk=',
  status: 'enabled',
  statusUpdateTime: '0001-01-01T00:00:00Z',
  connectionState: 'Disconnected',
  lastActivityTime: '2024-05-01T10:00:00Z',
  cloudToDeviceMessageCount: 0,
  authenticationType: 'sas',
  x509Thumbprint: { primaryThumbprint: null, secondaryThumbprint: null },
  modelId: '',
  version: 4,
  tags: { site: 'north', 'my key': [1, 2], nested: { a: { b: true } } },
  properties: {
    desired: { fw: '2.0', $metadata: { $lastUpdated: '2024-05-01T09:00:00Z' }, $version: 3 },
    reported: { fw: '1.9', $version: 7 },
  },
  capabilities: { iotEdge: false },
};

function itemsOf(query: string): readonly SelectItem[] {
  const { select } = parseQuery(query);
  assert.equal(select.kind, 'paths');
  return select.kind === 'paths' ? select.items : [];
}

test('a projection reads each path from the twin and puts it under its alias', () => {
  const items = itemsOf("SELECT DeviceId, LastActivityTime, properties.reported.fw AS reportedFw, tags['my key'], tags.nested.a.b FROM devices");
  assert.deepEqual(projectRow(items, twin), {
    deviceId: 'd1', lastActivityTime: '2024-05-01T10:00:00Z', reportedFw: '1.9', 'my key': [1, 2], b: true,
  });
});

test('whole sections, system objects and $ names project as they are', () => {
  const items = itemsOf('SELECT properties.desired, capabilities, properties.desired.$version AS v, properties.desired.$metadata.$lastUpdated AS at, etag FROM devices');
  assert.deepEqual(projectRow(items, twin), {
    desired: twin.properties.desired, capabilities: { iotEdge: false }, v: 3, at: '2024-05-01T09:00:00Z', etag: 'AAAAAAAAAAE=',
  });
});

test('a missing value leaves its key out, and null is a value', () => {
  const items = itemsOf('SELECT tags.absent, moduleId, tags.site.deeper, x509Thumbprint.primaryThumbprint AS thumb, statusReason FROM devices');
  assert.deepEqual(projectRow(items, twin), { thumb: null });
});

test('a path does not index into arrays', () => {
  const items = itemsOf("SELECT tags['my key']['0'] AS first FROM devices");
  assert.deepEqual(projectRow(items, twin), {});
});

test('a device-job row projects its own names, with or without the devices.jobs. prefix', () => {
  const job = {
    deviceId: 'd1', jobId: 'j1', jobType: 'scheduleDeviceMethod', status: 'completed',
    createdDateTimeUtc: '2024-05-01T10:00:00Z', startTimeUtc: '2024-05-01T10:00:01Z', endTimeUtc: '2024-05-01T10:00:02Z',
    lastUpdatedDateTimeUtc: '2024-05-01T10:00:02Z', outcome: { deviceMethodResponse: { status: 200, payload: { ok: 1 } } },
  };
  const items = itemsOf('SELECT devices.jobs.jobId, status, outcome.deviceMethodResponse.payload AS payload, error FROM devices.jobs');
  assert.deepEqual(projectRow(items, job), { jobId: 'j1', status: 'completed', payload: { ok: 1 } });
});

test('prototype names are plain keys: nothing inherited is read and nothing is polluted', () => {
  const items = itemsOf("SELECT tags.__proto__, tags.constructor, tags['toString'] AS s FROM devices");
  const row = projectRow(items, JSON.parse('{"tags":{"__proto__":{"polluted":1}}}'));
  assert.deepEqual(Object.keys(row), ['__proto__']);
  assert.deepEqual(Object.getOwnPropertyDescriptor(row, '__proto__')?.value, { polluted: 1 });
  assert.equal(Object.getPrototypeOf(row), Object.prototype);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

test('anything that is not an object gives an empty row, never an error', () => {
  const items = itemsOf('SELECT deviceId, tags.site FROM devices');
  for (const doc of [null, undefined, 42, 'text', [twin], { tags: 'flat' }]) assert.deepEqual(projectRow(items, doc), {});
});

test('group and aggregate items are left to the store', () => {
  const items: SelectItem[] = [
    { kind: 'group', field: { kind: 'column', column: 'status' }, alias: 'status' },
    { kind: 'aggregate', aggregate: 'count', alias: 'n' },
    { kind: 'path', path: ['deviceId'], alias: 'id' },
  ];
  assert.deepEqual(projectRow(items, twin), { id: 'd1' });
});
