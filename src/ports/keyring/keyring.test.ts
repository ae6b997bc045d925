import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AesGcmKeyRing, loadMasterKey } from './index.js';

const SECRET = 'c2VjcmV0LWRldmljZS1rZXktMzItYnl0ZXMtbG9uZyE=';

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'corral-keyring-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The sealed value with one byte of its payload flipped. */
function flipByte(sealed: string, index: number): string {
  const raw = Buffer.from(sealed.slice(3), 'base64');
  raw[index] ^= 0x01;
  return 'v1:' + raw.toString('base64');
}

test('open returns what seal sealed', () => {
  const ring = new AesGcmKeyRing(randomBytes(32));
  for (const plain of [SECRET, '', 'ünïcødé ✓', 'x'.repeat(10_000)]) assert.equal(ring.open(ring.seal(plain)), plain);
});

test('sealing the same secret twice gives different ciphertexts, neither containing the secret', () => {
  const ring = new AesGcmKeyRing(randomBytes(32));
  const a = ring.seal(SECRET);
  const b = ring.seal(SECRET);
  assert.notEqual(a, b);
  for (const sealed of [a, b]) {
    assert.ok(sealed.startsWith('v1:'));
    assert.equal(sealed.includes(SECRET), false);
    assert.equal(Buffer.from(sealed.slice(3), 'base64').includes(Buffer.from(SECRET)), false);
  }
});

test('a tampered ciphertext, tag or iv does not open', () => {
  const ring = new AesGcmKeyRing(randomBytes(32));
  const sealed = ring.seal(SECRET);
  for (const index of [0, 12, 28, 40]) assert.throws(() => ring.open(flipByte(sealed, index)), `byte ${index}`);
});

test('a sealed value with a truncated auth tag does not open', () => {
  // GCM accepts tags of 4..16 bytes unless told their length; ours are always 16.
  const ring = new AesGcmKeyRing(randomBytes(32));
  const raw = Buffer.from(ring.seal('').slice(3), 'base64');
  assert.throws(() => ring.open('v1:' + raw.subarray(0, 16).toString('base64')));
});

test('a value sealed under another master key does not open', () => {
  const sealed = new AesGcmKeyRing(randomBytes(32)).seal(SECRET);
  assert.throws(() => new AesGcmKeyRing(randomBytes(32)).open(sealed));
});

test('a value without the v1: prefix does not open', () => {
  const ring = new AesGcmKeyRing(randomBytes(32));
  assert.throws(() => ring.open(ring.seal(SECRET).slice(3)), /unknown format/);
});

test('a master key that is not 32 bytes is refused', () => {
  assert.throws(() => new AesGcmKeyRing(randomBytes(16)), /32 bytes/);
});

test('loadMasterKey creates a 0600 key file on first call and returns the same key on the second', (t) => {
  const file = join(tempDir(t), 'nested', 'master.key');
  const first = loadMasterKey({ file });
  assert.equal(first.length, 32);
  if (process.platform !== 'win32') assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.equal(Buffer.from(readFileSync(file, 'utf8').trim(), 'base64').equals(first), true);
  const second = loadMasterKey({ file });
  assert.equal(second.equals(first), true);
  const sealed = new AesGcmKeyRing(first).seal(SECRET);
  assert.equal(new AesGcmKeyRing(second).open(sealed), SECRET);
});

test('loadMasterKey prefers CORRAL_MASTER_KEY and does not touch the file', (t) => {
  const file = join(tempDir(t), 'master.key');
  const given = randomBytes(32);
  assert.equal(loadMasterKey({ base64: given.toString('base64'), file }).equals(given), true);
  assert.throws(() => statSync(file), /ENOENT/);
});

test('loadMasterKey rejects a CORRAL_MASTER_KEY that is not 32 bytes, naming the variable', (t) => {
  const file = join(tempDir(t), 'master.key');
  for (const bytes of [16, 31, 33, 64]) {
    assert.throws(() => loadMasterKey({ base64: randomBytes(bytes).toString('base64'), file }), (err: unknown) => {
      assert.ok(err instanceof Error);
      assert.match(err.message, /CORRAL_MASTER_KEY/);
      assert.match(err.message, new RegExp(`got ${bytes} bytes`));
      return true;
    });
  }
});

test('loadMasterKey rejects a key file that does not hold 32 bytes', (t) => {
  const file = join(tempDir(t), 'master.key');
  writeFileSync(file, randomBytes(8).toString('base64'));
  assert.throws(() => loadMasterKey({ file }), /must hold 32 bytes/);
});
