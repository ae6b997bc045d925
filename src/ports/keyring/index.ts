import { createCipheriv, createDecipheriv, randomBytes, randomFillSync } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** Encrypts secrets (device and policy keys) at rest. Ciphertexts are self-describing: `v1:` + base64(iv|tag|data). */
export interface KeyRing {
  /** Encrypts a secret; the result is safe to store. */
  seal(plain: string): string;
  /** Decrypts what seal produced; throws if it was tampered with or sealed under another master key. */
  open(sealed: string): string;
  /** A fresh random 256-bit key in base64 (IoT Hub's symmetric key size), in the clear. */
  newKey(): string;
}

const POOL_BYTES = 64 * 1024;
let pool = Buffer.alloc(0);
let poolOffset = 0;

/**
 * CSPRNG bytes handed out from a 64 KiB buffer filled at once: a registry import makes four random values per
 * device, and one fill per ~1,000 devices costs far less than a call each. No byte is handed out twice.
 */
function randomSlice(n: number): Buffer {
  if (poolOffset + n > pool.length) {
    pool = randomFillSync(Buffer.allocUnsafe(POOL_BYTES));
    poolOffset = 0;
  }
  const out = pool.subarray(poolOffset, poolOffset + n);
  poolOffset += n;
  return out;
}

const PREFIX = 'v1:';

/** AES-256-GCM under one 32-byte master key. */
export class AesGcmKeyRing implements KeyRing {
  constructor(private readonly masterKey: Buffer) {
    if (masterKey.length !== 32) throw new Error(`master key must be 32 bytes, got ${masterKey.length}`);
  }

  seal(plain: string): string {
    const iv = randomSlice(12);
    const cipher = createCipheriv('aes-256-gcm', this.masterKey, iv);
    const data = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return PREFIX + Buffer.concat([iv, cipher.getAuthTag(), data]).toString('base64');
  }

  newKey(): string {
    return randomSlice(32).toString('base64');
  }

  open(sealed: string): string {
    if (!sealed.startsWith(PREFIX)) throw new Error('sealed secret has an unknown format');
    const raw = Buffer.from(sealed.slice(PREFIX.length), 'base64');
    // The full 16-byte tag, always: Node otherwise accepts truncated GCM tags.
    const decipher = createDecipheriv('aes-256-gcm', this.masterKey, raw.subarray(0, 12), { authTagLength: 16 });
    decipher.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
  }
}

/**
 * The master key: given as base64 (CORRAL_MASTER_KEY, the way a cluster shares one), or read from `file`,
 * or created there (mode 0600) on first start.
 */
export function loadMasterKey(opts: { base64?: string; file: string }): Buffer {
  if (opts.base64) {
    const key = Buffer.from(opts.base64, 'base64');
    if (key.length !== 32) throw new Error(`CORRAL_MASTER_KEY must be 32 bytes in base64, got ${key.length} bytes`);
    return key;
  }
  if (existsSync(opts.file)) {
    const key = Buffer.from(readFileSync(opts.file, 'utf8').trim(), 'base64');
    if (key.length !== 32) throw new Error(`master key file ${opts.file} must hold 32 bytes in base64`);
    return key;
  }
  mkdirSync(dirname(opts.file), { recursive: true, mode: 0o700 });
  const key = randomBytes(32);
  writeFileSync(opts.file, key.toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
  return key;
}
