import assert from 'node:assert/strict';
import { ArgumentInvalid } from '../../src/core/errors/index.js';

/** `fn` throws ArgumentInvalid (400004) whose message matches every pattern. */
export function assertArgumentInvalid(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ArgumentInvalid, `expected ArgumentInvalid, got ${String(err)}`);
    assert.equal(err.code, 400004);
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
}
