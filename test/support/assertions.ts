import assert from 'node:assert/strict';
import { ArgumentInvalid, CorralError } from '../../src/core/errors/index.js';

/** `fn` throws ArgumentInvalid (400004) whose message matches every pattern. */
export function assertArgumentInvalid(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ArgumentInvalid, `expected ArgumentInvalid, got ${String(err)}`);
    assert.equal(err.code, 400004);
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
}

/** `promise` rejects with a CorralError of `code` whose message matches `pattern`, if given. */
export async function rejectsWith(promise: Promise<unknown>, code: number, pattern?: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof CorralError, `expected a CorralError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (pattern) assert.match(err.message, pattern);
    return true;
  });
}
