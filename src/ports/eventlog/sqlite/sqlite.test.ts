import Database from 'better-sqlite3';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { eventLogContract, eventRecord } from '../contract.js';
import { EventLogClosed, EventLogWriteFailed, UnknownPartition } from '../index.js';
import { SqliteEventLog, SqliteEventLogSet, type SqliteEventLogOptions } from './index.js';

function tempLogFile(): { file: string; dispose(): Promise<void> } {
  const dir = mkdtempSync(join(tmpdir(), 'corral-eventlog-'));
  return { file: join(dir, 'eventlog.db'), dispose: async () => rmSync(dir, { recursive: true, force: true }) };
}

for (const deviceIndex of [true, false]) {
  describe(`contract, ${deviceIndex ? 'with' : 'without'} the device index`, () => {
    eventLogContract({
      test,
      make: async () => {
        const { file, dispose } = tempLogFile();
        const open = (): SqliteEventLog => SqliteEventLog.open(file, { deviceIndex });
        try {
          return { log: open(), reopen: async () => open(), dispose };
        } catch (err) {
          await dispose();
          throw err;
        }
      },
    });
  });
}

/** Runs `body` on a fresh log in a temp file, closing it and removing the file afterwards. */
async function withLog(opts: SqliteEventLogOptions, body: (log: SqliteEventLog, file: string) => Promise<void>): Promise<void> {
  const { file, dispose } = tempLogFile();
  let log: SqliteEventLog | undefined;
  try {
    log = SqliteEventLog.open(file, opts);
    await body(log, file);
  } finally {
    await log?.close();
    await dispose();
  }
}

test('concurrent appends share commits: 1000 callers in one tick take a handful of commits', async () => {
  await withLog({}, async (log) => {
    await Promise.all(Array.from({ length: 1000 }, (_, n) => log.append([eventRecord(`d${n % 10}`, n)])));
    assert.equal(log.stats.records, 1000);
    assert.ok(log.stats.commits <= 2, `${log.stats.commits} commits`);
  });
});

test('maxBatchRecords bounds a commit but never splits one append', async () => {
  await withLog({ maxBatchRecords: 100 }, async (log) => {
    await Promise.all(Array.from({ length: 1000 }, (_, n) => log.append([eventRecord('d1', n)])));
    assert.equal(log.stats.largestBatch, 100);
    assert.equal(log.stats.commits, 10);
    const seqs = await log.append(Array.from({ length: 250 }, (_, n) => eventRecord('d2', n)));
    assert.equal(log.stats.largestBatch, 250);
    assert.equal(seqs[249] - seqs[0], 249);
  });
});

test('a failed commit rejects every append of its batch, stores none, and the next batch takes the next sequence', async () => {
  await withLog({}, async (log, file) => {
    const [before] = await log.append([eventRecord('d1', 0)]);
    const saboteur = new Database(file);
    saboteur.exec(`CREATE TRIGGER refuse_poison BEFORE INSERT ON events WHEN NEW.device_id = 'poison'
      BEGIN SELECT RAISE(ABORT, 'poison refused'); END`);
    const batch = await Promise.allSettled([
      log.append([eventRecord('innocent', 1)]), log.append([eventRecord('poison', 2)]), log.append([eventRecord('innocent', 3)]),
    ]);
    for (const r of batch) {
      assert.ok(r.status === 'rejected' && r.reason instanceof EventLogWriteFailed, 'rejected with EventLogWriteFailed');
      assert.match(String((r.reason as Error).cause), /poison refused/);
    }
    assert.equal(log.stats.failedCommits, 1);
    assert.equal(await log.lastSequence(), before);
    saboteur.exec('DROP TRIGGER refuse_poison');
    saboteur.close();
    const [after] = await log.append([eventRecord('innocent', 4)]);
    assert.equal(after, before + 1);
    assert.deepEqual((await log.read({ after: 0, limit: 10 })).map((e) => e.sequence), [before, after]);
  });
});

test('the file is in WAL mode and a device read is one index range scan, without a sort', async () => {
  await withLog({}, async (log, file) => {
    await log.append([eventRecord('d1', 1)]);
    const peek = new Database(file, { readonly: true });
    try {
      assert.equal(peek.pragma('journal_mode', { simple: true }), 'wal');
      const plan = peek.prepare(`EXPLAIN QUERY PLAN SELECT * FROM events WHERE device_id = ? AND seq > ? ORDER BY seq LIMIT ?`)
        .all('d1', 0, 10) as { detail: string }[];
      const details = plan.map((p) => p.detail).join('; ');
      assert.match(details, /USING INDEX events_device/);
      assert.doesNotMatch(details, /TEMP B-TREE/);
    } finally {
      peek.close();
    }
  });
});

