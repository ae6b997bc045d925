/** The pipeline's figures for `/metrics`: log positions, consumer lag, endpoint health, fleet health, alerts, ingest. */

import type { EventLogSet } from '../../ports/eventlog/index.js';
import type { Store } from '../../ports/store/index.js';
import type { MetricFamily } from '../../observability/metrics.js';
import type { Pipeline } from './pipeline.js';

const HEALTH_STATES = ['unknown', 'healthy', 'degraded', 'unhealthy', 'dead'] as const;

export async function pipelineMetrics(deps: { log: EventLogSet; pipeline: Pipeline; store: Store; acceptedCount: () => number }): Promise<MetricFamily[]> {
  const { log, pipeline, store } = deps;
  const partitions = await log.partitions();
  const last = await Promise.all(partitions.map(async (p) => ({ labels: { partition: p }, value: await log.reader(p).lastSequence() })));
  const lags = await pipeline.lags();
  const health = await pipeline.health();
  const counts = await store.identities.counts();
  const fleet = await store.pipeline.healthCounts();
  const alerts = await store.pipeline.alertCounts();
  const endpoints = Object.entries(health.endpoints);
  return [
    { name: 'corral_telemetry_accepted_total', help: 'Device-to-cloud messages accepted (durable) by this node since it started.', type: 'counter', samples: [{ value: deps.acceptedCount() }] },
    { name: 'corral_eventlog_last_sequence', help: 'The last sequence number committed in each EventLog partition.', type: 'gauge', samples: last },
    { name: 'corral_consumer_lag_records', help: 'Records behind the end of the partition, per consumer this node runs (routes, state, rules).', type: 'gauge', samples: lags.map((l) => ({ labels: { consumer: l.consumer, partition: l.partition }, value: l.lag })) },
    { name: 'corral_endpoint_delivered_total', help: 'Messages an endpoint accepted from this node.', type: 'counter', samples: endpoints.map(([name, h]) => ({ labels: { endpoint: name }, value: h.delivered })) },
    { name: 'corral_endpoint_failed_attempts_total', help: 'Delivery attempts to an endpoint that failed (each is retried or dead-lettered).', type: 'counter', samples: endpoints.map(([name, h]) => ({ labels: { endpoint: name }, value: h.failedAttempts })) },
    { name: 'corral_endpoint_dead_lettered_total', help: 'Messages dead-lettered after an endpoint refused them or the retries ran out.', type: 'counter', samples: endpoints.map(([name, h]) => ({ labels: { endpoint: name }, value: h.deadLettered })) },
    { name: 'corral_endpoint_health', help: "1 for an endpoint's current health state on this node (IoT Hub's states), 0 for the others.", type: 'gauge', samples: endpoints.flatMap(([name, h]) => HEALTH_STATES.map((s) => ({ labels: { endpoint: name, status: s }, value: h.status === s ? 1 : 0 }))) },
    { name: 'corral_devices', help: 'Devices in the registry, by state.', type: 'gauge', samples: [
      { labels: { state: 'total' }, value: counts.total }, { labels: { state: 'enabled' }, value: counts.enabled },
      { labels: { state: 'disabled' }, value: counts.disabled }, { labels: { state: 'connected' }, value: counts.connected },
    ] },
    { name: 'corral_device_health', help: 'Devices by health: healthy once heard from, unhealthy after a missed heartbeat (until heard from again).', type: 'gauge', samples: [
      { labels: { health: 'healthy' }, value: fleet.healthy }, { labels: { health: 'unhealthy' }, value: fleet.unhealthy },
    ] },
    { name: 'corral_alerts_open', help: 'Open (raised or acknowledged) alerts, by severity.', type: 'gauge', samples: Object.entries(alerts.open).map(([severity, value]) => ({ labels: { severity }, value })) },
  ];
}
