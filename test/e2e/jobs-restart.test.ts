import assert from 'node:assert/strict';
import { test } from 'node:test';
import iothub from 'azure-iothub';
import { eventually } from '../support/eventually.js';
import { disposeHub, startHub, type RunningHub } from '../support/hub-process.js';
import { postgresHubSchema } from '../support/postgres-schema.js';
import { serviceCall } from '../support/rest.js';

const pgHub = await postgresHubSchema();
const DEVICES = Array.from({ length: 12 }, (_, i) => `restart-${String(i).padStart(2, '0')}`);

type Stats = { succeededCount: number; deviceCount: number; failedCount: number };

async function statusOf(hub: RunningHub, jobId: string): Promise<{ status: string; deviceJobStatistics: Stats }> {
  const jobs = iothub.JobClient.fromConnectionString(hub.info.connectionStrings.iothubowner);
  return (await jobs.getJob(jobId)).jobStatus as { status: string; deviceJobStatistics: Stats };
}

/** A job interrupted by a hub restart resumes where it was: every device done once the job completes, none failed. */
async function restartCase(address: string, args: string[]): Promise<void> {
  let hub = await startHub({ address, args });
  try {
    const registry = iothub.Registry.fromConnectionString(hub.info.connectionStrings.iothubowner);
    await registry.addDevices(DEVICES.map((deviceId) => ({ deviceId })));
    const res = await serviceCall(address, hub.info.connectionStrings.iothubowner, 'PUT', '/jobs/v2/resume-job?api-version=2021-04-12', {
      type: 'scheduleUpdateTwin', queryCondition: "STARTSWITH(deviceId, 'restart-')", updateTwin: { properties: { desired: { resumed: true } } },
      corral: { devicesPerSecond: 5 },
    });
    assert.equal(res.status, 200, res.text);
    await eventually(async () => assert.ok((await statusOf(hub, 'resume-job')).deviceJobStatistics.succeededCount >= 3), 10_000, 50);
    assert.equal(await hub.stop(), 0);
    hub = await startHub({ address, args, dataDir: hub.dataDir });
    await eventually(async () => assert.equal((await statusOf(hub, 'resume-job')).status, 'completed'), 20_000, 100);
    const done = await statusOf(hub, 'resume-job');
    assert.equal(done.deviceJobStatistics.deviceCount, DEVICES.length);
    assert.equal(done.deviceJobStatistics.succeededCount, DEVICES.length);
    const again = iothub.Registry.fromConnectionString(hub.info.connectionStrings.iothubowner);
    for (const id of DEVICES) assert.equal((await again.getTwin(id)).responseBody.properties.desired.resumed, true, id);
  } finally {
    await disposeHub(hub);
  }
}

test('SQLite: a job survives a hub restart and resumes where it was', () => restartCase('127.0.0.20', []));

test('PostgreSQL: a job survives a hub restart and resumes where it was', { skip: pgHub.skip }, () =>
  restartCase('127.0.0.21', pgHub.storeArgs));
