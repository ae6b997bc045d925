import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { storeContract } from '../contract.js';
import { queryContract } from '../contract-query.js';
import { SqliteStore } from './index.js';

storeContract({
  test,
  make: async () => {
    const store = SqliteStore.open(':memory:');
    await store.migrate();
    return store;
  },
});

queryContract({
  test,
  make: async () => {
    // A file rather than ':memory:', so a second connection can write the devices.jobs rows no port writes yet.
    const dir = mkdtempSync(join(tmpdir(), 'corral-query-'));
    const file = join(dir, 'store.db');
    const store = SqliteStore.open(file);
    await store.migrate();
    const db = new Database(file);
    return {
      store,
      exec: async (sql) => { db.exec(sql); },
      close: async () => {
        db.close();
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
});
