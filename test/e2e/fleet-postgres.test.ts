import { test } from 'node:test';
import { postgresHubSchema } from '../support/postgres-schema.js';
import { fleetSuite } from './fleet-suite.js';

// The same SDK suite as on SQLite, with the hub on PostgreSQL in a schema of its own.
const pgHub = await postgresHubSchema();
fleetSuite({ test, address: '127.0.0.19', skip: pgHub.skip, storeArgs: () => pgHub.storeArgs });
