import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { BusClosed, BusNoResponders, BusRemoteError, BusTimeout, idFromSubjectToken, subjectToken, type Bus } from './index.js';

type TestFn = typeof import('node:test').test;

/** What each case gets: a node, a second node on the same fabric (the same node when none), a subject prefix no other case uses. */
interface World {
  readonly bus: Bus;
  readonly peer: Bus;
  readonly p: string;
}
type Case = (name: string, body: (world: World) => Promise<void>) => void;

/**
 * The Bus behaviour every adapter must pass. `make` gives a fresh node; `makePeer` a second node on the same fabric
 * (another connection, a sibling on one in-process fabric), so cross-node delivery is tested. Each case closes both.
 * With `skip`, every case is registered as skipped with that reason.
 */
export function busContract<B extends Bus>({ test, make, makePeer, skip }: {
  test: TestFn; make: () => Promise<B>; makePeer?: (first: B) => Promise<Bus>; skip?: string;
}): void {
  const it: Case = (name, body) => {
    test(name, { skip }, async () => {
      const bus = await make();
      const peer = makePeer === undefined ? bus : await makePeer(bus);
      try {
        await body({ bus, peer, p: `contract-${randomBytes(6).toString('hex')}` });
      } finally {
        await Promise.all([bus.close(), peer.close()]);
      }
    });
  };
  publishCases(it);
  wildcardCases(it);
  requestCases(it);
  payloadCases(it);
  tokenCases(it);
  validationCases(it);
  closeCases(it, makePeer !== undefined);
}

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

/** Records deliveries; `next(n)` resolves once n of them have arrived in all. */
class Inbox {
  readonly got: { readonly subject: string; readonly data: Uint8Array }[] = [];
  private waiters: { n: number; resolve: () => void }[] = [];
  readonly onMessage = (data: Uint8Array, subject: string): void => {
    this.got.push({ subject, data });
    const due = this.waiters.filter((w) => this.got.length >= w.n);
    this.waiters = this.waiters.filter((w) => this.got.length < w.n);
    for (const w of due) w.resolve();
  };
  next(n: number): Promise<void> {
    return this.got.length >= n ? Promise.resolve() : new Promise((resolve) => this.waiters.push({ n, resolve }));
  }
  get texts(): string[] {
    return this.got.map((m) => text(m.data));
  }
  get subjects(): string[] {
    return this.got.map((m) => m.subject);
  }
}

/** A promise with its resolve function, for handlers held open by a case. */
function gate(): { readonly opened: Promise<void>; readonly open: () => void } {
  let open = (): void => undefined;
  const opened = new Promise<void>((resolve) => { open = resolve; });
  return { opened, open };
}

const echo = async (data: Uint8Array): Promise<Uint8Array> => data;

