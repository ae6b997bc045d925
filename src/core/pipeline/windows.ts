/**
 * Windowed aggregates of one window rule, per identity, in memory: avg, min, max or count of a number from each
 * telemetry record, over tumbling windows (fixed, epoch-aligned, judged once each when it ends) or a sliding window
 * (the last N seconds, judged on every record). Time is the records' enqueued time (event time), never the wall
 * clock. The state is lost on restart: windows start over from the next record.
 */

import { identityKeyText, type IdentityKey } from '../../ports/store/index.js';

export type WindowAggregate = 'avg' | 'min' | 'max' | 'count';
export type WindowKind = 'tumbling' | 'sliding';
export type Comparison = '>' | '>=' | '<' | '<=' | '=' | '!=';

export const WINDOW_AGGREGATES: readonly WindowAggregate[] = ['avg', 'min', 'max', 'count'];
export const WINDOW_KINDS: readonly WindowKind[] = ['tumbling', 'sliding'];
export const COMPARISONS: readonly Comparison[] = ['>', '>=', '<', '<=', '=', '!='];

/**
 * A sliding window keeps at most this many samples per identity (the newest): a device sending faster than
 * 10,000 records per window is judged on its newest 10,000, which bounds memory at ~160 KB per device and rule.
 */
export const MAX_SLIDING_SAMPLES = 10_000;

export interface WindowSpec {
  readonly kind: WindowKind;
  readonly seconds: number;
  readonly aggregate: WindowAggregate;
}

/** One judged window: the aggregate's value over the samples enqueued in [startMs, endMs) (sliding: (startMs, endMs]). */
export interface WindowResult {
  readonly value: number;
  readonly samples: number;
  readonly startMs: number;
  readonly endMs: number;
}

export function compareNumber(value: number, op: Comparison, threshold: number): boolean {
  switch (op) {
    case '>': return value > threshold;
    case '>=': return value >= threshold;
    case '<': return value < threshold;
    case '<=': return value <= threshold;
    case '=': return value === threshold;
    case '!=': return value !== threshold;
  }
}

interface TumblingState {
  readonly kind: 'tumbling';
  readonly key: IdentityKey;
  partition: string;
  startMs: number;
  count: number;
  sum: number;
  min: number;
  max: number;
}

/** Samples in time order from `head` on; compacted once the dead prefix is the larger half. */
interface SlidingState {
  readonly kind: 'sliding';
  readonly key: IdentityKey;
  partition: string;
  times: number[];
  values: number[];
  head: number;
  sum: number;
  min: number;
  max: number;
}

type SeriesState = TumblingState | SlidingState;

export class WindowTracker {
  private readonly states = new Map<string, SeriesState>();
  private readonly widthMs: number;
  /** Records that came after their tumbling window had been judged (out of order by more than the grace). */
  lateSamples = 0;

  constructor(private readonly spec: WindowSpec, private readonly maxSamples = MAX_SLIDING_SAMPLES) {
    this.widthMs = spec.seconds * 1000;
  }

  /** Identities with a window in progress. */
  get size(): number {
    return this.states.size;
  }

  /** Adds a sample; returns the windows it lets be judged, oldest first (for sliding: the window ending at it). */
  add(key: IdentityKey, partition: string, timeMs: number, value: number): WindowResult[] {
    const text = identityKeyText(key);
    const s = this.states.get(text);
    if (this.spec.kind === 'sliding') {
      const state = s?.kind === 'sliding' ? s : this.newSliding(text, key, partition);
      state.partition = partition;
      return [this.slide(state, timeMs, value)];
    }
    const startMs = Math.floor(timeMs / this.widthMs) * this.widthMs;
    const out: WindowResult[] = [];
    let state = s?.kind === 'tumbling' ? s : undefined;
    if (state && startMs < state.startMs) {
      this.lateSamples++;
      return out;
    }
    if (state && startMs > state.startMs) {
      this.pushResult(out, this.tumblingResult(state));
      const gapStartMs = state.startMs + this.widthMs;
      // Whole windows without a record between: a count of 0, judged once (every one of them is judged alike).
      if (this.spec.aggregate === 'count' && state.count > 0 && startMs > gapStartMs) out.push({ value: 0, samples: 0, startMs: gapStartMs, endMs: startMs });
      state = undefined;
    }
    state ??= this.newTumbling(text, key, partition, startMs);
    state.partition = partition;
    state.count++;
    state.sum += value;
    state.min = Math.min(state.min, value);
    state.max = Math.max(state.max, value);
    return out;
  }

