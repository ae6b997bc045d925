import { pipelineSuite } from './pipeline-suite.js';

// The embedded default: SQLite store, SQLite EventLog, one node.
pipelineSuite({ address: '127.0.0.23', webhookAddress: '127.0.0.24', args: () => [] });
