import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { ManualClock } from '../../ports/clock/index.js';
import { SqliteStore } from '../../ports/store/sqlite/index.js';
import { daysFromNow, issueCa, issueCert, type TestCert } from '../../../test/support/x509.js';
import { CaCertificates } from './index.js';
import { rejectsWith } from '../../../test/support/assertions.js';

async function setup(t: TestContext) {
  const store = SqliteStore.open(':memory:');
  await store.migrate();
  t.after(() => store.close());
  const clock = new ManualClock(Date.now());
  return { store, clock, certificates: new CaCertificates({ store, clock }) };
}

const root = issueCa('Corral Test Root');
/** Same subject as `root`, another key: a signature by it must not pass for root's. */
const impostor = issueCa('Corral Test Root');

/** Registers `ca` under `name` and returns its verification code. */
async function registered(certificates: CaCertificates, name: string, ca: TestCert = root): Promise<string> {
  await certificates.register(name, ca.certPem);
  const { verificationCode } = await certificates.generateVerificationCode(name);
  assert.ok(verificationCode);
  return verificationCode;
}

test('register stores a CA unverified with its subject, SHA-256 thumbprint and expiry; get and list return it', async (t) => {
  const { certificates } = await setup(t);
  const c = await certificates.register('root-1', root.certPem);
  assert.equal(c.name, 'root-1');
  assert.equal(c.subject, 'CN=Corral Test Root, O=Corral tests');
  assert.equal(c.thumbprint, root.sha256);
  assert.equal(c.isVerified, false);
  assert.equal(c.verificationCode, null);
  assert.ok(c.etag);
  assert.ok(Math.abs(c.expiryMs - daysFromNow(365).getTime()) < 120_000);
  assert.deepEqual(await certificates.get('root-1'), c);
  assert.deepEqual((await certificates.list()).map((x) => x.name), ['root-1']);
});

test('register takes base64 DER as well as PEM', async (t) => {
  const { certificates } = await setup(t);
  const c = await certificates.register('der', root.der.toString('base64'));
  assert.equal(c.thumbprint, root.sha256);
});

test('register refuses what is not one CA certificate valid now, with 400004 naming why', async (t) => {
  const { certificates } = await setup(t);
  const leaf = issueCert({ cn: 'a-leaf', issuer: root });
  const expired = issueCa('Old Root', undefined, { notBefore: daysFromNow(-20), notAfter: daysFromNow(-1) });
  await rejectsWith(certificates.register('leaf', leaf.certPem), 400004, /not a CA certificate/);
  await rejectsWith(certificates.register('old', expired.certPem), 400004, /expired on/);
  await rejectsWith(certificates.register('two', root.certPem + impostor.certPem), 400004, /2 certificates/);
  await rejectsWith(certificates.register('junk', 'hello, world'), 400004, /neither PEM/);
  await rejectsWith(certificates.register('junk', 'aGVsbG8='), 400004, /not a readable X.509 certificate/);
  await rejectsWith(certificates.register('junk', 42), 400004, /PEM or base64 DER string/);
  await rejectsWith(certificates.register('bad/name', root.certPem), 400004, /certificate name/);
  assert.deepEqual(await certificates.list(), []);
});

test('register of a taken name needs If-Match; a replace resets verification; stale etags fail with 412002', async (t) => {
  const { certificates } = await setup(t);
  const code = await registered(certificates, 'ca');
  const verified = await certificates.verify('ca', issueCert({ cn: code, issuer: root }).certPem);
  assert.equal(verified.isVerified, true);
  await rejectsWith(certificates.register('ca', impostor.certPem), 412002, /exists already/);
  await rejectsWith(certificates.register('ca', impostor.certPem, 'not-the-etag'), 412002);
  const replaced = await certificates.register('ca', impostor.certPem, verified.etag);
  assert.equal(replaced.thumbprint, impostor.sha256);
  assert.equal(replaced.isVerified, false);
  assert.notEqual(replaced.etag, verified.etag);
  await rejectsWith(certificates.register('absent', root.certPem, '*'), 404999);
});

test('proof of possession: a certificate with CN = the code, signed by the CA, verifies it and uses the code up', async (t) => {
  const { certificates } = await setup(t);
  const code = await registered(certificates, 'ca');
  assert.match(code, /^[0-9A-F]{48}$/);
  const c = await certificates.verify('ca', issueCert({ cn: code, issuer: root }).certPem);
  assert.equal(c.isVerified, true);
  assert.equal(c.verificationCode, null);
  await rejectsWith(certificates.verify('ca', issueCert({ cn: code, issuer: root }).certPem), 400004, /no verification code/);
});

test('proof of possession fails with 400004 for a wrong CN, another key, an expired certificate, or no code', async (t) => {
  const { certificates } = await setup(t);
  await certificates.register('ca', root.certPem);
  await rejectsWith(certificates.verify('ca', issueCert({ cn: 'anything', issuer: root }).certPem), 400004, /no verification code outstanding/);
  const code = (await certificates.generateVerificationCode('ca')).verificationCode ?? '';
  await rejectsWith(certificates.verify('ca', issueCert({ cn: 'not-the-code', issuer: root }).certPem), 400004,
    /CN is 'not-the-code', not the verification code/);
  await rejectsWith(certificates.verify('ca', issueCert({ cn: code, issuer: impostor }).certPem), 400004, /not signed by the private key/);
  const old = issueCert({ cn: code, issuer: root, notBefore: daysFromNow(-10), notAfter: daysFromNow(-1) });
  await rejectsWith(certificates.verify('ca', old.certPem), 400004, /verification certificate expired on/);
  await rejectsWith(certificates.verify('ca', '<junk>'), 400004, /verification certificate is neither PEM/);
  await rejectsWith(certificates.verify('absent', issueCert({ cn: code, issuer: root }).certPem), 404999);
  const after = await certificates.get('ca');
  assert.equal(after.isVerified, false);
  assert.equal(after.verificationCode, code, 'failed attempts leave the code in place');
});

test('a new verification code replaces the previous one', async (t) => {
  const { certificates } = await setup(t);
  const first = await registered(certificates, 'ca');
  const second = (await certificates.generateVerificationCode('ca')).verificationCode ?? '';
  assert.notEqual(first, second);
  await rejectsWith(certificates.verify('ca', issueCert({ cn: first, issuer: root }).certPem), 400004, /not the verification code/);
  assert.equal((await certificates.verify('ca', issueCert({ cn: second, issuer: root }).certPem)).isVerified, true);
});

test('delete honours If-Match; a deleted or unknown name is 404', async (t) => {
  const { certificates } = await setup(t);
  const c = await certificates.register('ca', root.certPem);
  await rejectsWith(certificates.delete('ca', 'stale'), 412002);
  await rejectsWith(certificates.generateVerificationCode('ca', 'stale'), 412002);
  await certificates.delete('ca', c.etag);
  await rejectsWith(certificates.get('ca'), 404999, /no CA certificate named 'ca'/);
  await rejectsWith(certificates.delete('ca'), 404999);
});
