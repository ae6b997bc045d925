import { randomBytes } from 'node:crypto';
import { after } from 'node:test';
import { connect } from 'nats';
import { postgresHubSchema } from '../support/postgres-schema.js';
import { requireNats, skipReason } from '../support/services.js';
import { pipelineSuite } from './pipeline-suite.js';

// The scale-out engines: PostgreSQL store, NATS bus, the EventLog on JetStream (its own stream prefix, removed after).
const pg = await postgresHubSchema();
const natsUrl = await requireNats();
const prefix = `E2E_${randomBytes(4).toString('hex').toUpperCase()}`;
after(async () => {
  if (!natsUrl) return;
  const nc = await connect({ servers: natsUrl });
  const jsm = await nc.jetstreamManager();
  for await (const name of jsm.streams.names()) if (name.startsWith(`${prefix}_`)) await jsm.streams.delete(name);
  await nc.close();
});

pipelineSuite({
  address: '127.0.0.25', webhookAddress: '127.0.0.26', skip: pg.skip ?? skipReason('NATS'),
  args: () => [...pg.storeArgs, '--bus', 'nats', '--nats-url', natsUrl ?? '', '--eventlog', 'jetstream', '--eventlog-stream-prefix', prefix, '--node-id', 'e2e-node-1'],
});