test('a device read without the index pages through many scan windows and skips trimmed ones', async () => {
  await withLog({ deviceIndex: false }, async (log) => {
    const filler = Array.from({ length: 60_000 }, (_, n) => eventRecord('noise', n));
    const [rare1] = await log.append([eventRecord('rare', 1)]);
    await log.append(filler);
    await log.append(filler);
    const [rare2] = await log.append([eventRecord('rare', 2)]);
    assert.deepEqual((await log.read({ after: 0, limit: 10, deviceId: 'rare' })).map((e) => e.sequence), [rare1, rare2]);
    assert.deepEqual((await log.read({ after: rare1, limit: 10, deviceId: 'rare' })).map((e) => e.sequence), [rare2]);
    assert.deepEqual((await log.read({ after: 0, limit: 1, deviceId: 'rare' })).map((e) => e.sequence), [rare1]);
    await log.trim({ maxRecords: 1, nowMs: 0 });
    assert.deepEqual((await log.read({ after: 0, limit: 10, deviceId: 'rare' })).map((e) => e.sequence), [rare2]);
  });
});

test('reopening with the device index switched keeps every record and creates or drops the index', async () => {
  const { file, dispose } = tempLogFile();
  const indexNames = (): string[] => {
    const peek = new Database(file, { readonly: true });
    try {
      return peek.prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'`).pluck().all() as string[];
    } finally {
      peek.close();
    }
  };
  try {
    const first = SqliteEventLog.open(file, { deviceIndex: false });
    const seqs = await first.append([eventRecord('d1', 1), eventRecord('d2', 2), eventRecord('d1', 3)]);
    await first.close();
    assert.deepEqual(indexNames(), []);
    const second = SqliteEventLog.open(file);
    assert.deepEqual(indexNames(), ['events_device']);
    assert.deepEqual((await second.read({ after: 0, limit: 10, deviceId: 'd1' })).map((e) => e.sequence), [seqs[0], seqs[2]]);
    await second.close();
    const third = SqliteEventLog.open(file, { deviceIndex: false });
    assert.deepEqual(indexNames(), []);
    assert.equal((await third.read({ after: 0, limit: 10 })).length, 3);
    await third.close();
  } finally {
    await dispose();
  }
});

test('open rejects out-of-range batch options', () => {
  assert.throws(() => SqliteEventLog.open(':memory:', { maxBatchRecords: 0 }), /maxBatchRecords/);
  assert.throws(() => SqliteEventLog.open(':memory:', { maxBatchDelayMs: -1 }), /maxBatchDelayMs/);
});

test('seekTime on a large log takes point reads only, whichever time it seeks', async () => {
  await withLog({ deviceIndex: false }, async (log) => {
    const t0 = Date.UTC(2026, 0, 1);
    const seqs = await log.append(Array.from({ length: 100_000 }, (_, n) => eventRecord(`d${n % 100}`, n, { enqueuedTimeMs: t0 + n })));
    for (const n of [1, 777, 50_000, 99_999]) assert.equal(await log.seekTime(t0 + n), seqs[n - 1]);
  });
});

test('the embedded set is one partition, \'0\', whose reader is the local log; another name throws UnknownPartition', async () => {
  const { file, dispose } = tempLogFile();
  try {
    const set = SqliteEventLogSet.open(file, { deviceIndex: false });
    assert.equal(set.localPartition, '0');
    assert.deepEqual(await set.partitions(), ['0']);
    assert.equal(set.reader('0'), set.local);
    const [seq] = await set.local.append([eventRecord('d1', 1)]);
    assert.deepEqual((await set.reader('0').read({ after: 0, limit: 10 })).map((e) => e.sequence), [seq]);
    assert.throws(() => set.reader('1'), (err: unknown) => err instanceof UnknownPartition && /'1'.*one partition, '0'/.test(err.message));
    await set.close();
    await assert.rejects(set.local.lastSequence(), EventLogClosed);
  } finally {
    await dispose();
  }
});
