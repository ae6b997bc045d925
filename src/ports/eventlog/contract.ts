import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { EventLogClosed, InvalidEventRecord, type EventLog, type EventRecord, type StoredEvent } from './index.js';

type TestFn = typeof import('node:test').test;

/** What `make` gives each test: a fresh, empty log, and the way to open the same log again. */
export interface EventLogHarness {
  readonly log: EventLog;
  /** Opens the same log again (after the test closed `log`). The suite closes what it gets. */
  reopen(): Promise<EventLog>;
  /** Removes what `make` created (files, streams), after every log is closed. */
  dispose?(): Promise<void>;
}

/**
 * The EventLog behaviour every adapter must pass. Each test closes every log it opened, then disposes the harness.
 * With `skip`, every test is registered as skipped with that reason, so a missing engine shows in the report.
 */
export function eventLogContract({ test, make, skip }: {
  test: TestFn; make: () => Promise<EventLogHarness>; skip?: string;
}): void {
  const it: Case = (name, body) => {
    test(name, { skip }, async () => {
      const harness = await make();
      const opened: EventLog[] = [harness.log];
      const reopen = async (): Promise<EventLog> => {
        const log = await harness.reopen();
        opened.push(log);
        return log;
      };
      try {
        await body(harness.log, reopen);
      } finally {
        for (const log of opened) await log.close();
        await harness.dispose?.();
      }
    });
  };
  appendCases(it);
  readCases(it);
  roundTripCases(it);
  durabilityCases(it);
  trimCases(it);
  seekCases(it);
  closeCases(it);
}

type Case = (name: string, body: (log: EventLog, reopen: () => Promise<EventLog>) => Promise<void>) => void;

const T0 = Date.UTC(2026, 0, 1);

/** A small telemetry record; `n` goes into the body and a property so every record is distinct. */
export function eventRecord(deviceId: string, n: number, over: Partial<EventRecord> = {}): EventRecord {
  return {
    kind: 'telemetry', deviceId, moduleId: '', enqueuedTimeMs: T0 + n,
    properties: { 'message-id': `m-${n}`, n: String(n) }, body: new TextEncoder().encode(`{"n":${n}}`), ...over,
  };
}

const range = (count: number, from = 0): number[] => Array.from({ length: count }, (_, i) => from + i);

function assertIncreasing(seqs: readonly number[], what: string): void {
  for (let i = 0; i < seqs.length; i++) {
    assert.ok(Number.isSafeInteger(seqs[i]) && seqs[i] > 0, `${what}: sequence ${seqs[i]} is a positive integer`);
    if (i > 0) assert.ok(seqs[i] > seqs[i - 1], `${what}: ${seqs[i]} follows ${seqs[i - 1]}`);
  }
}

/** Fields and bytes equal; the body may come back as any Uint8Array (a Buffer, say). */
function assertSameEvent(got: StoredEvent, want: EventRecord, sequence: number): void {
  assert.equal(got.sequence, sequence);
  assert.deepEqual(
    { kind: got.kind, deviceId: got.deviceId, moduleId: got.moduleId, enqueuedTimeMs: got.enqueuedTimeMs, properties: { ...got.properties } },
    { kind: want.kind, deviceId: want.deviceId, moduleId: want.moduleId, enqueuedTimeMs: want.enqueuedTimeMs, properties: { ...want.properties } },
  );
  assert.ok(got.body instanceof Uint8Array, 'body is a Uint8Array');
  assert.ok(Buffer.from(got.body).equals(Buffer.from(want.body)), `body of ${sequence} round-trips (${got.body.length} bytes)`);
}

function assertSameEvents(got: readonly StoredEvent[], want: readonly EventRecord[], seqs: readonly number[]): void {
  assert.equal(got.length, want.length, 'record count');
  got.forEach((g, i) => assertSameEvent(g, want[i], seqs[i]));
}

const seqsOf = (events: readonly StoredEvent[]): number[] => events.map((e) => e.sequence);

