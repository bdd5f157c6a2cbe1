/**
 * What every bench receiver (a WHEP sink, or the direct WHIP receiver of the baseline) measures on each RTP packet:
 * sequence gaps (loss), one-way latency from the source's stamp, the arrival of each keyframe's last packet, and
 * the first complete keyframe (STAP-A with the SPS, then every IDR fragment, no gap) after it joined.
 * Counters and a fixed histogram only: no allocation per packet.
 */
import { parseRtpHeader, RtpInfo } from '@stagecast/rtc';
import { monoMs, readStamp } from './stamp.js';

/** Latency histogram: 10 µs bins up to 100 ms, 1 ms bins up to 10 s, then one overflow bin. */
export class Histogram {
  static readonly FINE = 10_000;
  static readonly BINS = Histogram.FINE + 9_900;
  readonly bins = new Uint32Array(Histogram.BINS + 1);
  count = 0;
  maxMs = 0;
  static binOf(ms: number): number {
    if (ms <= 0) return 0;
    if (ms < 100) return Math.floor(ms * 100);
    return Math.min(Histogram.BINS, Histogram.FINE + Math.floor(ms - 100));
  }
  /** Upper edge of a bin, ms. */
  static edgeOf(bin: number): number {
    return bin < Histogram.FINE ? (bin + 1) / 100 : 100 + (bin - Histogram.FINE + 1);
  }
  add(ms: number): void {
    this.bins[Histogram.binOf(ms)]!++;
    this.count++;
    if (ms > this.maxMs) this.maxMs = ms;
  }
  reset(): void {
    this.bins.fill(0);
    this.count = 0;
    this.maxMs = 0;
  }
  /** Non-empty bins as [bin, count] pairs (for IPC). */
  sparse(): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (let i = 0; i < this.bins.length; i++) if (this.bins[i]) out.push([i, this.bins[i]!]);
    return out;
  }
}

/** Merged sparse histograms → the p-th percentile in ms (upper edge of the bin). */
export function percentile(sparse: Array<[number, number]>, p: number): number {
  const sorted = [...sparse].sort((a, b) => a[0] - b[0]);
  const total = sorted.reduce((n, [, c]) => n + c, 0);
  if (total === 0) return NaN;
  const want = Math.ceil((p / 100) * total);
  let seen = 0;
  for (const [bin, c] of sorted) {
    seen += c;
    if (seen >= want) return Math.round(Histogram.edgeOf(bin) * 1000) / 1000;
  }
  return NaN;
}

export function mergeSparse(parts: Array<Array<[number, number]>>): Array<[number, number]> {
  const m = new Map<number, number>();
  for (const p of parts) for (const [b, c] of p) m.set(b, (m.get(b) ?? 0) + c);
  return [...m.entries()];
}

class SeqTracker {
  base = -1;
  highest = -1;
  last16 = -1;
  received = 0;
  /** Extended sequence number of a 16-bit one (wraps handled; reordering within ±32k). */
  ext(seq: number): number {
    if (this.last16 < 0) {
      this.last16 = seq;
      return seq;
    }
    let cycles = this.highest >= 0 ? this.highest - (this.highest & 0xffff) : 0;
    const d = seq - (this.highest & 0xffff);
    if (d < -0x8000) cycles += 0x10000;
    else if (d > 0x8000) cycles -= 0x10000;
    this.last16 = seq;
    return cycles + seq;
  }
  add(seq: number): void {
    const e = this.ext(seq);
    if (this.base < 0) this.base = e;
    if (e > this.highest) this.highest = e;
    this.received++;
  }
  get lost(): number {
    return this.base < 0 ? 0 : Math.max(0, this.highest - this.base + 1 - this.received);
  }
  reset(): void {
    this.base = -1;
    this.highest = -1;
    this.last16 = -1;
    this.received = 0;
  }
}

/** Shared by every receiver of one process: the latency histogram and per-keyframe last-arrival delays. */
export class WindowAggregate {
  readonly latency = new Histogram();
  /** Video frame index of a keyframe → [max delay of its last packet over receivers (ms), receivers that got it]. */
  readonly keyframes = new Map<number, [number, number]>();
  reset(): void {
    this.latency.reset();
    this.keyframes.clear();
  }
}

export class Receiver {
  readonly video = new SeqTracker();
  readonly audio = new SeqTracker();
  /** monoMs when the first complete keyframe had arrived (undefined until then). */
  firstKeyframeAt: number | undefined;
  /** Age of that keyframe when it arrived (now − its stamp): large for a keyframe-cache replay, ~1 ms for a live one. */
  firstKeyframeAgeMs: number | undefined;
  /** Counted into the shared aggregate (latency, keyframes) only once `measuring` (joined and caught up). */
  measuring = false;
  packets = 0;
  private readonly info = new RtpInfo();
  private readonly stamp = { index: 0, sentMs: 0 };
  private kfNextSeq = -1;

  constructor(private readonly agg: WindowAggregate) {}

  onRtp(kind: 'audio' | 'video', buf: Uint8Array): void {
    const info = parseRtpHeader(buf, buf.length, this.info);
    if (!info) return;
    this.packets++;
    const now = monoMs();
    const stamped = readStamp(buf, info.payloadOffset + 3, this.stamp);
    if (kind === 'audio') {
      this.audio.add(info.sequence);
      if (stamped && this.measuring) this.agg.latency.add(now - this.stamp.sentMs);
      return;
    }
    this.video.add(info.sequence);
    if (stamped && this.measuring) this.agg.latency.add(now - this.stamp.sentMs);
    const p = info.payloadOffset;
    const nalType = buf[p]! & 0x1f;
    if (nalType === 24) {
      // STAP-A: a keyframe starts here when its first NAL is an SPS.
      this.kfNextSeq = (buf[p + 3]! & 0x1f) === 7 ? (info.sequence + 1) & 0xffff : -1;
    } else if (nalType === 28 && (buf[p + 1]! & 0x1f) === 5) {
      const fu = buf[p + 1]!;
      const end = (fu & 0x40) !== 0;
      if (this.firstKeyframeAt === undefined) {
        if (this.kfNextSeq === info.sequence) {
          this.kfNextSeq = (info.sequence + 1) & 0xffff;
          if (end) {
            this.firstKeyframeAt = now;
            if (stamped) this.firstKeyframeAgeMs = now - this.stamp.sentMs;
          }
        } else this.kfNextSeq = -1;
      }
      if (end && stamped && this.measuring) {
        const delay = now - this.stamp.sentMs;
        const e = this.agg.keyframes.get(this.stamp.index);
        if (e) {
          if (delay > e[0]) e[0] = delay;
          e[1]++;
        } else this.agg.keyframes.set(this.stamp.index, [delay, 1]);
      }
    }
  }

  resetWindow(): void {
    this.video.reset();
    this.audio.reset();
  }
}
