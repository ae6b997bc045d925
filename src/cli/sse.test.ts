import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SseParser, type SseFrame } from './sse.js';

function parseAll(chunks: readonly string[]): SseFrame[] {
  const p = new SseParser();
  return chunks.flatMap((c) => p.push(c));
}

const STREAM = ': corral events\n\nid: t1\nevent: events\ndata: {"a":\ndata: 1}\n\n: keep-alive\n\ndata: plain\n\nevent: error\ndata: {"message":"boom"}\n\n';

test('frames carry their event name, multi-line data joined with LF, and the last id; comments are skipped', () => {
  assert.deepEqual(parseAll([STREAM]), [
    { event: 'events', data: '{"a":\n1}', id: 't1' },
    { event: 'message', data: 'plain', id: 't1' },
    { event: 'error', data: '{"message":"boom"}', id: 't1' },
  ]);
});

test('any split of the stream gives the same frames', () => {
  const whole = parseAll([STREAM]);
  for (let i = 0; i <= STREAM.length; i++) assert.deepEqual(parseAll([STREAM.slice(0, i), STREAM.slice(i)]), whole, `split at ${i}`);
  assert.deepEqual(parseAll([...STREAM]), whole, 'one character at a time');
});

test('CRLF and CR end lines too, also when a CRLF is split between chunks', () => {
  const crlf = STREAM.replaceAll('\n', '\r\n');
  const cr = STREAM.replaceAll('\n', '\r');
  const whole = parseAll([STREAM]);
  assert.deepEqual(parseAll([crlf]), whole);
  assert.deepEqual(parseAll([cr]), whole);
  for (let i = 0; i <= crlf.length; i++) assert.deepEqual(parseAll([crlf.slice(0, i), crlf.slice(i)]), whole, `CRLF split at ${i}`);
});

test('a frame without data is dropped, a field without a colon is a name with an empty value, one leading space is removed', () => {
  assert.deepEqual(parseAll(['event: nothing\n\ndata\n\ndata:  two spaces\n\n']), [
    { event: 'message', data: '', id: '' },
    { event: 'message', data: ' two spaces', id: '' },
  ]);
});

test('an unfinished frame is not dispatched', () => {
  assert.deepEqual(parseAll(['event: events\ndata: {}\n']), []);
});
