import { test } from 'node:test';
import { fleetSuite } from './fleet-suite.js';

fleetSuite({ test, address: '127.0.0.18', storeArgs: () => [] });
