import { test } from 'node:test';
import { storeContract } from '../contract.js';
import { SqliteStore } from './index.js';

storeContract({
  test,
  make: async () => {
    const store = SqliteStore.open(':memory:');
    await store.migrate();
    return store;
  },
});
