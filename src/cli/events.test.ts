import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { CliError } from './client.js';
import { follow } from './events.js';

test("an error frame ends a tail with the hub's message", async () => {
  const stream = new PassThrough();
  const done = follow(stream, 'json', () => '');
  stream.write(': corral events\n\n: keep-alive\n\nevent: err');
  stream.write('or\ndata: {"message":"the store is gone"}\n\n');
  await assert.rejects(done, (err: Error) => err instanceof CliError && err.message === 'the hub ended the stream: the store is gone');
  assert.equal(stream.destroyed, true);
  assert.equal(process.listenerCount('SIGINT'), 0, 'the Ctrl-C handler is removed');
});

test('a stream the hub closes ends the tail with where to go on from', async () => {
  const stream = new PassThrough();
  const done = follow(stream, 'json', (lastId) => `; go on with --position ${lastId}`);
  stream.end('id: tok-1\nevent: events\ndata: {"events":[]}\n\n');
  await assert.rejects(done, /the hub closed the stream; go on with --position tok-1/);
});

test('SIGINT ends a tail without an error', async () => {
  const stream = new PassThrough();
  const done = follow(stream, 'json', () => '');
  process.emit('SIGINT');
  await done;
  assert.equal(stream.destroyed, true);
});
