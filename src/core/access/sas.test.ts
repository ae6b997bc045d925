import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { AccessDenied, Unauthorized } from '../errors/index.js';
import { ManualClock } from '../../ports/clock/index.js';
import { ServiceAccess, type Policy } from './index.js';
import { buildSasToken, isSignedBy, parseSasToken, resourceOf, signSas, strictEncode, type SasToken } from './sas.js';

const HOST = '127.0.0.9';
const key = (): string => randomBytes(32).toString('base64');
const OWNER: Policy = {
  name: 'iothubowner', rights: ['RegistryRead', 'RegistryWrite', 'ServiceConnect', 'DeviceConnect'],
  primaryKey: key(), secondaryKey: key(),
};
const READER: Policy = { name: 'registryRead', rights: ['RegistryRead'], primaryKey: key(), secondaryKey: key() };

function setup() {
  const clock = new ManualClock();
  const access = new ServiceAccess([OWNER, READER], HOST, clock);
  const inSeconds = (s: number) => Math.floor(clock.now() / 1000) + s;
  return { clock, access, inSeconds };
}

function parsed(text: string): SasToken {
  const t = parseSasToken(text);
  assert.ok(t, `not parsed: ${text}`);
  return t;
}

function assertUnauthorized(fn: () => unknown, pattern?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof Unauthorized, `expected Unauthorized, got ${String(err)}`);
    assert.equal(err.code, 401003);
    if (pattern) assert.match(err.message, pattern);
    return true;
  });
}

test('parseSasToken reads the fields in any order', () => {
  const a = parsed('SharedAccessSignature sr=host%2Fdevices%2Fd&sig=abc%3D&se=1700000000&skn=owner');
  const b = parsed('SharedAccessSignature skn=owner&se=1700000000&sig=abc%3D&sr=host%2Fdevices%2Fd');
  assert.deepEqual(a, { sr: 'host%2Fdevices%2Fd', sig: 'abc%3D', se: 1700000000, skn: 'owner' });
  assert.deepEqual(b, a);
});

test('parseSasToken skips junk fields and keeps sr and sig as written', () => {
  const t = parsed('SharedAccessSignature junk&=nokey&extra=1&&sr=h&sig=a=b&se=5');
  assert.deepEqual(t, { sr: 'h', sig: 'a=b', se: 5, skn: undefined });
});

test('parseSasToken returns undefined for what is not a SAS token', () => {
  for (const text of [
    '', 'Bearer x', 'SharedAccessSignature', 'SharedAccessSignature sr=h&sig=s',
    'SharedAccessSignature sr=h&sig=s&se=soon', 'SharedAccessSignature sr=h&sig=s&se=-1',
    'SharedAccessSignature sr=&sig=s&se=1',
  ]) assert.equal(parseSasToken(text), undefined, text);
});

test('strictEncode escapes ! \' ( ) * with lower-case hex as the Azure SDKs do', () => {
  assert.equal(strictEncode('127.0.0.1/devices/dev(1)*'), '127.0.0.1%2Fdevices%2Fdev%281%29%2a');
  assert.equal(strictEncode("a!b'c"), 'a%21b%27c');
  assert.equal(strictEncode('plain-id_1.~'), 'plain-id_1.~');
});

test('a token built by buildSasToken is signed by its key and by no other', () => {
  const k = key();
  const text = buildSasToken('127.0.0.1/devices/dev(1)*', k, 1_800_000_000, 'device');
  const t = parsed(text);
  assert.equal(t.sr, '127.0.0.1%2Fdevices%2Fdev%281%29%2a');
  assert.equal(resourceOf(t), '127.0.0.1/devices/dev(1)*');
  assert.equal(t.skn, 'device');
  assert.equal(isSignedBy(t, [k]), true);
  assert.equal(isSignedBy(t, [key()]), false);
  assert.equal(isSignedBy(t, [key(), k]), true, 'any of the keys');
});

test('isSignedBy accepts a signature over the decoded resource', () => {
  const k = key();
  const resource = '127.0.0.1/devices/dev(1)*';
  const sig = encodeURIComponent(signSas(resource, 1_800_000_000, k));
  const t = parsed(`SharedAccessSignature sr=${strictEncode(resource)}&sig=${sig}&se=1800000000`);
  assert.equal(isSignedBy(t, [k]), true);
});

test('isSignedBy accepts a strict-encoded signature on a token whose sr is only loosely encoded', () => {
  const k = key();
  const resource = '127.0.0.1/devices/dev(1)*';
  const sig = encodeURIComponent(signSas(strictEncode(resource), 1_800_000_000, k));
  const t = parsed(`SharedAccessSignature sr=${encodeURIComponent(resource)}&sig=${sig}&se=1800000000`);
  assert.equal(isSignedBy(t, [k]), true);
});

test('isSignedBy rejects a token whose se was changed after signing', () => {
  const k = key();
  const t = parsed(buildSasToken('h/devices/d', k, 1_800_000_000));
  assert.equal(isSignedBy({ ...t, se: t.se + 3600 }, [k]), false);
});

test('isSignedBy rejects signatures that are not 32 bytes of base64 or not URL-decodable', () => {
  const k = key();
  const t = parsed(buildSasToken('h/devices/d', k, 1_800_000_000));
  assert.equal(isSignedBy({ ...t, sig: 'c2hvcnQ%3D' }, [k]), false);
  assert.equal(isSignedBy({ ...t, sig: '%E0%A4%A' }, [k]), false);
  assert.equal(isSignedBy({ ...t, sr: '%E0%A4%A' }, [k]), false);
});

