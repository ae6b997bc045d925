import type { FastifyInstance } from 'fastify';
import { renderMetrics, type MetricFamily } from '../../observability/metrics.js';

/**
 * `GET /metrics` in Prometheus' text format. It needs a SAS token like every route (ServiceConnect or RegistryRead):
 * give Prometheus a long-lived one as its bearer credentials (`authorization: {type: SharedAccessSignature, …}`).
 */
export function registerMetricsRoute(app: FastifyInstance, deps: { collect: () => Promise<MetricFamily[]> }): void {
  app.get('/metrics', { config: { rights: ['ServiceConnect', 'RegistryRead'] } }, async (_req, reply) => {
    const text = renderMetrics(await deps.collect());
    return reply.type('text/plain; version=0.0.4; charset=utf-8').send(text);
  });
}
