/** Jittered exponential backoff, as a pure function (tested with a fixed random source). */
export interface BackoffOptions {
  baseMs: number;
  capMs: number;
  /** 0..1; defaults to Math.random. */
  random?: () => number;
}

/**
 * Delay before retry number `attempt` (0 = the first retry): "equal jitter" — half of the exponential
 * step is fixed, half random, so many clients that lost the same server do not come back in lockstep
 * and none retries sooner than half its step.
 */
export function backoffDelay(attempt: number, o: BackoffOptions): number {
  const step = Math.min(o.capMs, o.baseMs * 2 ** Math.min(Math.max(0, attempt), 30));
  const r = (o.random ?? Math.random)();
  return Math.round(step / 2 + (step / 2) * r);
}
