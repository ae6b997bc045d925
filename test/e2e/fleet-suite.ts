import assert from 'node:assert/strict';
import type { test as nodeTest } from 'node:test';
import iothub from 'azure-iothub';
import { createDevice, openDevice, type DeviceClient } from '../support/devices.js';
import { eventually } from '../support/eventually.js';
import { disposeHub, startHub, type RunningHub } from '../support/hub-process.js';
import { serviceCall } from '../support/rest.js';

type Test = typeof nodeTest;
type JobStatus = { status: string; deviceJobStatistics?: { deviceCount: number; succeededCount: number; failedCount: number; pendingCount: number; runningCount: number } };

/** 24 devices over 3 sites; every 4th is on firmware 2.0, the others 1.0. */
const FLEET = Array.from({ length: 24 }, (_, i) => ({
  deviceId: `fleet-${String(i).padStart(2, '0')}`, site: ['north', 'south', 'east'][i % 3] as string, fw: i % 4 === 0 ? '2.0' : '1.0',
}));
const ids = (pred: (d: (typeof FLEET)[number]) => boolean): string[] => FLEET.filter(pred).map((d) => d.deviceId);

/** Reads every page of a query with the SDK's own paging loop. */
async function allPages<T>(query: ReturnType<iothub.Registry['createQuery']>, asTwin: boolean): Promise<{ items: T[]; pages: number }> {
  const items: T[] = [];
  let pages = 0;
  while (query.hasMoreResults) {
    // The SDK's promise-style next() forgets its own token unless it is passed back (query.js); nextAsTwin() keeps it.
    const { result } = asTwin ? await query.nextAsTwin() : await query.next(query.continuationToken as string);
    items.push(...(result as T[]));
    pages++;
  }
  return { items, pages };
}

async function waitForJob(jobs: iothub.JobClient, jobId: string, until: (s: JobStatus) => boolean): Promise<JobStatus> {
  let last: JobStatus | undefined;
  await eventually(async () => {
    last = (await jobs.getJob(jobId)).jobStatus as JobStatus;
    assert.ok(until(last), `job ${jobId}: ${JSON.stringify(last)}`);
  }, 20_000, 100);
  return last as JobStatus;
}

/**
 * Fleet queries and jobs as the unchanged azure-iothub SDK drives them (Registry.createQuery, JobClient), against a
 * real hub process; run once per store.
 */
