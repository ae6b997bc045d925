import { describe, test } from 'node:test';
import { busContract } from '../contract.js';
import { InProcessBus } from './index.js';

describe('two in-process nodes on one fabric', () => {
  busContract({ test, make: async () => new InProcessBus(), makePeer: async (first) => new InProcessBus(first.fabric) });
});

describe('one in-process node', () => {
  busContract({ test, make: async () => new InProcessBus() });
});
