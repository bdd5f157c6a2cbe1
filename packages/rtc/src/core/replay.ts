/**
 * Keyframe-cache replay: how a sink that has no picture yet (it just joined, or the source changed) gets the cached
 * GOP — keyframe first, re-sequenced to continue its own numbering, re-timestamped so the cached frames sit in a tiny
 * span just before the live timestamp — and then live packets from where the replay ends.
 *
 * A replay is paced: a first chunk goes out at once, the rest in chunks every `tickMs`, spread over at most
 * `spreadMs`, so a join storm or many new legs never stall the packet path nor burst a GOP into one link. While it
 * runs the sink gets no live packets; the pacer walks on past the cache's end into the live packets the store keeps
 * receiving, and hands the sink over to the live path once it has caught up. A hole in the cache (a packet being
 * recovered by NACK) makes the pacer wait for it; a GOP that turns out incomplete, or is replaced by a newer one,
 * restarts or abandons the replay: the sink then starts at the next keyframe. Replays are for new sinks and new
 * legs only; a playing sink that asks for a keyframe is served by the publisher (see Router.sinkRtcp).
 */
import { analyzeH264Payload, H264PayloadInfo, NAL_SPS } from '../codec/h264.js';
import { buildRtpPacket, parseRtpHeader, RtpInfo } from '../codec/rtp.js';
import type { ExtClass } from './ext-class.js';
import type { SinkMunger } from './munger.js';
import type { PacketStore } from './packet-store.js';

export interface ReplayHost {
  readonly videoStore: PacketStore;
  /** The buffer to send to a class (the stored packet itself, or the class's rewritten copy). */
  prepare(cls: ExtClass, view: Uint8Array, parsed: RtpInfo): Uint8Array;
  send(m: SinkMunger, out: Uint8Array, seqExt: number, tsExt: number, r: number, payloadLen: number): void;
  /** SPS and PPS from the publisher's SDP (sprop-parameter-sets), for a keyframe that does not carry them. */
  parameterSets(): readonly Uint8Array[] | undefined;
  random(): number;
  /** The replay into `m` is done and live packets follow. */
  started(m: SinkMunger, replayedPackets: number): void;
  /** The replay into `m` was abandoned (its GOP is incomplete): the sink waits for the next keyframe. */
  abandoned(m: SinkMunger): void;
}

export interface ReplayOptions {
  /** Spacing between replayed frames' timestamps (ms of media clock). */
  frameSpacingMs: number;
  /** A replay is spread over at most this long (0 = all at once). */
  spreadMs: number;
  tickMs: number;
  /** How long the pacer waits at a hole the NACK generator may still fill before it skips it. */
  holeWaitMs: number;
  schedule: (fn: () => void, ms: number) => unknown;
  now: () => number;
}

/** Where one sink's replay stands. */
export class ReplayState {
  /** GOP the replay was planned from: a newer one restarts it. */
  gopStart = -1;
  degraded = false;
  /** Keyframe-list index (degraded GOP), then ring cursor (router seq). */
  kf = 0;
  cursor = 0;
  /** Last router seq of the cached span (compressed timestamps); live timestamps after it. */
  hi0 = 0;
  frames = 0;
  frame = -1;
  prevTs = NaN;
  lastIsLive = false;
  /** Out timestamp of the last replayed frame. */
  L = 0;
  spacing = 1;
  /** Packets per pump. */
  chunk = 0;
  sent = 0;
  waitingSince = NaN;
  startedAt = 0;
}

const MIN_CHUNK = 8;

export class ReplayPacer {
  private readonly active = new Set<SinkMunger>();
  private scheduled = false;
  private closed = false;
  private readonly info = new RtpInfo();
  private readonly h264 = new H264PayloadInfo();

  constructor(
    private readonly host: ReplayHost,
    private readonly o: ReplayOptions,
  ) {}

  get running(): number {
    return this.active.size;
  }