function publishCases(it: Case): void {
  it('publish reaches every subscriber on every node, with its subject', async ({ bus, peer, p }) => {
    const [local, remote, remote2] = [new Inbox(), new Inbox(), new Inbox()];
    await bus.subscribe(`${p}.news`, local.onMessage);
    await peer.subscribe(`${p}.news`, remote.onMessage);
    await peer.subscribe(`${p}.news`, remote2.onMessage);
    await bus.publish(`${p}.news`, bytes('one'));
    await peer.publish(`${p}.news`, bytes('two'));
    await Promise.all([local.next(2), remote.next(2), remote2.next(2)]);
    for (const inbox of [local, remote, remote2]) {
      assert.deepEqual(inbox.texts.sort(), ['one', 'two']);
      assert.deepEqual(inbox.subjects, [`${p}.news`, `${p}.news`]);
    }
  });

  it('publish with no subscriber resolves', async ({ bus, p }) => {
    await bus.publish(`${p}.nobody.listens`, bytes('x'));
  });

  it('messages from one publisher arrive in publish order', async ({ bus, peer, p }) => {
    const inbox = new Inbox();
    await peer.subscribe(`${p}.seq`, inbox.onMessage);
    const sent = Array.from({ length: 200 }, (_, i) => String(i));
    for (const s of sent) await bus.publish(`${p}.seq`, bytes(s));
    await inbox.next(sent.length);
    assert.deepEqual(inbox.texts, sent);
  });

  it('after unsubscribe resolves, the subscription gets nothing more while others still do', async ({ bus, peer, p }) => {
    const [leaving, staying] = [new Inbox(), new Inbox()];
    const unsubscribe = await peer.subscribe(`${p}.topic`, leaving.onMessage);
    await peer.subscribe(`${p}.topic`, staying.onMessage);
    await bus.publish(`${p}.topic`, bytes('before'));
    await Promise.all([leaving.next(1), staying.next(1)]);
    await unsubscribe();
    await unsubscribe();
    await bus.publish(`${p}.topic`, bytes('after'));
    await staying.next(2);
    assert.deepEqual(leaving.texts, ['before']);
    assert.deepEqual(staying.texts, ['before', 'after']);
  });

  it('no delivery runs after unsubscribe resolves, even of messages already on their way', async ({ bus, peer, p }) => {
    let isUnsubscribed = false;
    let lateDeliveries = 0;
    const [first, end] = [gate(), new Inbox()];
    const unsubscribe = await peer.subscribe(`${p}.burst`, () => {
      first.open();
      if (isUnsubscribed) lateDeliveries += 1;
    });
    await peer.subscribe(`${p}.end`, end.onMessage);
    const chunk = new Uint8Array(1024);
    for (let i = 0; i < 2000; i += 1) await bus.publish(`${p}.burst`, chunk);
    await first.opened; // the rest are still in flight
    await unsubscribe();
    isUnsubscribed = true;
    await bus.publish(`${p}.end`, bytes('end'));
    await end.next(1);
    assert.equal(lateDeliveries, 0);
  });

  it('a throwing subscriber neither fails the publish nor stops other deliveries', async ({ bus, peer, p }) => {
    let thrown = 0;
    const inbox = new Inbox();
    await peer.subscribe(`${p}.t`, () => { thrown += 1; throw new Error('subscriber bug'); });
    await peer.subscribe(`${p}.t`, inbox.onMessage);
    await bus.publish(`${p}.t`, bytes('1'));
    await bus.publish(`${p}.t`, bytes('2'));
    await inbox.next(2);
    assert.equal(thrown, 2);
  });
}

function wildcardCases(it: Case): void {
  it("'*' matches exactly one token and a final '>' one or more", async ({ bus, peer, p }) => {
    const [star, tail, end] = [new Inbox(), new Inbox(), new Inbox()];
    await peer.subscribe(`${p}.a.*.c`, star.onMessage);
    await peer.subscribe(`${p}.a.>`, tail.onMessage);
    await peer.subscribe(`${p}.end`, end.onMessage);
    for (const s of ['a.b.c', 'a.b', 'a.b.c.d', 'a', 'x.b.c', 'a.bb.c', 'a.b.x']) await bus.publish(`${p}.${s}`, bytes(s));
    await bus.publish(`${p}.end`, bytes('end'));
    await end.next(1); // per-publisher order: everything published before has been delivered by now
    assert.deepEqual(star.texts, ['a.b.c', 'a.bb.c']);
    assert.deepEqual(star.subjects, [`${p}.a.b.c`, `${p}.a.bb.c`]);
    assert.deepEqual(tail.texts, ['a.b.c', 'a.b', 'a.b.c.d', 'a.bb.c', 'a.b.x']);
  });

  it('a token merely containing * or > is literal', async ({ bus, peer, p }) => {
    const [inbox, end] = [new Inbox(), new Inbox()];
    await peer.subscribe(`${p}.a*.b>`, inbox.onMessage);
    await peer.subscribe(`${p}.end`, end.onMessage);
    await bus.publish(`${p}.ax.bx`, bytes('other'));
    await bus.publish(`${p}.a*.b>`, bytes('same'));
    await bus.publish(`${p}.end`, bytes('end'));
    await end.next(1);
    assert.deepEqual(inbox.texts, ['same']);
  });
}

