import assert from 'node:assert/strict';
import type { CaCertificateRecord, Store } from './index.js';

type Case = (name: string, body: (store: Store) => Promise<void>) => void;

const T0 = Date.UTC(2026, 0, 1);

/** A complete unverified record with plain values; `over` replaces fields. */
export function caCertificateRecord(name: string, over: Partial<CaCertificateRecord> = {}): CaCertificateRecord {
  return {
    name, pem: `-----BEGIN CERTIFICATE-----\n${name}\n-----END CERTIFICATE-----\n`, thumbprint: 'AB'.repeat(32),
    subject: `CN=${name}\nO=Corral`, isVerified: false, verificationCode: null, verificationCodeIssuedMs: null,
    etag: 'AAAAAQ==', createdMs: T0, updatedMs: T0, rev: 0, ...over,
  };
}

/** The Store's CA certificate behaviour; called by storeContract. */
export function caCertificateCases(it: Case): void {
  it('ca certificate: insert then get returns every field, rev 1; a second insert of the name is refused', async (store) => {
    const r = caCertificateRecord('root-CA.1', {
      isVerified: true, verificationCode: 'C0DE'.repeat(12), verificationCodeIssuedMs: T0 + 1, updatedMs: T0 + 2,
      subject: 'CN=Zürich «CA» 设备\nO=Corral', etag: 'ImFiYyI=',
    });
    assert.equal(await store.caCertificates.insert(r), true);
    assert.deepEqual(await store.caCertificates.get('root-CA.1'), { ...r, rev: 1 });
    assert.equal(await store.caCertificates.insert(caCertificateRecord('root-CA.1')), false);
    assert.deepEqual(await store.caCertificates.get('root-CA.1'), { ...r, rev: 1 });
    assert.equal(await store.caCertificates.get('root-ca.1'), undefined);
  });

  it('ca certificate: replace is compare-and-set on rev and writes every field', async (store) => {
    await store.caCertificates.insert(caCertificateRecord('ca'));
    const next = caCertificateRecord('ca', {
      pem: 'other pem', thumbprint: 'CD'.repeat(32), subject: 'CN=other', isVerified: true,
      verificationCode: 'ABC', verificationCodeIssuedMs: T0 + 5, etag: 'Mg==', createdMs: T0 + 1, updatedMs: T0 + 9,
    });
    assert.equal(await store.caCertificates.replace(next, 2), false, 'stale rev');
    assert.equal((await store.caCertificates.get('ca'))?.pem, caCertificateRecord('ca').pem);
    assert.equal(await store.caCertificates.replace(next, 1), true);
    assert.deepEqual(await store.caCertificates.get('ca'), { ...next, rev: 2 });
    const cleared = { ...next, verificationCode: null, verificationCodeIssuedMs: null, isVerified: false };
    assert.equal(await store.caCertificates.replace(cleared, 2), true);
    assert.deepEqual(await store.caCertificates.get('ca'), { ...cleared, rev: 3 });
    assert.equal(await store.caCertificates.replace(caCertificateRecord('absent'), 1), false);
    assert.equal(await store.caCertificates.get('absent'), undefined);
  });

  it('ca certificate: delete, unconditionally or only at the expected rev', async (store) => {
    await store.caCertificates.insert(caCertificateRecord('a'));
    await store.caCertificates.insert(caCertificateRecord('b'));
    assert.equal(await store.caCertificates.delete('a', 2), false);
    assert.ok(await store.caCertificates.get('a'));
    assert.equal(await store.caCertificates.delete('a', 1), true);
    assert.equal(await store.caCertificates.get('a'), undefined);
    assert.equal(await store.caCertificates.delete('a'), false);
    assert.equal(await store.caCertificates.delete('b'), true);
    assert.deepEqual(await store.caCertificates.list(), []);
  });

  it('ca certificate: list is in byte order of names; findBySubject matches the subject exactly', async (store) => {
    for (const name of ['b-ca', 'B-ca', 'a.ca', 'a-ca', '_ca']) {
      await store.caCertificates.insert(caCertificateRecord(name, { subject: name.startsWith('a') ? 'CN=shared' : `CN=${name}` }));
    }
    assert.deepEqual((await store.caCertificates.list()).map((r) => r.name), ['B-ca', '_ca', 'a-ca', 'a.ca', 'b-ca']);
    assert.deepEqual((await store.caCertificates.findBySubject('CN=shared')).map((r) => r.name), ['a-ca', 'a.ca']);
    assert.deepEqual((await store.caCertificates.findBySubject('CN=b-ca')).map((r) => r.name), ['b-ca']);
    assert.deepEqual(await store.caCertificates.findBySubject('cn=shared'), []);
    assert.deepEqual(await store.caCertificates.findBySubject('CN=shared\n'), []);
  });
}