  /** Plan a replay of the cache into `m` and send its first chunk. Returns false when there is nothing to replay. */
  start(m: SinkMunger, now: number): boolean {
    const store = this.host.videoStore;
    if (!store.hasGop() || store.highest < 0 || !m.cls) return false;
    const st = new ReplayState();
    st.gopStart = store.gopStart;
    st.degraded = store.degraded;
    st.spacing = Math.max(1, Math.round((m.clockRate * this.o.frameSpacingMs) / 1000));
    const tLive = store.highestTs;
    let frames = 0;
    let n = 0;
    let prevTs = NaN;
    let r0 = -1;
    let firstTs = NaN;
    let keyframePackets = 0;
    if (st.degraded) {
      for (let k = 0; k < store.kfTss.length; k++) {
        if (store.kfTss[k] !== prevTs) frames++;
        prevTs = store.kfTss[k]!;
        n++;
      }
      firstTs = store.kfTss[0]!;
      keyframePackets = n;
    } else {
      for (let s = store.gopStart; s <= store.highest; s++) {
        if (!store.has(s)) continue;
        if (r0 < 0) {
          r0 = s;
          firstTs = store.tsOf(s);
        }
        const ts = store.tsOf(s);
        if (ts !== prevTs) frames++;
        prevTs = ts;
        n++;
        if (ts === firstTs) keyframePackets++;
      }
    }
    if (n === 0) return false;
    st.frames = frames;
    st.lastIsLive = prevTs === tLive;
    const natural = m.hasOffsets ? tLive + m.tsOff : tLive + Math.floor(this.host.random() * 0x80000000);
    const minL = m.lastTsOutExt + (frames + 1) * st.spacing;
    st.L = natural < minL ? minL : natural;
    let seqStart = m.nextSeqExt;
    const sets = this.missingParameterSets(store, st.degraded, r0, firstTs);
    if (sets) {
      this.sendParameterSets(m, sets, seqStart, this.tsFor(st, 0));
      seqStart++;
    }
    if (st.degraded) {
      st.hi0 = store.highest;
      st.cursor = store.highest + 1;
      m.seqOff = seqStart + store.kfViews.length - st.cursor;
    } else {
      st.hi0 = store.highest;
      st.cursor = r0;
      m.seqOff = seqStart - r0;
    }
    m.tsOff = st.L - tLive;
    m.hasOffsets = true;
    m.started = false;
    m.replay = st;
    m.keyframes++;
    m.replays++;
    const perTick = this.o.spreadMs > 0 ? Math.ceil((n * this.o.tickMs) / this.o.spreadMs) : Infinity;
    st.chunk = perTick < MIN_CHUNK ? MIN_CHUNK : perTick;
    st.startedAt = now;
    this.active.add(m);
    // The first chunk holds the whole keyframe at least: the sink can show a picture before the pacing goes on.
    this.pumpOne(m, now, keyframePackets + (sets ? 1 : 0));
    if (this.active.has(m)) this.schedule();
    return true;
  }

  /** Stop replaying into `m` (sink closed, source gone). */
  cancel(m: SinkMunger): void {
    if (m.replay === undefined) return;
    m.replay = undefined;
    this.active.delete(m);
  }

  /** Send the next chunk of every running replay. Called by the pacer's timer; tests may call it directly. */
  pump(now: number = this.o.now()): void {
    for (const m of this.active) this.pumpOne(m, now);
    if (this.active.size > 0) this.schedule();
  }

  close(): void {
    this.closed = true;
    for (const m of this.active) m.replay = undefined;
    this.active.clear();
  }