function appendCases(it: Case): void {
  it('append returns increasing sequences in call order and lastSequence follows', async (log) => {
    assert.equal(await log.lastSequence(), 0);
    const a = await log.append([eventRecord('d1', 1)]);
    const b = await log.append([eventRecord('d1', 2), eventRecord('d2', 3), eventRecord('d1', 4)]);
    const c = await log.append([eventRecord('d3', 5)]);
    assert.equal(a.length, 1);
    assert.equal(b.length, 3);
    assertIncreasing([...a, ...b, ...c], 'appends in order');
    assert.equal(await log.lastSequence(), c[0]);
  });

  it('an empty append resolves with no sequences and stores nothing', async (log) => {
    assert.deepEqual(await log.append([]), []);
    assert.equal(await log.lastSequence(), 0);
    assert.deepEqual(await log.read({ after: 0, limit: 10 }), []);
  });

  it('concurrent appends from many callers get distinct sequences in call order, and read returns exactly them', async (log) => {
    const batches = range(300).map((i) => range(1 + (i % 4), i * 10).map((n) => eventRecord(`dev-${i % 7}`, n)));
    const early = batches.slice(0, 200).map((records) => log.append(records));
    await Promise.resolve();
    const late = batches.slice(200).map((records, i) => new Promise<number[]>((resolve, reject) => {
      setTimeout(() => log.append(records).then(resolve, reject), i % 5);
    }));
    const results = await Promise.all([...early, ...late]);
    results.forEach((seqs, i) => assert.equal(seqs.length, batches[i].length, `caller ${i} gets one sequence per record`));
    const all = results.flat();
    assertIncreasing(all.slice(0, batches.slice(0, 200).flat().length), 'same-tick callers in call order');
    assert.equal(new Set(all).size, all.length, 'sequences are distinct');
    const sorted = [...all].sort((x, y) => x - y);
    const stored = await log.read({ after: 0, limit: 10_000 });
    assert.deepEqual(seqsOf(stored), sorted);
    const bySeq = new Map(results.flatMap((seqs, i) => seqs.map((s, k) => [s, batches[i][k]] as const)));
    stored.forEach((e) => assertSameEvent(e, bySeq.get(e.sequence) ?? assert.fail(`unknown ${e.sequence}`), e.sequence));
    assert.equal(await log.lastSequence(), sorted[sorted.length - 1]);
  });

  it('a malformed record rejects only its own append; concurrent appends are stored', async (log) => {
    const bad = { ...eventRecord('d1', 2), properties: { n: 2 } } as unknown as EventRecord;
    const results = await Promise.allSettled([
      log.append([eventRecord('d1', 1)]), log.append([eventRecord('d1', 3), bad]), log.append([eventRecord('d1', 4)]),
    ]);
    assert.equal(results[1].status, 'rejected');
    assert.ok(results[1].status === 'rejected' && results[1].reason instanceof InvalidEventRecord, 'InvalidEventRecord');
    const stored = await log.read({ after: 0, limit: 10 });
    assert.deepEqual(stored.map((e) => e.properties.n), ['1', '4']);
  });

  it('a lone append resolves quickly', async (log) => {
    await log.append([eventRecord('warm', 0)]);
    const started = performance.now();
    await log.append([eventRecord('d1', 1)]);
    const elapsedMs = performance.now() - started;
    assert.ok(elapsedMs < 200, `lone append took ${elapsedMs.toFixed(1)} ms`);
  });
}

function readCases(it: Case): void {
  it('read pages with after and limit in sequence order', async (log) => {
    const records = range(25).map((n) => eventRecord(`d${n % 3}`, n));
    const seqs = await log.append(records);
    const pages: StoredEvent[][] = [];
    let after = 0;
    for (;;) {
      const page = await log.read({ after, limit: 10 });
      if (page.length === 0) break;
      pages.push(page);
      after = page[page.length - 1].sequence;
    }
    assert.deepEqual(pages.map((p) => p.length), [10, 10, 5]);
    assertSameEvents(pages.flat(), records, seqs);
    assertSameEvents(await log.read({ after: seqs[6], limit: 2 }), records.slice(7, 9), seqs.slice(7, 9));
    assert.deepEqual(await log.read({ after: seqs[24], limit: 10 }), []);
    assert.deepEqual(await log.read({ after: 0, limit: 0 }), []);
  });

  it('read for one device returns its records and its modules\', in order, paged, and no other device\'s', async (log) => {
    const records = range(30).map((n) => eventRecord(['a', 'b', 'ab', 'A'][n % 4], n, { moduleId: n % 8 === 4 ? 'mod-1' : '' }));
    const seqs = await log.append(records);
    const want = records.map((r, i) => [r, seqs[i]] as const).filter(([r]) => r.deviceId === 'a');
    const got = await log.read({ after: 0, limit: 100, deviceId: 'a' });
    assertSameEvents(got, want.map(([r]) => r), want.map(([, s]) => s));
    assert.ok(got.some((e) => e.moduleId === 'mod-1'), 'a module\'s record is included');
    const page2 = await log.read({ after: want[2][1], limit: 3, deviceId: 'a' });
    assert.deepEqual(seqsOf(page2), want.slice(3, 6).map(([, s]) => s));
    assert.deepEqual(await log.read({ after: 0, limit: 10, deviceId: 'nobody' }), []);
  });
}