  /**
   * Judges the windows that have ended, as `ended(partition, endMs)` decides, and forgets identities that went quiet.
   * A tumbling window is judged once; after a counted window comes one empty window (count 0) before the identity is
   * forgotten. A sliding window that emptied is judged once for count (0); avg, min and max have no value then.
   */
  sweep(ended: (partition: string, endMs: number) => boolean): { key: IdentityKey; result: WindowResult }[] {
    const out: { key: IdentityKey; result: WindowResult }[] = [];
    for (const [text, s] of this.states) {
      if (s.kind === 'sliding') {
        const newestMs = s.times[s.times.length - 1];
        if (!ended(s.partition, newestMs + this.widthMs)) continue;
        if (this.spec.aggregate === 'count') out.push({ key: s.key, result: { value: 0, samples: 0, startMs: newestMs, endMs: newestMs + this.widthMs } });
        this.states.delete(text);
        continue;
      }
      const endMs = s.startMs + this.widthMs;
      if (!ended(s.partition, endMs)) continue;
      const result = this.tumblingResult(s);
      if (result) out.push({ key: s.key, result });
      if (this.spec.aggregate === 'count' && s.count > 0) Object.assign(s, { startMs: endMs, count: 0, sum: 0, min: Infinity, max: -Infinity });
      else this.states.delete(text);
    }
    return out;
  }

  forget(key: IdentityKey): void {
    this.states.delete(identityKeyText(key));
  }

  /** Drops the windows fed from a partition (another node reads it now: judging them here would judge half a window). */
  forgetPartition(partition: string): void {
    for (const [text, s] of this.states) if (s.partition === partition) this.states.delete(text);
  }

  private pushResult(out: WindowResult[], r: WindowResult | undefined): void {
    if (r) out.push(r);
  }

  private tumblingResult(s: TumblingState): WindowResult | undefined {
    if (s.count === 0 && this.spec.aggregate !== 'count') return undefined;
    return { value: this.valueOf(s.count, s.sum, s.min, s.max), samples: s.count, startMs: s.startMs, endMs: s.startMs + this.widthMs };
  }

  private valueOf(count: number, sum: number, min: number, max: number): number {
    switch (this.spec.aggregate) {
      case 'avg': return sum / count;
      case 'min': return min;
      case 'max': return max;
      case 'count': return count;
    }
  }

  private newTumbling(text: string, key: IdentityKey, partition: string, startMs: number): TumblingState {
    const s: TumblingState = { kind: 'tumbling', key: { ...key }, partition, startMs, count: 0, sum: 0, min: Infinity, max: -Infinity };
    this.states.set(text, s);
    return s;
  }

  private newSliding(text: string, key: IdentityKey, partition: string): SlidingState {
    const s: SlidingState = { kind: 'sliding', key: { ...key }, partition, times: [], values: [], head: 0, sum: 0, min: Infinity, max: -Infinity };
    this.states.set(text, s);
    return s;
  }

  /** Adds at `timeMs` (never before the newest: a device's records come in order), drops what left (t - W, t]. */
  private slide(s: SlidingState, timeMs: number, value: number): WindowResult {
    const t = s.times.length > s.head ? Math.max(timeMs, s.times[s.times.length - 1]) : timeMs;
    s.times.push(t);
    s.values.push(value);
    s.sum += value;
    s.min = Math.min(s.min, value);
    s.max = Math.max(s.max, value);
    let rescan = false;
    while (s.head < s.times.length && (s.times[s.head] <= t - this.widthMs || s.times.length - s.head > this.maxSamples)) {
      const gone = s.values[s.head++];
      s.sum -= gone;
      if (gone === s.min || gone === s.max) rescan = true;
    }
    if (s.head > 1024 && s.head * 2 > s.times.length) {
      s.times = s.times.slice(s.head);
      s.values = s.values.slice(s.head);
      s.head = 0;
      rescan = true;
    }
    // A rescan also recomputes the sum, so the running sum's rounding never drifts far.
    if (rescan) this.rescan(s);
    const samples = s.times.length - s.head;
    return { value: this.valueOf(samples, s.sum, s.min, s.max), samples, startMs: t - this.widthMs, endMs: t };
  }

  private rescan(s: SlidingState): void {
    let sum = 0;
    let min = Infinity;
    let max = -Infinity;
    for (let i = s.head; i < s.values.length; i++) {
      const v = s.values[i];
      sum += v;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    Object.assign(s, { sum, min, max });
  }
}
