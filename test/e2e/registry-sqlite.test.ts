import { test } from 'node:test';
import { registrySuite } from './registry-suite.js';

registrySuite({ test, address: '127.0.0.2', storeArgs: () => [] });
