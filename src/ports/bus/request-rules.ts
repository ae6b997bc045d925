/** Rules both adapters apply to request/serve, so they fail alike. */

/** Throws TypeError unless `timeoutMs` is a finite number of milliseconds above zero that a timer can hold. */
export function checkTimeoutMs(timeoutMs: number): void {
  // setTimeout fires at once for delays above 2^31 - 1 ms; refuse rather than time out early.
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs <= 0 || timeoutMs > 2 ** 31 - 1) {
    throw new TypeError(`bus request timeoutMs must be above 0 and at most ${2 ** 31 - 1}, got ${String(timeoutMs)}`);
  }
}

/** The message a requester sees when a serve handler threw `err`. */
export function thrownMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
