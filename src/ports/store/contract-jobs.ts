import assert from 'node:assert/strict';
import { identityRecord } from './contract.js';
import type { Store } from './index.js';
import type { JobRecord } from './jobs.js';

type Case = (name: string, body: (store: Store) => Promise<void>) => void;

const T0 = Date.UTC(2026, 0, 1);
const iso = (ms: number): string => new Date(ms).toISOString();

/** A running twin job over every device unless `over` says otherwise. */
export function jobRecord(jobId: string, over: Partial<JobRecord> = {}): JobRecord {
  return {
    jobId, jobType: 'scheduleUpdateTwin', status: 'running', queryCondition: "deviceId >= ''",
    request: { updateTwin: { properties: { desired: { x: 1 } } } }, createdMs: T0, startMs: T0, endMs: null,
    maxExecutionSeconds: 3600, devicesPerSecond: null, failureReason: null, statusMessage: null, expandAfter: '',
    claimedCount: 0, statistics: null, rev: 1, ...over,
  };
}

async function seedDevices(store: Store, ids: readonly string[]): Promise<void> {
  await store.identities.applyBatch(ids.map((id) => ({ kind: 'insert' as const, record: identityRecord(id) })));
  // A module never becomes part of a job: jobs target devices.
  await store.identities.insert(identityRecord(ids[0] ?? 'd', 'mod'));
}

async function expandAll(store: Store, jobId: string, limit: number): Promise<number> {
  let total = 0;
  for (;;) {
    const n = await store.jobs.expand({ jobId, where: undefined, limit, nowIso: iso(T0) });
    total += n;
    if ((await store.jobs.get(jobId))?.expandAfter === null) return total;
  }
}

