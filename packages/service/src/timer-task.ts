/**
 * A timer's task that never overlaps itself and never rejects: a tick that finds the previous run still going is
 * skipped, and a failure (a store away) goes to `onError` so the next tick simply tries again.
 */
export function timerTask(run: () => Promise<unknown>, onError: (err: Error) => void): () => Promise<void> {
  let running = false;
  return async () => {
    if (running) return;
    running = true;
    try {
      await run();
    } catch (err) {
      onError(err as Error);
    } finally {
      running = false;
    }
  };
}