function roundTripCases(it: Case): void {
  it('bodies (every byte value, empty, 256 KB) and unicode properties round-trip exactly', async (log, reopen) => {
    const every = Uint8Array.from(range(256));
    const big = new Uint8Array(randomBytes(256 * 1024));
    const view = new Uint8Array(every.buffer, 10, 20);
    const records: EventRecord[] = [
      eventRecord('bytes', 1, { body: every }),
      eventRecord('bytes', 2, { body: new Uint8Array(0), properties: {} }),
      eventRecord('bytes', 3, { body: big, kind: 'twinChange' }),
      eventRecord('bytes', 4, { body: view, moduleId: 'mödule-✓' }),
      eventRecord('ünïcødé-设备-🚀', 5, {
        kind: 'connectionState', enqueuedTimeMs: 1,
        properties: {
          'content-type': 'application/json; charset=utf-8', 'ключ': 'значение', '键🔑': '值 — «quoted» "double" \\ /',
          empty: '', nul: 'a\u0000b', newline: 'line1\nline2\r\n\ttab', '$.cdid': 'device-1', emoji: '👩‍👩‍👧‍👦🏳️‍🌈',
        },
      }),
    ];
    const seqs = await log.append(records);
    assertSameEvents(await log.read({ after: 0, limit: 10 }), records, seqs);
    await log.close();
    assertSameEvents(await (await reopen()).read({ after: 0, limit: 10 }), records, seqs);
  });
}

function durabilityCases(it: Case): void {
  it('records survive close and reopen, and sequences continue after them', async (log, reopen) => {
    const records = range(20).map((n) => eventRecord(`d${n % 2}`, n));
    const seqs = await log.append(records);
    await log.close();
    const again = await reopen();
    assert.equal(await again.lastSequence(), seqs[19]);
    assertSameEvents(await again.read({ after: 0, limit: 100 }), records, seqs);
    const [next] = await again.append([eventRecord('d9', 99)]);
    assert.ok(next > seqs[19], `${next} follows ${seqs[19]}`);
  });

  it('close commits appends still pending, which then resolve', async (log, reopen) => {
    const pending = range(50).map((n) => log.append([eventRecord('d1', n)]));
    await log.close();
    const seqs = (await Promise.all(pending)).flat();
    assertIncreasing(seqs, 'pending appends');
    const again = await reopen();
    assert.deepEqual(seqsOf(await again.read({ after: 0, limit: 100 })), seqs);
  });
}

function trimCases(it: Case): void {
  it('trim by age removes the records enqueued before the cutoff', async (log) => {
    const records = range(10).map((n) => eventRecord('d1', n, { enqueuedTimeMs: T0 + n * 1000 }));
    const seqs = await log.append(records);
    assert.equal(await log.trim({ olderThanMs: 5000, nowMs: T0 + 9000 }), 4);
    assertSameEvents(await log.read({ after: 0, limit: 100 }), records.slice(4), seqs.slice(4));
    assert.equal(await log.trim({ olderThanMs: 5000, nowMs: T0 + 9000 }), 0);
    assert.equal(await log.lastSequence(), seqs[9]);
  });

  it('trim by count keeps the newest records', async (log) => {
    const records = range(10).map((n) => eventRecord(`d${n % 3}`, n));
    const seqs = await log.append(records);
    assert.equal(await log.trim({ maxRecords: 3, nowMs: T0 }), 7);
    assertSameEvents(await log.read({ after: 0, limit: 100 }), records.slice(7), seqs.slice(7));
    assert.equal(await log.trim({ maxRecords: 3, nowMs: T0 }), 0);
    assert.equal(await log.trim({ maxRecords: 100, nowMs: T0 }), 0);
  });

  it('trim with both rules removes what either would, and with neither removes nothing', async (log) => {
    const seqs = await log.append(range(10).map((n) => eventRecord('d1', n, { enqueuedTimeMs: T0 + n * 1000 })));
    assert.equal(await log.trim({ nowMs: T0 + 9000 }), 0);
    assert.equal(await log.trim({ olderThanMs: 7000, maxRecords: 5, nowMs: T0 + 9000 }), 5);
    assert.equal(await log.trim({ olderThanMs: 2000, maxRecords: 5, nowMs: T0 + 9000 }), 2);
    assert.deepEqual(seqsOf(await log.read({ after: 0, limit: 100 })), seqs.slice(7));
  });

  it('a trim that empties the log never lets a sequence be reused, across reopen too', async (log, reopen) => {
    const seqs = await log.append(range(5).map((n) => eventRecord('d1', n)));
    assert.equal(await log.trim({ maxRecords: 0, nowMs: T0 }), 5);
    assert.deepEqual(await log.read({ after: 0, limit: 10 }), []);
    assert.equal(await log.lastSequence(), seqs[4]);
    const [next] = await log.append([eventRecord('d1', 5)]);
    assert.ok(next > seqs[4], `${next} follows ${seqs[4]}`);
    assert.equal(await log.trim({ olderThanMs: 0, nowMs: T0 + 1_000_000 }), 1);
    await log.close();
    const again = await reopen();
    assert.equal(await again.lastSequence(), next);
    const [after] = await again.append([eventRecord('d1', 6)]);
    assert.ok(after > next, `${after} follows ${next}`);
  });
}

