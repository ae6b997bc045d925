import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IOT_HUB_TWIN_LIMITS } from '../twins/index.js';
import { DEFAULT_MAX_EXECUTION_SECONDS, parseJobRequest } from './request.js';

const NOW = Date.UTC(2026, 10, 23, 12);
const twinJob = (over: Record<string, unknown> = {}) => ({
  jobId: 'j1', type: 'scheduleUpdateTwin', queryCondition: "tags.site = 'x'", updateTwin: { etag: '*', properties: { desired: { a: 1 } } }, ...over,
});
const parse = (body: unknown, id = 'j1') => parseJobRequest(id, body, NOW, IOT_HUB_TWIN_LIMITS);

test('a twin job without start time or maximum is queued now with IoT Hub\'s 3600 s default', () => {
  const job = parse(twinJob({ startTime: null }));
  assert.equal(job.status, 'queued');
  assert.equal(job.startMs, NOW);
  assert.equal(job.maxExecutionSeconds, DEFAULT_MAX_EXECUTION_SECONDS);
  assert.deepEqual(job.request, { updateTwin: { etag: '*', properties: { desired: { a: 1 } } } });
  assert.equal(job.expandAfter, '');
  assert.equal(job.devicesPerSecond, null);
});

test('a job whose start time is ahead is scheduled for it', () => {
  const job = parse(twinJob({ startTime: new Date(NOW + 60_000).toISOString(), maxExecutionTimeInSeconds: 120 }));
  assert.equal(job.status, 'scheduled');
  assert.equal(job.startMs, NOW + 60_000);
  assert.equal(job.maxExecutionSeconds, 120);
});

test('a method job keeps the checked call with IoT Hub\'s default timeout, and Corral\'s rate', () => {
  const job = parse({ type: 'scheduleDeviceMethod', queryCondition: "deviceId IN ['a','b']", cloudToDeviceMethod: { methodName: 'reboot' }, corral: { devicesPerSecond: 50 } });
  assert.deepEqual(job.request, { cloudToDeviceMethod: { methodName: 'reboot', payload: null, responseTimeoutInSeconds: 30, connectTimeoutInSeconds: 0 } });
  assert.equal(job.devicesPerSecond, 50);
});

test('each bad field is refused with a message naming it', () => {
  const cases: [unknown, RegExp, string?][] = [
    [twinJob(), /job id/, 'bad id!'],
    [twinJob({ jobId: 'other' }), /differs from the path/],
    [twinJob({ type: 'export' }), /type must be scheduleUpdateTwin or scheduleDeviceMethod/],
    [twinJob({ queryCondition: '' }), /queryCondition/],
    [twinJob({ queryCondition: "tags.site = " }), /position/],
    [twinJob({ updateTwin: { properties: { reported: { a: 1 } } } }), /reported/],
    [twinJob({ updateTwin: {} }), /changes nothing/],
    [twinJob({ startTime: 'tomorrow' }), /startTime/],
    [twinJob({ maxExecutionTimeInSeconds: 0 }), /maxExecutionTimeInSeconds/],
    [twinJob({ corral: { devicesPerSecond: -1 } }), /devicesPerSecond/],
    [{ type: 'scheduleDeviceMethod', queryCondition: "deviceId = 'a'", cloudToDeviceMethod: { payload: 1 } }, /methodName/],
    [{ type: 'scheduleDeviceMethod', queryCondition: "deviceId = 'a'", cloudToDeviceMethod: { methodName: 'm', responseTimeoutInSeconds: 1000 } }, /responseTimeoutInSeconds/],
    ['not an object', /JSON object/],
  ];
  for (const [body, message, id] of cases) {
    assert.throws(() => parse(body, id), (err: Error & { code?: number }) => {
      assert.equal(err.code, 400004, `${JSON.stringify(body)}: ${err.message}`);
      assert.match(err.message, message);
      return true;
    });
  }
});
