/** Time as core sees it; tests inject a manual clock. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock that only moves when told to. */
export class ManualClock implements Clock {
  constructor(private ms = Date.UTC(2026, 0, 1)) {}
  now(): number { return this.ms; }
  advance(ms: number): void { this.ms += ms; }
}

/** IoT Hub's timestamp form: ISO 8601 with milliseconds, UTC `Z`. */
export function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}
