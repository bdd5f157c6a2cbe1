/**
 * Receive side of one kind (audio or video) from the publisher: SSRC learning, sequence/timestamp
 * unwrapping, the mapping into the router's own continuous sequence/timestamp space (which is what
 * keeps every sink continuous when the publisher reconnects), and RFC 3550 receiver statistics.
 */
import type { RtpInfo } from '../codec/rtp.js';
import type { ReportBlock } from '../codec/rtcp.js';
import type { StreamParams } from './types.js';

/** A sequence jump larger than this is a restart (new epoch) once confirmed by a following packet. */
const MAX_SEQ_JUMP = 1000;
const ROUTER_SEQ_BASE = 0x10000;
const ROUTER_TS_BASE = 0x100000000;
/** Compacted padding further than this below the highest packet is only counted (media that old is refused). */
const PAD_WINDOW = 4 * MAX_SEQ_JUMP;

export class Ingress {
  readonly kind: 'audio' | 'video';
  params: StreamParams | undefined;
  clockRate = 90000;
  /** SSRC of the current epoch, -1 before the first packet. */
  ssrc = -1;
  // Source numbering, unwrapped (ext = 0x10000 + seq at the start of the epoch).
  private baseExt = 0;
  highestExt = 0;
  private highestTsRaw = 0;
  private highestTsExt = 0;
  private probationSeq = -1;
  /**
   * Padding-only packets compacted out of the router's numbering (source ext, ascending, within PAD_WINDOW of the
   * highest), so sinks see no gap where the publisher padded; `padsBefore` counts those trimmed off the front.
   */
  private pads: number[] = [];
  private padsBefore = 0;
  /** Highest source ext mapped as media this epoch: a padding packet below it keeps its number (see padding()). */
  private maxMediaExt = -1;
  // Source → router mapping for the current epoch.
  seqDelta = 0;
  tsDelta = 0;
  // Router continuity across epochs (never reset while the router lives).
  lastRouterSeq = -1;
  lastRouterTs = 0;
  lastArrival = 0;
  /** Scratch outputs of `accept`. */
  curExt = 0;
  curTsExt = 0;
  epochs = 0;
  /** Set by `accept` when this packet began a new epoch (new SSRC or a restart). */
  newEpoch = false;
  // RFC 3550 A.3 / A.8 statistics for the current epoch.
  received = 0;
  private expectedPrior = 0;
  private receivedPrior = 0;
  private jitter = 0;
  private lastTransit = NaN;
  // Last sender report of the current epoch.
  srNtpMs = NaN;
  srTsExt = 0;
  srAt = 0;
  srMid32 = 0;
  // Counters (lifetime).
  packets = 0;
  bytes = 0;
  lostTotalPrevEpochs = 0;
  malformed = 0;
  rtxReceived = 0;
  rtxPadding = 0;
  paddingDropped = 0;
  unknownPayloadType = 0;
  foreignSsrc = 0;
  duplicates = 0;
  tooOld = 0;

  constructor(kind: 'audio' | 'video') {
    this.kind = kind;
  }

  configure(params: StreamParams): void {
    this.params = params;
    this.clockRate = params.clockRate > 0 ? params.clockRate : this.kind === 'audio' ? 48000 : 90000;
    this.endEpoch();
  }

  /** The publisher went away: the next packet (of any SSRC) starts a new epoch. */
  endEpoch(): void {
    if (this.ssrc >= 0) this.lostTotalPrevEpochs += Math.max(0, this.expected() - this.received);
    this.ssrc = -1;
    this.srNtpMs = NaN;
    this.probationSeq = -1;
  }

  private beginEpoch(info: RtpInfo, now: number): void {
    if (this.ssrc >= 0) this.lostTotalPrevEpochs += Math.max(0, this.expected() - this.received);
    this.epochs++;
    this.newEpoch = true;
    this.ssrc = info.ssrc;
    this.baseExt = ROUTER_SEQ_BASE + info.sequence;
    this.highestExt = this.baseExt;
    this.highestTsRaw = info.timestamp;
    this.highestTsExt = ROUTER_TS_BASE + info.timestamp;
    this.pads.length = 0;
    this.padsBefore = 0;
    this.maxMediaExt = -1;
    this.probationSeq = -1;
    if (this.lastRouterSeq < 0) {
      this.seqDelta = ROUTER_SEQ_BASE - this.baseExt;
      this.tsDelta = ROUTER_TS_BASE - this.highestTsExt;
    } else {
      // Continue right after the previous epoch: seq + 1, and the timestamp advanced by the wall-clock gap.
      const gap = Math.max(1, Math.round(((now - this.lastArrival) * this.clockRate) / 1000));
      this.seqDelta = this.lastRouterSeq + 1 - this.baseExt;
      this.tsDelta = this.lastRouterTs + gap - this.highestTsExt;
    }
    this.received = 0;
    this.expectedPrior = 0;
    this.receivedPrior = 0;
    this.jitter = 0;
    this.lastTransit = NaN;
    this.srNtpMs = NaN;
  }

