import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test, type TestContext } from 'node:test';
import { DeviceAuth, DeviceRefused } from '../devices/index.js';
import { ManualClock } from '../../ports/clock/index.js';
import { AesGcmKeyRing } from '../../ports/keyring/index.js';
import { identityRecord } from '../../ports/store/contract.js';
import type { IdentityKey } from '../../ports/store/index.js';
import { SqliteStore } from '../../ports/store/sqlite/index.js';
import { daysFromNow, issueCa, issueCert, type TestCert } from '../../../test/support/x509.js';
import { CaCertificates, checkDeviceChain } from './index.js';

const DAY_MS = 86_400_000;
const root = issueCa('Chain Root');
const intermediate = issueCa('Chain Intermediate', root);
const otherRoot = issueCa('Other Root');
/** Names `root` as its issuer but is signed by another key. */
const forger = issueCa('Chain Root');

async function setup(t: TestContext) {
  const store = SqliteStore.open(':memory:');
  await store.migrate();
  t.after(() => store.close());
  const clock = new ManualClock(Date.now());
  const certificates = new CaCertificates({ store, clock });
  const auth = new DeviceAuth({ store, keyring: new AesGcmKeyRing(randomBytes(32)), clock, hostName: 'hub', policies: [] });
  /** Registers `ca`, and proves possession of its key unless `verified` is false. */
  const register = async (name: string, ca: TestCert, verified = true) => {
    await certificates.register(name, ca.certPem);
    if (!verified) return;
    const { verificationCode } = await certificates.generateVerificationCode(name);
    await certificates.verify(name, issueCert({ cn: verificationCode ?? '', issuer: ca }).certPem);
  };
  const check = (chain: readonly TestCert[], cn: string) => checkDeviceChain(store, chain.map((c) => c.der), cn, clock.now());
  return { store, clock, auth, register, check };
}

function leaf(cn: string, issuer: TestCert, over: { notBefore?: Date; notAfter?: Date } = {}): TestCert {
  return issueCert({ cn, issuer, ...over });
}

test('a leaf signed by a verified registered root passes; the root may be presented too', async (t) => {
  const { register, check } = await setup(t);
  await register('root', root);
  const d = leaf('dev-1', root);
  assert.deepEqual(await check([d], 'dev-1'), { ok: true, caName: 'root' });
  assert.deepEqual(await check([d, root], 'dev-1'), { ok: true, caName: 'root' });
});