function requestCases(it: Case): void {
  it('request is answered by the server on another node', async ({ bus, peer, p }) => {
    await peer.serve(`${p}.upper`, async (data) => bytes(text(data).toUpperCase()));
    assert.equal(text(await bus.request(`${p}.upper`, bytes('hello'), { timeoutMs: 5000 })), 'HELLO');
    assert.equal(text(await peer.request(`${p}.upper`, bytes('local'), { timeoutMs: 5000 })), 'LOCAL');
  });

  it('request with nobody serving rejects with BusNoResponders at once', async ({ bus, p }) => {
    const started = performance.now();
    await assert.rejects(bus.request(`${p}.nobody`, bytes('x'), { timeoutMs: 10_000 }), BusNoResponders);
    assert.ok(performance.now() - started < 1000, 'no-responders took a second or more');
  });

  it('request to a slow server rejects with BusTimeout after timeoutMs', async ({ bus, peer, p }) => {
    const release = gate();
    await peer.serve(`${p}.slow`, async (data) => { await release.opened; return data; });
    const started = performance.now();
    try {
      await assert.rejects(bus.request(`${p}.slow`, bytes('x'), { timeoutMs: 300 }), (err: unknown) => {
        assert.ok(err instanceof BusTimeout);
        assert.equal(err.timeoutMs, 300);
        return true;
      });
      const elapsed = performance.now() - started;
      assert.ok(elapsed >= 290 && elapsed < 2000, `timed out after ${elapsed} ms`);
    } finally {
      release.open();
    }
  });

  it('a handler that throws makes the requester reject with BusRemoteError carrying its message', async ({ bus, peer, p }) => {
    const message = 'device "d.1" refused — ünïcødé 设备\nsecond line';
    await peer.serve(`${p}.fails`, async () => { throw new Error(message); });
    await peer.serve(`${p}.fails-sync`, () => { throw new Error('sync'); });
    await peer.serve(`${p}.fails-odd`, async () => { throw 'not an Error'; });
    const remote = (expected: string) => (err: unknown): boolean => {
      assert.ok(err instanceof BusRemoteError, String(err));
      assert.equal(err.message, expected);
      return true;
    };
    await assert.rejects(bus.request(`${p}.fails`, bytes('x'), { timeoutMs: 5000 }), remote(message));
    await assert.rejects(bus.request(`${p}.fails-sync`, bytes('x'), { timeoutMs: 5000 }), remote('sync'));
    await assert.rejects(bus.request(`${p}.fails-odd`, bytes('x'), { timeoutMs: 5000 }), remote('not an Error'));
  });

  it('with two servers on one subject, exactly one answers each request and both take a share', async ({ bus, peer, p }) => {
    const calls = { first: 0, second: 0 };
    await bus.serve(`${p}.svc`, async () => { calls.first += 1; return bytes('first'); });
    await peer.serve(`${p}.svc`, async () => { calls.second += 1; return bytes('second'); });
    const replies = await Promise.all(Array.from({ length: 40 }, (_, i) =>
      (i % 2 === 0 ? bus : peer).request(`${p}.svc`, bytes(String(i)), { timeoutMs: 5000 })));
    const answers = replies.map(text);
    assert.equal(calls.first + calls.second, 40);
    assert.equal(answers.filter((a) => a === 'first').length, calls.first);
    assert.ok(calls.first > 0 && calls.second > 0, `split ${calls.first}/${calls.second}`);
  });

  it('after stop, the subject has no server; stop on one server leaves the other serving', async ({ bus, peer, p }) => {
    const stopA = await bus.serve(`${p}.svc`, async () => bytes('a'));
    const stopB = await peer.serve(`${p}.svc`, async () => bytes('b'));
    await stopA();
    for (let i = 0; i < 5; i += 1) assert.equal(text(await bus.request(`${p}.svc`, bytes(''), { timeoutMs: 5000 })), 'b');
    await stopB();
    await assert.rejects(bus.request(`${p}.svc`, bytes(''), { timeoutMs: 5000 }), BusNoResponders);
  });

  it('a server on a wildcard subject answers requests on matching subjects', async ({ bus, peer, p }) => {
    await peer.serve(`${p}.device.*.method`, async (data) => bytes(`got ${text(data)}`));
    assert.equal(text(await bus.request(`${p}.device.d1.method`, bytes('x'), { timeoutMs: 5000 })), 'got x');
    await assert.rejects(bus.request(`${p}.device.d1.other`, bytes('x'), { timeoutMs: 5000 }), BusNoResponders);
  });
}