/** Jobs v2: job rows, expansion into device rows, leases, results, statistics and retention. */
export function jobCases(it: Case): void {
  it('a job is stored once; a second insert with its id is refused and get returns the first', async (store) => {
    assert.equal(await store.jobs.insert(jobRecord('j1')), true);
    assert.equal(await store.jobs.insert(jobRecord('j1', { jobType: 'scheduleDeviceMethod' })), false);
    const got = await store.jobs.get('j1');
    assert.deepEqual(got, jobRecord('j1'));
    assert.equal(await store.jobs.get('nope'), undefined);
  });

  it('replace is a compare-and-set on rev and keeps claimedCount', async (store) => {
    await store.jobs.insert(jobRecord('j1'));
    const done = jobRecord('j1', { status: 'completed', endMs: T0 + 5, statistics: { deviceCount: 2, failedCount: 0, succeededCount: 2, runningCount: 0, pendingCount: 0 } });
    assert.equal(await store.jobs.replace(done, 1), true);
    assert.equal(await store.jobs.replace(done, 1), false);
    assert.deepEqual(await store.jobs.get('j1'), { ...done, rev: 2 });
  });

  it('list filters by type and status and pages by creation time', async (store) => {
    for (let i = 0; i < 5; i++) {
      await store.jobs.insert(jobRecord(`j${i}`, { createdMs: T0 + i, jobType: i % 2 ? 'scheduleDeviceMethod' : 'scheduleUpdateTwin', status: i < 3 ? 'completed' : 'running' }));
    }
    assert.deepEqual((await store.jobs.list({ limit: 10 })).map((j) => j.jobId), ['j0', 'j1', 'j2', 'j3', 'j4']);
    assert.deepEqual((await store.jobs.list({ limit: 10, jobType: 'scheduleDeviceMethod' })).map((j) => j.jobId), ['j1', 'j3']);
    assert.deepEqual((await store.jobs.list({ limit: 10, status: 'running' })).map((j) => j.jobId), ['j3', 'j4']);
    const first = await store.jobs.list({ limit: 2 });
    const last = first[first.length - 1];
    assert.ok(last);
    assert.deepEqual((await store.jobs.list({ limit: 2, after: { createdMs: last.createdMs, jobId: last.jobId } })).map((j) => j.jobId), ['j2', 'j3']);
  });

  it('active lists running jobs and queued or scheduled ones whose start has come', async (store) => {
    await store.jobs.insert(jobRecord('run', { status: 'running' }));
    await store.jobs.insert(jobRecord('due', { status: 'scheduled', startMs: T0 + 10 }));
    await store.jobs.insert(jobRecord('later', { status: 'scheduled', startMs: T0 + 1000 }));
    await store.jobs.insert(jobRecord('done', { status: 'completed' }));
    assert.deepEqual((await store.jobs.active(T0 + 10)).map((j) => j.jobId).sort(), ['due', 'run']);
  });

  it('expand adds each matching device once, in id order, chunk by chunk, and then marks the job expanded', async (store) => {
    await seedDevices(store, ['a', 'b', 'c', 'd', 'e']);
    await store.jobs.insert(jobRecord('j1'));
    assert.equal(await store.jobs.expand({ jobId: 'j1', where: undefined, limit: 2, nowIso: iso(T0) }), 2);
    assert.equal((await store.jobs.get('j1'))?.expandAfter, 'b');
    assert.equal(await expandAll(store, 'j1', 2), 3);
    assert.equal(await store.jobs.expand({ jobId: 'j1', where: undefined, limit: 2, nowIso: iso(T0) }), 0);
    assert.deepEqual(await store.jobs.statistics('j1'), { deviceCount: 5, failedCount: 0, succeededCount: 0, runningCount: 0, pendingCount: 5 });
  });

  it('expand applies the condition and does nothing for a job that is not running', async (store) => {
    await seedDevices(store, ['a', 'b', 'c']);
    await store.identities.replace(identityRecord('b', '', { twin: { tags: { site: 'x' } } }), 1);
    await store.jobs.insert(jobRecord('j1'));
    const where = { kind: 'compare', op: '=', left: { kind: 'field', field: { kind: 'document', document: 'tags', path: ['site'] } }, right: { kind: 'literal', value: 'x' } } as const;
    assert.equal(await store.jobs.expand({ jobId: 'j1', where, limit: 10, nowIso: iso(T0) }), 1);
    assert.deepEqual((await store.jobs.claim({ jobId: 'j1', owner: 'w', limit: 10, nowMs: T0, nowIso: iso(T0), leaseMs: 1000 })).map((r) => r.deviceId), ['b']);
    await store.jobs.insert(jobRecord('j2', { status: 'scheduled' }));
    assert.equal(await store.jobs.expand({ jobId: 'j2', where: undefined, limit: 10, nowIso: iso(T0) }), 0);
  });

  it('claims by two workers take disjoint rows, count toward claimedCount and respect its cap', async (store) => {
    await seedDevices(store, ['a', 'b', 'c', 'd', 'e']);
    await store.jobs.insert(jobRecord('j1'));
    await expandAll(store, 'j1', 100);
    const opts = { jobId: 'j1', nowMs: T0, nowIso: iso(T0), leaseMs: 1000 };
    const [x, y] = await Promise.all([store.jobs.claim({ ...opts, owner: 'w1', limit: 2 }), store.jobs.claim({ ...opts, owner: 'w2', limit: 2 })]);
    const ids = [...(x ?? []), ...(y ?? [])].map((r) => r.deviceId);
    assert.equal(new Set(ids).size, 4);
    assert.ok([...(x ?? []), ...(y ?? [])].every((r) => r.status === 'running' && r.startTimeUtc === iso(T0)));
    assert.equal((await store.jobs.get('j1'))?.claimedCount, 4);
    assert.deepEqual(await store.jobs.claim({ ...opts, owner: 'w1', limit: 5, maxClaimedCount: 4 }), []);
    assert.equal((await store.jobs.claim({ ...opts, owner: 'w1', limit: 5, maxClaimedCount: 5 })).length, 1);
    assert.deepEqual(await store.jobs.statistics('j1'), { deviceCount: 5, failedCount: 0, succeededCount: 0, runningCount: 5, pendingCount: 0 });
  });

  it('an expired lease lets another worker claim the row; the first worker can then no longer finish it', async (store) => {
    await seedDevices(store, ['a']);
    await store.jobs.insert(jobRecord('j1'));
    await expandAll(store, 'j1', 10);
    await store.jobs.claim({ jobId: 'j1', owner: 'w1', limit: 1, nowMs: T0, nowIso: iso(T0), leaseMs: 1000 });
    assert.deepEqual(await store.jobs.claim({ jobId: 'j1', owner: 'w2', limit: 1, nowMs: T0 + 999, nowIso: iso(T0), leaseMs: 1000 }), []);
    assert.equal((await store.jobs.claim({ jobId: 'j1', owner: 'w2', limit: 1, nowMs: T0 + 1000, nowIso: iso(T0), leaseMs: 1000 })).length, 1);
    const result = { deviceId: 'a', moduleId: '', status: 'completed' as const, outcome: null, error: null };
    assert.equal(await store.jobs.finish('j1', 'w1', [result], iso(T0 + 5)), 0);
    assert.equal(await store.jobs.finish('j1', 'w2', [result], iso(T0 + 5)), 1);
  });

  it('finish records outcome and error, visible as device-job rows and in the statistics', async (store) => {
    await seedDevices(store, ['a', 'b']);
    await store.jobs.insert(jobRecord('j1', { jobType: 'scheduleDeviceMethod' }));
    await expandAll(store, 'j1', 10);
    await store.jobs.claim({ jobId: 'j1', owner: 'w', limit: 10, nowMs: T0, nowIso: iso(T0), leaseMs: 1000 });
    const n = await store.jobs.finish('j1', 'w', [
      { deviceId: 'a', moduleId: '', status: 'completed', outcome: { deviceMethodResponse: { status: 200, payload: { ok: true } } }, error: null },
      { deviceId: 'b', moduleId: '', status: 'failed', outcome: null, error: { code: 'DeviceNotOnline', description: 'offline' } },
    ], iso(T0 + 7));
    assert.equal(n, 2);
    assert.deepEqual(await store.jobs.statistics('j1'), { deviceCount: 2, failedCount: 1, succeededCount: 1, runningCount: 0, pendingCount: 0 });
    // A row already finished is not finished again.
    assert.equal(await store.jobs.finish('j1', 'w', [{ deviceId: 'a', moduleId: '', status: 'failed', outcome: null, error: null }], iso(T0 + 8)), 0);
  });

  it('claim gives nothing once the job stops running; cancelPending and release move rows as documented', async (store) => {
    await seedDevices(store, ['a', 'b', 'c']);
    await store.jobs.insert(jobRecord('j1'));
    await expandAll(store, 'j1', 10);
    const opts = { jobId: 'j1', nowMs: T0, nowIso: iso(T0), leaseMs: 1000 };
    assert.equal((await store.jobs.claim({ ...opts, owner: 'w', limit: 1 })).length, 1);
    assert.equal(await store.jobs.release('w'), 1);
    assert.equal((await store.jobs.claim({ ...opts, owner: 'w', limit: 1 })).length, 1);
    const job = await store.jobs.get('j1');
    assert.ok(job);
    assert.equal(await store.jobs.replace({ ...job, status: 'cancelled', endMs: T0 + 1 }, job.rev), true);
    assert.equal(await store.jobs.cancelPending('j1', iso(T0 + 1)), 2);
    assert.deepEqual(await store.jobs.claim({ ...opts, owner: 'w2', limit: 5, nowMs: T0 + 5000 }), []);
    assert.deepEqual(await store.jobs.statistics('j1'), { deviceCount: 3, failedCount: 0, succeededCount: 0, runningCount: 1, pendingCount: 0 });
  });

  it('deleteEnded removes jobs that ended before the cutoff, with their device rows, and keeps the rest', async (store) => {
    await seedDevices(store, ['a']);
    await store.jobs.insert(jobRecord('old', { status: 'completed', endMs: T0 }));
    await store.jobs.insert(jobRecord('new', { status: 'completed', endMs: T0 + 10_000 }));
    await store.jobs.insert(jobRecord('run'));
    await store.jobs.replace(jobRecord('old', { status: 'running' }), 1);
    await expandAll(store, 'old', 10);
    await store.jobs.replace({ ...jobRecord('old', { status: 'completed', endMs: T0, expandAfter: null }) }, 2);
    assert.equal(await store.jobs.deleteEnded(T0 + 1), 1);
    assert.equal(await store.jobs.get('old'), undefined);
    assert.deepEqual(await store.jobs.statistics('old'), { deviceCount: 0, failedCount: 0, succeededCount: 0, runningCount: 0, pendingCount: 0 });
    assert.ok(await store.jobs.get('new'));
    assert.ok(await store.jobs.get('run'));
  });
}
