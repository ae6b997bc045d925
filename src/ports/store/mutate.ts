import type { IdentityKey, IdentityRecord, IdentityStore } from './index.js';

const MAX_ATTEMPTS = 20;

/** Thrown when a record kept changing under concurrent writers for every attempt. */
export class ContendedRecord extends Error {
  constructor(readonly key: IdentityKey) {
    super(`identity '${key.deviceId}${key.moduleId ? '/' + key.moduleId : ''}' kept changing under ${MAX_ATTEMPTS} concurrent writes`);
  }
}

/**
 * Read-modify-write of one identity under the store's optimistic concurrency: `change` gets the current record
 * (undefined when absent) and returns the record to write, or the very object it got for "nothing to write".
 * Re-read and retried when another writer got there first.
 */
export async function mutateIdentity(
  store: IdentityStore, key: IdentityKey, change: (current: IdentityRecord | undefined) => IdentityRecord | undefined,
): Promise<IdentityRecord | undefined> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const current = await store.get(key);
    const next = change(current);
    if (current === undefined || next === undefined || next === current) return next;
    if (await store.replace(next, current.rev)) return { ...next, rev: current.rev + 1 };
  }
  throw new ContendedRecord(key);
}