function payloadCases(it: Case): void {
  const all256 = Uint8Array.from({ length: 256 }, (_, i) => i);
  const big = new Uint8Array(randomBytes(1_000_000));
  const empty = new Uint8Array(0);

  it('publish carries every byte value, an empty and a 1 MB payload unchanged', async ({ bus, peer, p }) => {
    const inbox = new Inbox();
    await peer.subscribe(`${p}.bin`, inbox.onMessage);
    for (const payload of [all256, empty, big]) await bus.publish(`${p}.bin`, payload);
    await inbox.next(3);
    assert.deepEqual(inbox.got.map((m) => Buffer.from(m.data)), [all256, empty, big].map((b) => Buffer.from(b)));
  });

  it('request and reply carry every byte value, an empty and a 1 MB payload unchanged', async ({ bus, peer, p }) => {
    const seen: Buffer[] = [];
    await peer.serve(`${p}.echo`, async (data) => { seen.push(Buffer.from(data)); return data; });
    for (const payload of [all256, empty, big]) {
      const reply = await bus.request(`${p}.echo`, payload, { timeoutMs: 10_000 });
      assert.ok(Buffer.from(reply).equals(Buffer.from(payload)), `reply of ${payload.length} bytes differs`);
    }
    assert.deepEqual(seen, [all256, empty, big].map((b) => Buffer.from(b)));
  });

  it('a subscriber changing its bytes changes nobody else\'s', async ({ bus, peer, p }) => {
    const [a, b] = [new Inbox(), new Inbox()];
    await peer.subscribe(`${p}.m`, (data, s) => { data.fill(0); a.onMessage(data, s); });
    await peer.subscribe(`${p}.m`, b.onMessage);
    const sent = bytes('abc');
    await bus.publish(`${p}.m`, sent);
    await Promise.all([a.next(1), b.next(1)]);
    assert.equal(text(b.got[0].data), 'abc');
    assert.equal(text(sent), 'abc');
  });
}

/** Ids IoT Hub allows (letters, digits, `-.%_*?!(),:=@$'`), ids that look like escapes, and ids beyond ASCII. */
function sampleIds(): string[] {
  const specials = "-.%_*?!(),:=@$'";
  const ids = ['', 'dev', 'DEV', 'dev.1', 'dev*1', 'dev>1', 'a$b', '100%', '>', '*', '.', '..', 'x_2E', 'x.', '_', '__',
    '_u0041', 'a_41', 'aA', ' lead', 'tab\there', 'ümlaut', '设备', '🚀', '\uD800', "-.%_*?!(),:=@$'"];
  for (const a of specials) {
    ids.push(a, `d${a}`, `${a}d`);
    for (const b of specials) ids.push(`${a}${b}`);
  }
  return [...new Set(ids)];
}

function tokenCases(it: Case): void {
  it('subjectToken turns every id into a distinct single token of [A-Za-z0-9_-] that decodes back', async () => {
    const ids = sampleIds();
    const tokens = ids.map(subjectToken);
    for (const [i, token] of tokens.entries()) {
      assert.match(token, /^[A-Za-z0-9_-]+$/, `token of ${JSON.stringify(ids[i])}`);
      assert.equal(idFromSubjectToken(token), ids[i]);
    }
    assert.equal(new Set(tokens).size, ids.length, 'two ids share a token');
    assert.equal(subjectToken('Plain-Device-01'), 'Plain-Device-01');
    assert.throws(() => idFromSubjectToken('a.b'), TypeError);
    assert.throws(() => idFromSubjectToken('a_4'), TypeError);
    assert.throws(() => idFromSubjectToken('a_41'), TypeError, 'non-canonical escape of a plain letter');
  });

  it('a subject built with subjectToken reaches exactly its device, and a wildcard subscriber can recover the id', async ({ bus, peer, p }) => {
    const ids = ['dev.1', 'dev*1', 'dev>1', 'dev', "a$b%c_d:e=f@g'h(i)j!k?l,m"];
    const [all, end] = [new Inbox(), new Inbox()];
    await peer.subscribe(`${p}.device.*.notify`, all.onMessage);
    await peer.subscribe(`${p}.end`, end.onMessage);
    for (const id of ids) await peer.serve(`${p}.device.${subjectToken(id)}.method`, async () => bytes(id));
    for (const id of ids) {
      assert.equal(text(await bus.request(`${p}.device.${subjectToken(id)}.method`, bytes(''), { timeoutMs: 5000 })), id);
      await bus.publish(`${p}.device.${subjectToken(id)}.notify`, bytes(id));
    }
    await bus.publish(`${p}.end`, bytes(''));
    await end.next(1);
    assert.deepEqual(all.texts, ids);
    assert.deepEqual(all.subjects.map((s) => idFromSubjectToken(s.split('.')[2])), ids);
  });
}

