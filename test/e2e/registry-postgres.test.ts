import { test } from 'node:test';
import { postgresHubSchema } from '../support/postgres-schema.js';
import { registrySuite } from './registry-suite.js';

// The same SDK suite as on SQLite, with the hub on PostgreSQL in a schema of its own.
const pgHub = await postgresHubSchema();
registrySuite({ test, address: '127.0.0.3', skip: pgHub.skip, storeArgs: () => pgHub.storeArgs });