export function fleetSuite(opts: { test: Test; address: string; storeArgs: () => Promise<string[]> | string[]; skip?: string }): void {
  const { test } = opts;
  let hub: RunningHub;
  let registry: iothub.Registry;
  let jobs: iothub.JobClient;
  const connectionStrings = new Map<string, string>();
  const clients: DeviceClient[] = [];

  test.before(async () => {
    if (opts.skip) return;
    hub = await startHub({ address: opts.address, args: await opts.storeArgs() });
    registry = iothub.Registry.fromConnectionString(hub.info.connectionStrings.iothubowner);
    jobs = iothub.JobClient.fromConnectionString(hub.info.connectionStrings.iothubowner);
    for (const d of FLEET) connectionStrings.set(d.deviceId, await createDevice(hub, d.deviceId));
    await Promise.all(FLEET.map((d) => registry.updateTwin(d.deviceId, { tags: { site: d.site, rank: Number(d.deviceId.slice(-2)) } }, '*')));
  });
  test.after(async () => {
    for (const c of clients) await c.close().catch(() => {});
    if (hub) await disposeHub(hub);
  });

  const t = (name: string, fn: () => Promise<void>) => test(name, { skip: opts.skip }, fn);

  t('Registry.createQuery pages through twins matching a tag, page by page, each device once', async () => {
    const { items, pages } = await allPages<iothub.Twin>(registry.createQuery("SELECT * FROM devices WHERE tags.site = 'north'", 3), true);
    assert.deepEqual(items.map((tw) => tw.deviceId).sort(), ids((d) => d.site === 'north'));
    assert.equal(pages, 3);
    assert.equal(items[0]?.tags?.site, 'north');
  });

  t('projections, IN, NOT, STARTSWITH, TOP and ORDER BY come back as raw items', async () => {
    const q = "SELECT TOP 4 deviceId, tags.rank AS rank FROM devices WHERE tags.site IN ['south', 'east'] AND NOT (tags.rank < 10) AND STARTSWITH(deviceId, 'fleet-') ORDER BY tags.rank DESC";
    const { items } = await allPages<{ deviceId: string; rank: number }>(registry.createQuery(q, 3), false);
    assert.deepEqual(items, [{ deviceId: 'fleet-23', rank: 23 }, { deviceId: 'fleet-22', rank: 22 }, { deviceId: 'fleet-20', rank: 20 }, { deviceId: 'fleet-19', rank: 19 }]);
  });

  t('GROUP BY counts devices per tag value', async () => {
    const { items } = await allPages<{ site: string; n: number }>(registry.createQuery("SELECT tags.site AS site, COUNT() AS n FROM devices WHERE STARTSWITH(deviceId, 'fleet-') GROUP BY tags.site"), false);
    assert.deepEqual(items.sort((a, b) => a.site.localeCompare(b.site)), [{ site: 'east', n: 8 }, { site: 'north', n: 8 }, { site: 'south', n: 8 }]);
  });

  t('a twin patched a moment ago is found by the very next query', async () => {
    await registry.updateTwin('fleet-05', { tags: { fresh: 'yes' } }, '*');
    const { items } = await allPages<iothub.Twin>(registry.createQuery("SELECT * FROM devices WHERE tags.fresh = 'yes'"), true);
    assert.deepEqual(items.map((tw) => tw.deviceId), ['fleet-05']);
  });

  t('a malformed query is refused with 400 naming the position and what was expected', async () => {
    await assert.rejects(registry.createQuery('SELECT * FROM devices WHERE tags.site =').next(), (err: Error) => {
      assert.equal(err.name, 'ArgumentError');
      assert.match(err.message, /position \d+/);
      return true;
    });
    const res = await serviceCall(opts.address, hub.info.connectionStrings.registryRead, 'POST', '/devices/query?api-version=2021-04-12', { query: 'x'.repeat(8193) });
    assert.equal(res.status, 400);
    assert.match(res.text, /8192/);
  });

  t('the device policy may not query the fleet', async () => {
    const res = await serviceCall(opts.address, hub.info.connectionStrings.device, 'POST', '/devices/query?api-version=2021-04-12', { query: 'SELECT * FROM devices' });
    assert.equal(res.status, 401);
  });

  t('scheduleTwinUpdate reaches offline devices, pushes to a connected one, and shows per-device rows in devices.jobs', async () => {
    const online = await openDevice(connectionStrings.get('fleet-03') ?? '', 'mqtt'); // a north device
    clients.push(online);
    const twin = await online.getTwin();
    // The SDK first emits the desired properties it already has; the job's push is the one carrying interval.
    const pushed = new Promise<{ interval?: number }>((resolve) => {
      twin.on('properties.desired', (d: { interval?: number }) => { if (d.interval !== undefined) resolve(d); });
    });
    const noPush = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no desired push within 10 s')), 10_000).unref());
    await jobs.scheduleTwinUpdate('twin-job-1', "tags.site = 'north'", { etag: '*', properties: { desired: { interval: 42 } } });
    const done = await waitForJob(jobs, 'twin-job-1', (s) => s.status === 'completed');
    const north = ids((d) => d.site === 'north');
    assert.deepEqual(done.deviceJobStatistics, { deviceCount: north.length, succeededCount: north.length, failedCount: 0, pendingCount: 0, runningCount: 0 });
    assert.equal((await Promise.race([pushed, noPush])).interval, 42);
    const { responseBody: offline } = await registry.getTwin('fleet-06');
    assert.equal(offline.properties.desired.interval, 42);
    const { items } = await allPages<{ deviceId: string; jobId: string; status: string; jobType: string }>(
      registry.createQuery("SELECT * FROM devices.jobs WHERE devices.jobs.jobId = 'twin-job-1'", 5), false);
    assert.deepEqual(items.map((r) => r.deviceId).sort(), north);
    assert.ok(items.every((r) => r.status === 'completed' && r.jobType === 'scheduleUpdateTwin'));
  });

  t('scheduleDeviceMethod answers from connected devices and fails offline ones fast with DeviceNotOnline', async () => {
    const online = await openDevice(connectionStrings.get('fleet-02') ?? '', 'mqtt');
    clients.push(online);
    online.onDeviceMethod('reboot', (req, res) => { void res.send(200, { rebooted: req.payload }); });
    // The SDK subscribes to methods after onDeviceMethod returns: wait until a direct call gets through.
    const service = iothub.Client.fromConnectionString(hub.info.connectionStrings.service);
    await eventually(async () => {
      assert.equal((await service.invokeDeviceMethod('fleet-02', { methodName: 'reboot', payload: 'warm-up', responseTimeoutInSeconds: 5 })).result.status, 200);
    });
    await service.close();
    await jobs.scheduleDeviceMethod('method-job-1', "tags.site = 'east'", { methodName: 'reboot', payload: 'now', responseTimeoutInSeconds: 30 });
    const done = await waitForJob(jobs, 'method-job-1', (s) => s.status === 'completed');
    const east = ids((d) => d.site === 'east');
    assert.equal(done.deviceJobStatistics?.deviceCount, east.length);
    assert.equal(done.deviceJobStatistics?.succeededCount, 1);
    assert.equal(done.deviceJobStatistics?.failedCount, east.length - 1);
    const { items } = await allPages<{ deviceId: string; status: string; outcome?: { deviceMethodResponse: { status: number; payload: unknown } }; error?: { code: string } }>(
      registry.createQuery("SELECT * FROM devices.jobs WHERE devices.jobs.jobId = 'method-job-1'"), false);
    const answered = items.find((r) => r.deviceId === 'fleet-02');
    assert.deepEqual(answered?.outcome, { deviceMethodResponse: { status: 200, payload: { rebooted: 'now' } } });
    assert.ok(items.filter((r) => r.deviceId !== 'fleet-02').every((r) => r.status === 'failed' && r.error?.code === 'DeviceNotOnline'));
  });

  t('a scheduled job can be cancelled before it starts; getJob and the job listing show it cancelled', async () => {
    const later = new Date(Date.now() + 3600_000);
    const { jobStatus } = await jobs.scheduleTwinUpdate('later-job', "tags.site = 'south'", { properties: { desired: { late: true } } }, later, 600);
    assert.equal((jobStatus as JobStatus).status, 'scheduled');
    const { jobStatus: cancelled } = await jobs.cancelJob('later-job');
    assert.equal((cancelled as JobStatus).status, 'cancelled');
    const { items } = await allPages<{ jobId: string; status: string }>(jobs.createQuery('scheduleUpdateTwin', 'cancelled', 1), false);
    assert.deepEqual(items.map((j) => j.jobId), ['later-job']);
    const { responseBody: twin } = await registry.getTwin('fleet-03');
    assert.equal(twin.properties.desired.late, undefined);
  });

  t('JobClient.createQuery lists jobs by type, page by page', async () => {
    const { items, pages } = await allPages<{ jobId: string; type: string }>(jobs.createQuery(undefined, undefined, 1), false);
    assert.ok(pages >= 3);
    assert.ok(['twin-job-1', 'method-job-1', 'later-job'].every((id) => items.some((j) => j.jobId === id)));
    const methods = await allPages<{ jobId: string }>(jobs.createQuery('scheduleDeviceMethod'), false);
    assert.deepEqual(methods.items.map((j) => j.jobId), ['method-job-1']);
  });

  t('a duplicate job id is refused with 409, an unknown one with 404, a bad condition with 400', async () => {
    await assert.rejects(jobs.scheduleTwinUpdate('twin-job-1', "tags.site = 'north'", { properties: { desired: { a: 1 } } }), { name: 'DeviceAlreadyExistsError' });
    const missing = await serviceCall(opts.address, hub.info.connectionStrings.iothubowner, 'GET', '/jobs/v2/never-made?api-version=2021-04-12');
    assert.equal(missing.status, 404);
    assert.equal(JSON.parse(missing.text).Message.includes('never-made'), true);
    await assert.rejects(jobs.scheduleTwinUpdate('bad-job', 'tags.site = ', { properties: { desired: { a: 1 } } }), { name: 'ArgumentError' });
    const asReader = await serviceCall(opts.address, hub.info.connectionStrings.registryRead, 'PUT', '/jobs/v2/reader-job?api-version=2021-04-12',
      { type: 'scheduleUpdateTwin', queryCondition: "deviceId = 'fleet-00'", updateTwin: { properties: { desired: { a: 1 } } } });
    assert.equal(asReader.status, 401);
  });

  t("a job's devicesPerSecond (Corral's extension) paces it, and cancel stops it within a second", async () => {
    const started = Date.now();
    const res = await serviceCall(opts.address, hub.info.connectionStrings.iothubowner, 'PUT', '/jobs/v2/paced-job?api-version=2021-04-12', {
      type: 'scheduleUpdateTwin', queryCondition: "STARTSWITH(deviceId, 'fleet-')", updateTwin: { properties: { desired: { paced: 1 } } },
      corral: { devicesPerSecond: 4 },
    });
    assert.equal(res.status, 200, res.text);
    await waitForJob(jobs, 'paced-job', (s) => (s.deviceJobStatistics?.succeededCount ?? 0) >= 6);
    // 6 devices at 4 per second cannot be done in much under a second and a quarter.
    assert.ok(Date.now() - started >= 1200, `6 devices took only ${Date.now() - started} ms`);
    await jobs.cancelJob('paced-job');
    const cancelledAt = (await jobs.getJob('paced-job')).jobStatus as JobStatus;
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const after = (await jobs.getJob('paced-job')).jobStatus as JobStatus;
    assert.equal(after.status, 'cancelled');
    // At most the devices already started when cancel landed may still finish.
    assert.ok((after.deviceJobStatistics?.succeededCount ?? 0) <= (cancelledAt.deviceJobStatistics?.succeededCount ?? 0) + (cancelledAt.deviceJobStatistics?.runningCount ?? 0) + 1);
    assert.ok((after.deviceJobStatistics?.succeededCount ?? 0) < FLEET.length);
  });
}
