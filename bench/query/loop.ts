import { performance } from 'node:perf_hooks';

/**
 * In-process latency: one caller asks `ask(next())` again and again, each answer checked after its latency is
 * taken (a wrong answer throws and fails the run). A warm-up runs first and is not counted; then every call that
 * finishes inside the window is recorded. The in-process twin of https-load's closed loop with one client.
 */
export async function sequentialLoop<K, T>(opts: {
  readonly seconds: number;
  readonly warmupSeconds: number;
  readonly next: () => K;
  readonly ask: (key: K) => T | Promise<T>;
  readonly check: (key: K, answer: T) => void;
}): Promise<Float64Array> {
  const window = async (seconds: number, record: (ms: number) => void) => {
    const deadline = performance.now() + seconds * 1000;
    while (performance.now() < deadline) {
      const key = opts.next();
      const t0 = performance.now();
      const pending = opts.ask(key);
      const answer = pending instanceof Promise ? await pending : pending; // a synchronous driver is timed without an await
      const t1 = performance.now();
      opts.check(key, answer);
      if (t1 <= deadline) record(t1 - t0);
    }
  };
  await window(opts.warmupSeconds, () => {});
  const latencies: number[] = [];
  await window(opts.seconds, (ms) => latencies.push(ms));
  if (latencies.length === 0) throw new Error('no call finished inside the window');
  return Float64Array.from(latencies).sort();
}

/** Runs `ask` once untimed (warm-up), then `times` times; the median time in ms, each answer checked. */
export async function medianOf<T>(times: number, ask: () => T | Promise<T>, check: (answer: T) => void): Promise<number> {
  check(await ask());
  const ms: number[] = [];
  for (let i = 0; i < times; i++) {
    const t0 = performance.now();
    const answer = await ask();
    ms.push(performance.now() - t0);
    check(answer);
  }
  ms.sort((a, b) => a - b);
  return ms[Math.floor(ms.length / 2)];
}
