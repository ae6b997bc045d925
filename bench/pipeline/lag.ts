import { performance } from 'node:perf_hooks';
import type { ServiceApi } from '../support/service-api.js';
import type { TelemetryWindow } from './load.js';

/**
 * Samples the hub's `GET /metrics` every `everyMs` (or as soon as the previous answer is in, when the hub is slower
 * than that): `corral_consumer_lag_records{consumer,partition}`, summed over partitions per consumer.
 */

export interface LagSample {
  readonly at: number;
  readonly byConsumer: ReadonlyMap<string, number>;
}

const LAG_LINE = /^corral_consumer_lag_records\{([^}]*)\} (\S+)$/;
const CONSUMER_LABEL = /(?:^|,)consumer="((?:[^"\\]|\\.)*)"/;

export function parseMetrics(text: string, at: number): LagSample {
  const byConsumer = new Map<string, number>();
  for (const line of text.split('\n')) {
    const lag = LAG_LINE.exec(line);
    if (!lag) continue;
    const consumer = CONSUMER_LABEL.exec(lag[1])?.[1] ?? '?';
    byConsumer.set(consumer, (byConsumer.get(consumer) ?? 0) + Number(lag[2]));
  }
  return { at, byConsumer };
}

export interface LagSampler {
  readonly samples: LagSample[];
  /** Stops sampling once the request in flight (if any) has answered. */
  stop(): Promise<void>;
}

export function sampleLag(api: ServiceApi, everyMs: number): LagSampler {
  const samples: LagSample[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const started = performance.now();
      const res = await api.json('GET', '/metrics');
      samples.push(parseMetrics(res.text, performance.now()));
      const wait = everyMs - (performance.now() - started);
      if (wait > 0 && !stopped) await new Promise((resolve) => setTimeout(resolve, wait));
    }
  })();
  return { samples, stop: async () => { stopped = true; await loop; } };
}

/** One consumer's lag in the samples taken inside the window, ascending. */
export function lagsInWindow(samples: readonly LagSample[], consumer: string, w: TelemetryWindow): Float64Array {
  return Float64Array.from(samples.filter((s) => s.at >= w.countFrom && s.at <= w.stopAt).map((s) => s.byConsumer.get(consumer) ?? Number.NaN)
    .filter((v) => !Number.isNaN(v))).sort();
}
