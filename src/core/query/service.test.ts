import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ArgumentInvalid } from '../errors/index.js';
import { indexPathText, parseIndexPath } from './service.js';

test('an index is declared on a twin path; telemetry paths, columns and whole documents are refused', () => {
  assert.deepEqual(parseIndexPath('tags.site'), { kind: 'document', document: 'tags', path: ['site'] });
  assert.equal(indexPathText('reported', ['fw']), 'properties.reported.fw');
  for (const text of ['telemetry.temp', 'telemetry.$metadata.temp', 'deviceId', 'tags']) {
    assert.throws(() => parseIndexPath(text), ArgumentInvalid, text);
  }
});