test('a valid service token authenticates as its policy with its rights', () => {
  const { access, inSeconds } = setup();
  const p = access.authenticate(buildSasToken(HOST, OWNER.primaryKey, inSeconds(3600), 'iothubowner'));
  assert.equal(p.policy, 'iothubowner');
  assert.deepEqual([...p.rights].sort(), ['DeviceConnect', 'RegistryRead', 'RegistryWrite', 'ServiceConnect']);
});

test('the secondary key of a policy works too', () => {
  const { access, inSeconds } = setup();
  const p = access.authenticate(buildSasToken(HOST, READER.secondaryKey, inSeconds(60), 'registryRead'));
  assert.equal(p.policy, 'registryRead');
});

test('the host name in sr is compared without case and trailing slashes', () => {
  const { access, inSeconds } = setup();
  access.authenticate(buildSasToken(`${HOST}/`, OWNER.primaryKey, inSeconds(60), 'iothubowner'));
});

test('a missing header or a header that is not a SAS token fails with 401003', () => {
  const { access } = setup();
  assertUnauthorized(() => access.authenticate(undefined), /no Authorization header/);
  assertUnauthorized(() => access.authenticate('Basic dXNlcjpwYXNz'), /not a SharedAccessSignature/);
});

test('an expired token fails with 401003', () => {
  const { access, inSeconds } = setup();
  assertUnauthorized(() => access.authenticate(buildSasToken(HOST, OWNER.primaryKey, inSeconds(0), 'iothubowner')), /expired/);
  assertUnauthorized(() => access.authenticate(buildSasToken(HOST, OWNER.primaryKey, inSeconds(-10), 'iothubowner')), /expired/);
});

test('a token naming no policy or an unknown policy fails with 401003', () => {
  const { access, inSeconds } = setup();
  assertUnauthorized(() => access.authenticate(buildSasToken(HOST, OWNER.primaryKey, inSeconds(60))), /skn/);
  assertUnauthorized(() => access.authenticate(buildSasToken(HOST, OWNER.primaryKey, inSeconds(60), 'nosuchpolicy')), /nosuchpolicy/);
});

test('a token whose policy name is not valid percent-encoding fails with 401003, not a URIError', () => {
  const { access, inSeconds } = setup();
  const text = buildSasToken(HOST, OWNER.primaryKey, inSeconds(60)) + '&skn=%E0%A4%A';
  assertUnauthorized(() => access.authenticate(text));
});

test('a token for another host or a device resource fails with 401003', () => {
  const { access, inSeconds } = setup();
  assertUnauthorized(() => access.authenticate(buildSasToken('other.host', OWNER.primaryKey, inSeconds(60), 'iothubowner')), /other\.host/);
  assertUnauthorized(() => access.authenticate(buildSasToken(`${HOST}/devices/d1`, OWNER.primaryKey, inSeconds(60), 'iothubowner')), /not this hub/);
});

test('a token signed with another policy\'s key or a random key fails with 401003', () => {
  const { access, inSeconds } = setup();
  assertUnauthorized(() => access.authenticate(buildSasToken(HOST, READER.primaryKey, inSeconds(60), 'iothubowner')), /signature/);
  assertUnauthorized(() => access.authenticate(buildSasToken(HOST, key(), inSeconds(60), 'iothubowner')), /signature/);
});

test('a token with a tampered se fails with 401003', () => {
  const { access, inSeconds } = setup();
  const text = buildSasToken(HOST, OWNER.primaryKey, inSeconds(60), 'iothubowner');
  const tampered = text.replace(/se=(\d+)/, (_, se: string) => `se=${Number(se) + 86400}`);
  assertUnauthorized(() => access.authenticate(tampered), /signature/);
});

test('require passes when the principal holds one of the rights', () => {
  const { access, inSeconds } = setup();
  const p = access.authenticate(buildSasToken(HOST, READER.primaryKey, inSeconds(60), 'registryRead'));
  access.require(p, 'RegistryRead');
  access.require(p, 'RegistryWrite', 'RegistryRead');
});

test('require throws AccessDenied (401002) naming policy and right when the right is missing', () => {
  const { access, inSeconds } = setup();
  const p = access.authenticate(buildSasToken(HOST, READER.primaryKey, inSeconds(60), 'registryRead'));
  assert.throws(() => access.require(p, 'RegistryWrite'), (err: unknown) => {
    assert.ok(err instanceof AccessDenied);
    assert.equal(err.code, 401002);
    assert.match(err.message, /registryRead/);
    assert.match(err.message, /RegistryWrite/);
    return true;
  });
});

test('a cached token still expires when the clock passes its se', () => {
  const { access, clock, inSeconds } = setup();
  const text = buildSasToken(HOST, OWNER.primaryKey, inSeconds(60), 'iothubowner');
  assert.equal(access.authenticate(text).policy, 'iothubowner');
  clock.advance(59_000);
  assert.equal(access.authenticate(text).policy, 'iothubowner');
  clock.advance(1_000);
  assertUnauthorized(() => access.authenticate(text), /expired/);
});

test('a rejected token is not remembered: it fails the same way each time', () => {
  const { access, inSeconds } = setup();
  const text = buildSasToken(HOST, key(), inSeconds(60), 'iothubowner');
  assertUnauthorized(() => access.authenticate(text), /signature/);
  assertUnauthorized(() => access.authenticate(text), /signature/);
});

test('policies() lists the configured policies', () => {
  const { access } = setup();
  assert.deepEqual(access.policies().map((p) => p.name), ['iothubowner', 'registryRead']);
});