  /**
   * Place a media packet (right payload type, parsed) in the source numbering. Sets curExt / curTsExt
   * and returns true, or false when it must be dropped (foreign SSRC, unconfirmed jump). Does not count it as
   * received: call `commit` once it is known new.
   */
  accept(info: RtpInfo, now: number): boolean {
    this.newEpoch = false;
    const p = this.params!;
    if (info.ssrc !== this.ssrc) {
      if (p.ssrc !== 0 && info.ssrc !== p.ssrc) {
        this.foreignSsrc++;
        return false;
      }
      this.beginEpoch(info, now);
    }
    const diff = ((info.sequence - (this.highestExt & 0xffff)) << 16) >> 16;
    if (diff > MAX_SEQ_JUMP || diff < -MAX_SEQ_JUMP) {
      // A restart of the same SSRC (encoder reset) is confirmed by a second packet continuing it;
      // a single wild packet is dropped.
      if (this.probationSeq >= 0 && info.sequence === ((this.probationSeq + 1) & 0xffff)) {
        this.beginEpoch(info, now);
        return this.accept(info, now);
      }
      this.probationSeq = info.sequence;
      this.tooOld++;
      return false;
    }
    this.probationSeq = -1;
    const ext = this.highestExt + diff;
    this.curExt = ext;
    this.curTsExt = this.highestTsExt + ((info.timestamp - this.highestTsRaw) | 0);
    return true;
  }

  /** Router sequence number of source ext `ext`: the epoch's offset less the padding compacted below it. */
  routerSeq(ext: number): number {
    const p = this.pads;
    let n = p.length;
    while (n > 0 && p[n - 1]! >= ext) n--;
    return ext + this.seqDelta - this.padsBefore - n;
  }

  /**
   * A padding-only packet at `curExt`. When no media above it has been mapped yet, it is compacted out of the
   * router's numbering (returns true: drop it) — media that arrives later, even below it (reordering), still maps to
   * the numbers it would have had. A padding packet that arrives after higher media was mapped keeps its number
   * (returns false): the caller forwards it as a filler, so sinks see no hole and nothing is renumbered.
   */
  padding(): boolean {
    const ext = this.curExt;
    this.received++;
    if (ext > this.highestExt) this.highestExt = ext;
    if (ext <= this.maxMediaExt) return false;
    this.paddingDropped++;
    const p = this.pads;
    let i = p.length;
    while (i > 0 && p[i - 1]! > ext) i--;
    if (i > 0 && p[i - 1] === ext) return true;
    p.splice(i, 0, ext);
    while (p.length > 0 && p[0]! < this.highestExt - PAD_WINDOW) {
      p.shift();
      this.padsBefore++;
    }
    return true;
  }

  /** The packet is new and stored: update numbering, continuity and statistics. */
  commit(info: RtpInfo, len: number, now: number): void {
    const ext = this.curExt;
    this.received++;
    this.packets++;
    this.bytes += len;
    if (ext > this.highestExt) {
      this.highestExt = ext;
      this.highestTsRaw = info.timestamp;
      this.highestTsExt = this.curTsExt;
    }
    if (ext > this.maxMediaExt) this.maxMediaExt = ext;
    const routerSeq = this.routerSeq(ext);
    if (routerSeq > this.lastRouterSeq) {
      this.lastRouterSeq = routerSeq;
      this.lastRouterTs = this.curTsExt + this.tsDelta;
      this.lastArrival = now;
    }
    const transit = (now * this.clockRate) / 1000 - this.curTsExt;
    if (this.lastTransit === this.lastTransit) {
      const d = Math.abs(transit - this.lastTransit);
      this.jitter += (d - this.jitter) / 16;
    }
    this.lastTransit = transit;
  }

  expected(): number {
    return this.ssrc < 0 ? 0 : this.highestExt - this.baseExt + 1;
  }

  lost(): number {
    return this.lostTotalPrevEpochs + (this.ssrc < 0 ? 0 : Math.max(0, this.expected() - this.received));
  }

  onSenderReport(ntpMs: number, rtpTs: number, mid32: number, now: number): void {
    if (this.ssrc < 0) return;
    this.srNtpMs = ntpMs;
    this.srTsExt = this.highestTsExt + ((rtpTs - this.highestTsRaw) | 0);
    this.srAt = now;
    this.srMid32 = mid32;
  }

  /** Router timestamp that corresponds to local time `now`, given the source-NTP→local offset (NaN = unknown). */
  routerTsAt(now: number, ntpOffset: number): number {
    if (this.ssrc >= 0 && this.srNtpMs === this.srNtpMs && ntpOffset === ntpOffset) {
      return this.srTsExt + this.tsDelta + ((now - ntpOffset - this.srNtpMs) * this.clockRate) / 1000;
    }
    if (this.lastRouterSeq < 0) return 0;
    return this.lastRouterTs + ((now - this.lastArrival) * this.clockRate) / 1000;
  }

  /** An RFC 3550 report block about this source, and roll the interval counters. */
  reportBlock(now: number): ReportBlock | undefined {
    if (this.ssrc < 0 || this.received === 0) return undefined;
    const expected = this.expected();
    const lost = expected - this.received;
    const expectedInterval = expected - this.expectedPrior;
    const receivedInterval = this.received - this.receivedPrior;
    this.expectedPrior = expected;
    this.receivedPrior = this.received;
    const lostInterval = expectedInterval - receivedInterval;
    const fraction = expectedInterval <= 0 || lostInterval <= 0 ? 0 : Math.min(255, Math.floor((lostInterval * 256) / expectedInterval));
    const haveSr = this.srNtpMs === this.srNtpMs;
    return {
      ssrc: this.ssrc,
      fractionLost: fraction,
      cumulativeLost: lost,
      extendedHighestSeq: (this.highestExt - ROUTER_SEQ_BASE) >>> 0,
      jitter: Math.round(this.jitter) >>> 0,
      lsr: haveSr ? this.srMid32 : 0,
      dlsr: haveSr ? Math.max(0, Math.round(((now - this.srAt) * 65536) / 1000)) >>> 0 : 0,
    };
  }

  jitterMs(): number {
    return (this.jitter * 1000) / this.clockRate;
  }
}
