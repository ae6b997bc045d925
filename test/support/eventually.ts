/**
 * Retries `check` until it passes or `timeoutMs` runs out, for conditions the test can only observe by asking
 * (a registry field written by the hub); the last failure is rethrown.
 */
export async function eventually(check: () => Promise<void>, timeoutMs = 5000, everyMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (err) {
      if (Date.now() >= deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
  }
}