function seekCases(it: Case): void {
  /** Records at T0 + 0, 10, 20, … ms, one append each five, so a search crosses commits. */
  const appendTimed = async (log: EventLog, count: number): Promise<number[]> => {
    const seqs: number[] = [];
    for (let from = 0; from < count; from += 5) {
      seqs.push(...await log.append(range(Math.min(5, count - from), from).map((n) => eventRecord(`d${n % 3}`, n, { enqueuedTimeMs: T0 + n * 10 }))));
    }
    return seqs;
  };

  it('seekTime on an empty log is 0', async (log) => {
    assert.equal(await log.seekTime(T0), 0);
    assert.equal(await log.seekTime(Number.POSITIVE_INFINITY), 0);
  });

  it('seekTime after every record is lastSequence, before every record 0', async (log) => {
    const seqs = await appendTimed(log, 12);
    assert.equal(await log.seekTime(T0 + 10_000), seqs[11]);
    assert.equal(await log.seekTime(T0 + 111), seqs[11]);
    assert.equal(await log.seekTime(T0), 0);
    assert.equal(await log.seekTime(T0 - 10_000), 0);
  });

  it('seekTime in the middle is the sequence before the first record enqueued at or after the time', async (log) => {
    const seqs = await appendTimed(log, 37);
    for (const n of [1, 2, 5, 17, 18, 30, 36]) {
      assert.equal(await log.seekTime(T0 + n * 10), seqs[n - 1], `at record ${n}'s time`);
      assert.equal(await log.seekTime(T0 + n * 10 - 3), seqs[n - 1], `just before record ${n}'s time`);
    }
    const after = await log.seekTime(T0 + 200);
    assert.deepEqual(seqsOf(await log.read({ after, limit: 3 })), seqs.slice(20, 23));
  });

  it('seekTime after a trim is 0 up to the first retained record, and lastSequence once the log is empty', async (log) => {
    const seqs = await appendTimed(log, 20);
    assert.equal(await log.trim({ maxRecords: 12, nowMs: T0 }), 8);
    assert.equal(await log.seekTime(T0), 0);
    assert.equal(await log.seekTime(T0 + 80), 0);
    assert.equal(await log.seekTime(T0 + 81), seqs[8]);
    assert.equal(await log.seekTime(T0 + 150), seqs[14]);
    assert.equal(await log.seekTime(T0 + 1000), seqs[19]);
    assert.equal(await log.trim({ maxRecords: 0, nowMs: T0 }), 12);
    assert.equal(await log.seekTime(T0), seqs[19]);
  });
}

function closeCases(it: Case): void {
  it('append, read, lastSequence, seekTime and trim after close reject with EventLogClosed; close twice is fine', async (log) => {
    await log.append([eventRecord('d1', 1)]);
    await log.close();
    await log.close();
    await assert.rejects(log.append([eventRecord('d1', 2)]), EventLogClosed);
    await assert.rejects(log.read({ after: 0, limit: 1 }), EventLogClosed);
    await assert.rejects(log.lastSequence(), EventLogClosed);
    await assert.rejects(log.seekTime(T0), EventLogClosed);
    await assert.rejects(log.trim({ maxRecords: 0, nowMs: T0 }), EventLogClosed);
  });
}
