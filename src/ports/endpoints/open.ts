import type { Endpoint, EndpointSpec } from './index.js';
import { NatsEndpoint } from './nats.js';
import { PostgresEndpoint } from './postgres.js';
import { WebhookEndpoint } from './webhook.js';

/**
 * The adapter for `spec`, named `name` in its errors. Nothing is connected yet: each opens its connection at its first
 * delivery, so a far side that is down gives retryable failures, not a failed start. Throws InvalidEndpointSpec for a
 * spec an adapter refuses outright (a plain http webhook, a table name that is not an identifier).
 */
export function openEndpoint(name: string, spec: EndpointSpec): Endpoint {
  switch (spec.type) {
    case 'webhook': return new WebhookEndpoint(name, spec);
    case 'nats': return new NatsEndpoint(name, spec);
    case 'postgres': return new PostgresEndpoint(name, spec);
    default: {
      const never: never = spec;
      throw new TypeError(`unknown endpoint type in ${JSON.stringify(never)}`);
    }
  }
}
