/**
 * Receive-side loss detection for one incoming stream (RFC 4585 generic NACK): which sequence numbers are missing,
 * when to ask for them again, and when to give up. Works in the publisher's unwrapped sequence space (Ingress ext).
 *
 * - A packet is first asked for once it has been missing for the reorder window (jitter reorders packets: asking at
 *   once would fetch many that are merely late). The window follows how late reordered packets actually come — the
 *   ones that arrive out of order unasked, and, when RTX is used, originals that arrive after we asked — between
 *   `reorderMs` and `maxReorderMs`. Then it is asked for again every retry interval — the measured NACK→retransmission time
 *   plus a margin, clamped — at most `maxTries` times and never once it is older than `maxAgeMs`. Then it is lost
 *   for good: the owner marks its keyframe cache and asks for a keyframe.
 * - A gap that opens after a silence longer than `maxAgeMs` (a blackout), or wider than `maxMissing`, is not asked
 *   for at all: what it held is too old to be useful, and a keyframe is what repairs the picture.
 *
 * Nothing here runs per packet unless a packet is missing; no timers (the owner calls `collect` when `dueAt` passes).
 */

export interface NackGeneratorOptions {
  /** The reorder window's floor and ceiling (ms). */
  reorderMs?: number;
  maxReorderMs?: number;
  maxTries?: number;
  maxAgeMs?: number;
  maxMissing?: number;
  minRetryMs?: number;
  maxRetryMs?: number;
}

interface Missing {
  since: number;
  lastNackAt: number;
  tries: number;
}

export interface NackCounters {
  /** NACK entries sent (one per sequence number per try). */
  nacksSent: number;
  /** Packets that arrived after we had asked for them. */
  recovered: number;
  /** Packets that arrived late without being asked for (reordering). */
  reordered: number;
  /** Packets given up on: never arrived within the bounds. */
  lostForGood: number;
}

export class NackGenerator implements NackCounters {
  private readonly missing = new Map<number, Missing>();
  private readonly minReorderMs: number;
  private readonly maxReorderMs: number;
  /** How long out-of-order packets were late, a decaying maximum (ms). */
  reorderLateMs = 0;
  private readonly maxTries: number;
  private readonly maxAgeMs: number;
  private readonly maxMissing: number;
  private readonly minRetryMs: number;
  private readonly maxRetryMs: number;
  /** Smoothed NACK→retransmission time (ms): the retry interval follows it. */
  rttMs = 50;
  private lastArrival = NaN;
  /** Local time (ms) of the next `collect` that would send or give up something; Infinity when nothing is missing. */
  dueAt = Infinity;
  nacksSent = 0;
  recovered = 0;
  reordered = 0;
  lostForGood = 0;

  constructor(o: NackGeneratorOptions = {}) {
    this.minReorderMs = o.reorderMs ?? 10;
    this.maxReorderMs = o.maxReorderMs ?? 60;
    this.maxTries = o.maxTries ?? 10;
    this.maxAgeMs = o.maxAgeMs ?? 1000;
    this.maxMissing = o.maxMissing ?? 512;
    this.minRetryMs = o.minRetryMs ?? 20;
    this.maxRetryMs = o.maxRetryMs ?? 250;
  }

  get pending(): number {
    return this.missing.size;
  }

  /** A new stream (epoch): nothing of the old one is asked for any more, and nothing counts as lost. */
  reset(): void {
    this.missing.clear();
    this.dueAt = Infinity;
    this.lastArrival = NaN;
  }

  /** The current reorder window (ms). */
  get reorderMs(): number {
    const w = this.reorderLateMs * 1.25 + 2;
    return w < this.minReorderMs ? this.minReorderMs : w > this.maxReorderMs ? this.maxReorderMs : w;
  }

  private noteLate(ms: number): void {
    // Decays by a fiftieth per sample: one very late packet widens the window for a while, not for ever.
    this.reorderLateMs = ms > this.reorderLateMs ? ms : this.reorderLateMs - (this.reorderLateMs - ms) / 50;
  }

  /**
   * A packet numbered `ext` arrived; `highestBefore` is the highest ext seen before it (-1 = none). `kind`: 'rtx' for
   * a retransmission unwrapped from RTX, 'media' for the media SSRC when RTX is negotiated (so a packet we asked for
   * that comes this way is a late original), 'either' when RTX is not used (the media SSRC carries both). Returns the
   * number of packets given up on at once (a gap after a blackout, or too wide): the owner then asks for a keyframe.
   */
  onPacket(ext: number, highestBefore: number, now: number, giveUp: (ext: number) => void, kind: 'rtx' | 'media' | 'either' = 'either'): number {
    const silentFor = now - this.lastArrival;
    this.lastArrival = now;
    if (highestBefore < 0) return 0;
    if (ext <= highestBefore) {
      const m = this.missing.get(ext);
      if (m !== undefined) {
        this.missing.delete(ext);
        if (m.tries > 0 && kind !== 'media') {
          this.recovered++;
          const sample = now - m.lastNackAt;
          if (sample >= 0) this.rttMs += (sample - this.rttMs) / 8;
        } else {
          this.reordered++;
          this.noteLate(now - m.since);
        }
        if (this.missing.size === 0) this.dueAt = Infinity;
      }
      return 0;
    }
    const gap = ext - highestBefore - 1;
    if (gap <= 0) return 0;
    if (silentFor > this.maxAgeMs || gap > this.maxMissing) {
      for (let s = highestBefore + 1; s < ext; s++) giveUp(s);
      this.lostForGood += gap;
      return gap;
    }
    let dropped = 0;
    for (let s = highestBefore + 1; s < ext; s++) this.missing.set(s, { since: now, lastNackAt: -Infinity, tries: 0 });
    // Bounded: the oldest entries go first (Map keeps insertion order, which is ascending here).
    while (this.missing.size > this.maxMissing) {
      const oldest = this.missing.keys().next().value as number;
      this.missing.delete(oldest);
      giveUp(oldest);
      this.lostForGood++;
      dropped++;
    }
    const first = now + this.reorderMs;
    if (first < this.dueAt) this.dueAt = first;
    return dropped;
  }

  private retryMs(): number {
    const r = this.rttMs * 1.5 + 5;
    return r < this.minRetryMs ? this.minRetryMs : r > this.maxRetryMs ? this.maxRetryMs : r;
  }

  /**
   * The sequence numbers to ask for now (pushed into `out` as ext), giving up on the ones past their bounds.
   * Returns the number given up on.
   */
  collect(now: number, out: number[], giveUp: (ext: number) => void): number {
    if (now < this.dueAt) return 0;
    const retry = this.retryMs();
    const reorder = this.reorderMs;
    let given = 0;
    let next = Infinity;
    for (const [ext, m] of this.missing) {
      const at = m.tries === 0 ? m.since + reorder : m.lastNackAt + retry;
      // The last try still gets one retry interval to be answered.
      if (now - m.since > this.maxAgeMs || (m.tries >= this.maxTries && at <= now)) {
        this.missing.delete(ext);
        giveUp(ext);
        this.lostForGood++;
        given++;
        continue;
      }
      if (at <= now) {
        out.push(ext);
        m.tries++;
        m.lastNackAt = now;
        this.nacksSent++;
        const again = now + retry;
        if (again < next) next = again;
      } else if (at < next) next = at;
    }
    this.dueAt = this.missing.size === 0 ? Infinity : next;
    return given;
  }
}