function validationCases(it: Case): void {
  it('malformed subjects and timeouts are refused with TypeError', async ({ bus, p }) => {
    const noop = (): void => undefined;
    for (const subject of ['', `${p}..a`, `${p}.`, `.${p}`, `${p}.a b`, `${p}.a\nb`]) {
      await assert.rejects(bus.publish(subject, bytes('')), TypeError, JSON.stringify(subject));
      await assert.rejects(bus.subscribe(subject, noop), TypeError, JSON.stringify(subject));
    }
    for (const subject of [`${p}.*`, `${p}.>`, `${p}.*.x`]) {
      await assert.rejects(bus.publish(subject, bytes('')), TypeError, subject);
      await assert.rejects(bus.request(subject, bytes(''), { timeoutMs: 1000 }), TypeError, subject);
    }
    await assert.rejects(bus.subscribe(`${p}.>.x`, noop), TypeError);
    await assert.rejects(bus.serve(`${p}.>.x`, echo), TypeError);
    for (const timeoutMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      await assert.rejects(bus.request(`${p}.x`, bytes(''), { timeoutMs }), TypeError, String(timeoutMs));
    }
  });
}

function closeCases(it: Case, hasPeer: boolean): void {
  it('after close every call rejects with BusClosed, and close again resolves', async ({ bus, peer, p }) => {
    const unsubscribe = await bus.subscribe(`${p}.x`, () => undefined);
    const stop = await bus.serve(`${p}.svc`, echo);
    await bus.close();
    await bus.close();
    await assert.rejects(bus.publish(`${p}.x`, bytes('')), BusClosed);
    await assert.rejects(bus.subscribe(`${p}.x`, () => undefined), BusClosed);
    await assert.rejects(bus.request(`${p}.svc`, bytes(''), { timeoutMs: 1000 }), BusClosed);
    await assert.rejects(bus.serve(`${p}.svc`, echo), BusClosed);
    await unsubscribe();
    await stop();
    if (peer !== bus) await assert.rejects(peer.request(`${p}.svc`, bytes(''), { timeoutMs: 5000 }), BusNoResponders);
  });

  it('a request waiting when its node closes rejects with BusClosed rather than waiting out its time', async ({ bus, peer, p }) => {
    const [arrived, release] = [gate(), gate()];
    await peer.serve(`${p}.never`, async (data) => { arrived.open(); await release.opened; return data; });
    const started = performance.now();
    try {
      const pending = bus.request(`${p}.never`, bytes(''), { timeoutMs: 30_000 });
      await arrived.opened;
      await bus.close();
      await assert.rejects(pending, BusClosed);
      assert.ok(performance.now() - started < 10_000);
    } finally {
      release.open();
    }
  });

  if (!hasPeer) return;
  it('a closed node\'s subscriptions stop receiving while its peer\'s go on', async ({ bus, peer, p }) => {
    const [gone, staying] = [new Inbox(), new Inbox()];
    await bus.subscribe(`${p}.x`, gone.onMessage);
    await peer.subscribe(`${p}.x`, staying.onMessage);
    await bus.close();
    await peer.publish(`${p}.x`, bytes('after'));
    await staying.next(1);
    assert.equal(gone.got.length, 0);
  });
}
