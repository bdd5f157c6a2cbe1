/**
 * The recent join rate, for predictive spares: joins counted in 100 ms buckets over a sliding window. The rate is
 * the count over the span the joins actually cover (at least `minSpanMs`), so the first tenth of a second of a
 * storm already reads as a storm instead of as a trickle averaged over the whole window.
 */
export class JoinRate {
  private readonly buckets: Float64Array;
  private readonly counts: Uint32Array;
  private readonly bucketMs = 100;

  constructor(
    private readonly windowMs = 2000,
    private readonly minSpanMs = 250,
  ) {
    const n = Math.ceil(windowMs / this.bucketMs);
    this.buckets = new Float64Array(n).fill(-1);
    this.counts = new Uint32Array(n);
  }

  note(now: number): void {
    const slot = Math.floor(now / this.bucketMs);
    const i = slot % this.buckets.length;
    if (this.buckets[i] !== slot) {
      this.buckets[i] = slot;
      this.counts[i] = 0;
    }
    this.counts[i]!++;
  }

  /** Joins per second over the last window (0 when none). */
  perSecond(now: number): number {
    const slot = Math.floor(now / this.bucketMs);
    const oldest = slot - this.buckets.length + 1;
    let n = 0;
    let first = slot + 1;
    for (let i = 0; i < this.buckets.length; i++) {
      const b = this.buckets[i]!;
      if (b < oldest || b > slot || this.counts[i] === 0) continue;
      n += this.counts[i]!;
      first = Math.min(first, b);
    }
    if (n === 0) return 0;
    const spanMs = Math.max(this.minSpanMs, now - first * this.bucketMs);
    return (n * 1000) / spanMs;
  }
}

/**
 * The pool's seat growth per second, from the planner's own readings of the pool: with several API Servers only one
 * plans (the lease holder) and it sees only its own joins, but every server's seats. Readings older than the window
 * are dropped; fewer than `minSpanMs` of readings give 0 (too short to tell a storm from a burst).
 */
export class SeatGrowth {
  private readonly samples: Array<{ at: number; seats: number }> = [];

  constructor(
    private readonly windowMs = 1000,
    private readonly minSpanMs = 200,
  ) {}

  /** Records a reading and returns the growth (seats/s, ≥ 0) over the window. */
  note(at: number, seats: number): number {
    this.samples.push({ at, seats });
    while (this.samples.length > 1 && at - this.samples[0]!.at > this.windowMs) this.samples.shift();
    const first = this.samples[0]!;
    const span = at - first.at;
    if (span < this.minSpanMs) return 0;
    return Math.max(0, ((seats - first.seats) * 1000) / span);
  }
}