test('leaf → intermediate → root passes when the client sends the intermediate, in any order after the leaf', async (t) => {
  const { register, check } = await setup(t);
  await register('root', root);
  const d = leaf('dev-2', intermediate);
  assert.deepEqual(await check([d, intermediate], 'dev-2'), { ok: true, caName: 'root' });
  assert.deepEqual(await check([d, root, intermediate], 'dev-2'), { ok: true, caName: 'root' });
  const missing = await check([d], 'dev-2');
  assert.equal(missing.ok, false);
  assert.match(missing.ok ? '' : missing.reason, /no verified CA certificate is registered for issuer 'CN=Chain Intermediate/);
});

test('a registered, verified intermediate vouches on its own', async (t) => {
  const { register, check } = await setup(t);
  await register('intermediate', intermediate);
  assert.deepEqual(await check([leaf('dev-3', intermediate)], 'dev-3'), { ok: true, caName: 'intermediate' });
});

test('refusals name why: wrong CN, unverified CA, unregistered CA, forged signature, expired leaf or intermediate', async (t) => {
  const { register, check } = await setup(t);
  await register('root', root);
  await register('other', otherRoot, false);
  const reason = async (chain: readonly TestCert[], cn: string) => {
    const r = await check(chain, cn);
    assert.equal(r.ok, false, `expected a refusal for ${cn}`);
    return r.ok ? '' : r.reason;
  };
  assert.match(await reason([leaf('dev-x', root)], 'dev-4'), /subject CN is 'dev-x', not 'dev-4'/);
  assert.match(await reason([leaf('dev-4', otherRoot)], 'dev-4'), /no verified CA certificate is registered for issuer 'CN=Other Root/);
  assert.match(await reason([leaf('dev-4', issueCa('Unknown Root'))], 'dev-4'), /issuer 'CN=Unknown Root/);
  assert.match(await reason([leaf('dev-4', forger)], 'dev-4'), /no verified CA certificate/);
  assert.match(await reason([leaf('dev-4', forger), forger], 'dev-4'), /no verified CA certificate/);
  const expired = leaf('dev-4', root, { notBefore: daysFromNow(-10), notAfter: daysFromNow(-1) });
  assert.match(await reason([expired], 'dev-4'), /client certificate expired on/);
  const future = leaf('dev-4', root, { notBefore: daysFromNow(1), notAfter: daysFromNow(10) });
  assert.match(await reason([future], 'dev-4'), /client certificate is not valid before/);
  const oldIntermediate = issueCa('Old Intermediate', root, { notBefore: daysFromNow(-10), notAfter: daysFromNow(-1) });
  assert.match(await reason([leaf('dev-4', oldIntermediate), oldIntermediate], 'dev-4'), /intermediate 'CN=Old Intermediate.*expired on/);
});

test('an intermediate that is not a CA certificate breaks the chain', async (t) => {
  const { register, check } = await setup(t);
  await register('root', root);
  const notCa = issueCert({ cn: 'Leaf As Issuer', issuer: root });
  const r = await check([leaf('dev-5', notCa), notCa], 'dev-5');
  // OpenSSL's issuer check already refuses an issuer without keyCertSign; the CA flag is checked again besides.
  assert.equal(r.ok, false);
  assert.match(r.ok ? '' : r.reason, /Leaf As Issuer/);
});

test('a registered CA that has expired since no longer vouches', async (t) => {
  const { register, check, clock } = await setup(t);
  await register('root', root);
  const longLived = leaf('dev-6', root, { notAfter: daysFromNow(800) });
  clock.advance(400 * DAY_MS);
  const r = await check([longLived], 'dev-6');
  assert.equal(r.ok, false);
});

test('unreadable bytes are refused, not thrown', async (t) => {
  const { check, store, clock } = await setup(t);
  assert.equal((await checkDeviceChain(store, [Buffer.from('junk')], 'd', clock.now())).ok, false);
  assert.equal((await checkDeviceChain(store, [], 'd', clock.now())).ok, false);
  assert.equal((await check([leaf('d', root)], 'd')).ok, false);
});

async function refused(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof DeviceRefused, String(err));
    assert.equal(err.code, 401003);
    assert.match(err.message, pattern);
    return true;
  });
}

test('DeviceAuth: certificateAuthority devices by CN and chain; modules by CN {deviceId}/{moduleId}', async (t) => {
  const { store, auth, register } = await setup(t);
  await register('root', root);
  const ca = { authType: 'certificateAuthority', primaryKey: null, secondaryKey: null } as const;
  await store.identities.insert(identityRecord('ca-dev', '', ca));
  await store.identities.insert(identityRecord('ca-dev', 'mod-1', ca));
  await store.identities.insert(identityRecord('sas-dev'));
  const dev: IdentityKey = { deviceId: 'ca-dev', moduleId: '' };
  const principal = await auth.authenticateCertificate(dev, [leaf('ca-dev', intermediate).der, intermediate.der]);
  assert.deepEqual(principal, { deviceId: 'ca-dev', moduleId: '', generationId: 'gen-ca-dev-', authMethod: 'x509', expiresAtMs: undefined });
  const mod: IdentityKey = { deviceId: 'ca-dev', moduleId: 'mod-1' };
  assert.equal((await auth.authenticateCertificate(mod, [leaf('ca-dev/mod-1', root).der])).moduleId, 'mod-1');
  await refused(auth.authenticateCertificate(mod, [leaf('ca-dev', root).der]), /CN is 'ca-dev', not 'ca-dev\/mod-1'/);
  await refused(auth.authenticateCertificate(dev, [leaf('ca-dev', otherRoot).der]), /no verified CA/);
  await refused(auth.authenticateCertificate(dev, undefined), /no SAS token and no client certificate/);
  await refused(auth.authenticateCertificate({ deviceId: 'sas-dev', moduleId: '' }, [leaf('sas-dev', root).der]), /authenticates with sas/);
  await store.identities.replace(identityRecord('ca-dev', '', { ...ca, status: 'disabled' }), 1);
  await refused(auth.authenticateCertificate(dev, [leaf('ca-dev', root).der]), /disabled/);
});

test('DeviceAuth: selfSigned devices by SHA-1 or SHA-256 thumbprint, primary or secondary, in any case', async (t) => {
  const { store, auth } = await setup(t);
  const own = issueCert({ cn: 'anything' });
  const spare = issueCert({ cn: 'spare' });
  const self = { authType: 'selfSigned', primaryKey: null, secondaryKey: null } as const;
  await store.identities.insert(identityRecord('ss-1', '', { ...self, primaryThumbprint: own.sha1.toLowerCase(), secondaryThumbprint: null }));
  await store.identities.insert(identityRecord('ss-2', '', { ...self, primaryThumbprint: 'AA'.repeat(32), secondaryThumbprint: spare.sha256 }));
  assert.equal((await auth.authenticateCertificate({ deviceId: 'ss-1', moduleId: '' }, [own.der])).authMethod, 'x509');
  assert.equal((await auth.authenticateCertificate({ deviceId: 'ss-2', moduleId: '' }, [spare.der])).authMethod, 'x509');
  await refused(auth.authenticateCertificate({ deviceId: 'ss-2', moduleId: '' }, [own.der]), /thumbprint is not registered/);
  const stale = issueCert({ cn: 'old', notBefore: daysFromNow(-10), notAfter: daysFromNow(-1) });
  await store.identities.insert(identityRecord('ss-3', '', { ...self, primaryThumbprint: stale.sha256 }));
  await refused(auth.authenticateCertificate({ deviceId: 'ss-3', moduleId: '' }, [stale.der]), /expired on/);
  await refused(auth.authenticateCertificate({ deviceId: 'ss-1', moduleId: '' }, [Buffer.from('junk')]), /not a readable X.509/);
});