  private schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    this.o.schedule(() => {
      this.scheduled = false;
      if (!this.closed) this.pump();
    }, this.o.tickMs);
  }

  private tsFor(st: ReplayState, frame: number): number {
    const back = st.lastIsLive ? st.frames - 1 - frame : st.frames - frame;
    return st.L - back * st.spacing;
  }

  private pumpOne(m: SinkMunger, now: number, minBudget = 0): void {
    const st = m.replay;
    const cls = m.cls;
    if (st === undefined || cls === undefined) {
      this.cancel(m);
      return;
    }
    const store = this.host.videoStore;
    if (store.gopStart !== st.gopStart || store.incomplete) {
      // The cache moved on under the replay: a newer GOP restarts it; an incomplete one cannot be replayed whole.
      this.cancel(m);
      if (!this.start(m, now)) this.host.abandoned(m);
      return;
    }
    const info = this.info;
    // What arrives meanwhile is replayed too: the chunk grows so that the replay still ends within spreadMs.
    const remaining = (st.degraded ? store.kfViews.length - st.kf : 0) + store.highest - st.cursor + 1;
    const ticksLeft = Math.max(1, Math.floor((this.o.spreadMs - (now - st.startedAt)) / this.o.tickMs));
    let budget = Math.max(st.chunk, minBudget, Math.ceil(remaining / ticksLeft));
    if (st.degraded) {
      const seqBase = st.cursor + m.seqOff - store.kfViews.length;
      while (budget > 0 && st.kf < store.kfViews.length) {
        const k = st.kf++;
        const view = store.kfViews[k]!;
        const ts = store.kfTss[k]!;
        if (ts !== st.prevTs) st.frame++;
        st.prevTs = ts;
        if (!parseRtpHeader(view, view.length, info)) continue;
        this.host.send(m, this.host.prepare(cls, view, info), seqBase + k, this.tsFor(st, st.frame), store.kfSeqs[k]!, info.payloadLength);
        st.sent++;
        budget--;
      }
    }
    while (budget > 0) {
      const s = st.cursor;
      if (s > store.highest) {
        this.finish(m, st);
        return;
      }
      const view = store.get(s);
      if (view === undefined) {
        if (s < store.lowerBound()) {
          // Evicted before the pacer got there: only possible when the sink lagged by more than the store holds.
          this.cancel(m);
          this.host.abandoned(m);
          return;
        }
        if (st.waitingSince !== st.waitingSince) st.waitingSince = now;
        if (now - st.waitingSince < this.o.holeWaitMs) return;
        st.waitingSince = NaN;
        st.cursor++;
        continue;
      }
      st.waitingSince = NaN;
      if (!parseRtpHeader(view, view.length, info)) {
        st.cursor++;
        continue;
      }
      let tsOut: number;
      const ts = store.tsOf(s);
      if (s <= st.hi0 && !st.degraded) {
        if (ts !== st.prevTs) st.frame++;
        st.prevTs = ts;
        tsOut = this.tsFor(st, st.frame);
      } else tsOut = ts + m.tsOff;
      this.host.send(m, this.host.prepare(cls, view, info), s + m.seqOff, tsOut, s, info.payloadLength);
      st.sent++;
      st.cursor++;
      budget--;
    }
  }

  private finish(m: SinkMunger, st: ReplayState): void {
    this.active.delete(m);
    m.replay = undefined;
    m.started = true;
    m.minRouterSeq = st.cursor;
    if (m.nextSeqExt < st.cursor + m.seqOff) m.nextSeqExt = st.cursor + m.seqOff;
    this.host.started(m, st.sent);
  }

  /** SPS+PPS to send first, when the cached keyframe does not carry them in-band and the SDP did. */
  private missingParameterSets(store: PacketStore, degraded: boolean, r0: number, firstTs: number): readonly Uint8Array[] | undefined {
    const sets = this.host.parameterSets();
    if (!sets || sets.length === 0) return undefined;
    const info = this.info;
    const has = (view: Uint8Array) =>
      parseRtpHeader(view, view.length, info) !== undefined && analyzeH264Payload(view, info.payloadOffset, info.payloadLength, this.h264) && (this.h264.nalMask & (1 << NAL_SPS)) !== 0;
    if (degraded) {
      for (let k = 0; k < store.kfViews.length; k++) if (store.kfTss[k] === firstTs && has(store.kfViews[k]!)) return undefined;
    } else {
      for (let s = r0; s <= store.highest && store.tsOf(s) === firstTs; s++) {
        const v = store.get(s);
        if (v && has(v)) return undefined;
      }
    }
    return sets;
  }

  private sendParameterSets(m: SinkMunger, sets: readonly Uint8Array[], seqExt: number, tsExt: number): void {
    let size = 1;
    let nri = 0;
    for (const n of sets) {
      size += 2 + n.length;
      nri = Math.max(nri, n[0]! & 0x60);
    }
    const payload = new Uint8Array(size);
    payload[0] = nri | 24; // STAP-A
    let off = 1;
    for (const n of sets) {
      payload[off] = n.length >> 8;
      payload[off + 1] = n.length & 0xff;
      payload.set(n, off + 2);
      off += 2 + n.length;
    }
    const pkt = buildRtpPacket({ payloadType: m.payloadType, sequence: 0, timestamp: 0, ssrc: m.ssrc, payload });
    this.host.send(m, pkt, seqExt, tsExt, -1, payload.length);
  }
}
