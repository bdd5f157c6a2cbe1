/**
 * Router: one source (the publisher of a broadcast), many sinks. The packet path is synchronous and
 * lean: each source packet is parsed once, copied once into the packet store, and then served to the
 * sinks one after another from the same buffer — only the fixed header fields (SSRC, sequence,
 * timestamp, payload type) are written per sink. Header extensions are rewritten once per extension
 * class (sinks with identical negotiated ids).
 *
 * Around that path, each in its own file: loss recovery toward the source (source-recovery.ts, nack-generator.ts),
 * keyframe requests toward the source (keyframe-requester.ts), paced keyframe-cache replay for new sinks (replay.ts),
 * RTCP from sinks (feedback.ts), the periodic reports (reports.ts) and the counters (router-stats.ts). No timers of
 * its own unless `startTimer()` is called or a replay / NACK retry is pending: the owner calls `tick()` about once a
 * second.
 */
import { EventEmitter } from 'node:events';
import { H264PayloadInfo, analyzeH264Payload } from '../codec/h264.js';
import { h264StreamInspector, type H264StreamInspector, type H264StreamReport } from '../codec/h264-inspector.js';
import { RTCP_SR, RtcpCursor, nextRtcpPacket, parseRtcpPacket, unixMsFromNtp } from '../codec/rtcp.js';
import { RtpInfo, parseRtpHeader, rewriteRtpExtensions, setRtpSequence, setRtpSsrc, setRtpTimestamp } from '../codec/rtp.js';
import { ExtClass, HOP_BY_HOP_EXTENSIONS } from './ext-class.js';
import { DEFAULT_NACK_POLICY, SinkFeedback, type NackPolicy } from './feedback.js';
import { Ingress } from './ingress.js';
import { KeyframeRequester } from './keyframe-requester.js';
import { SinkMunger } from './munger.js';
import type { NackGeneratorOptions } from './nack-generator.js';
import { PacketStore } from './packet-store.js';
export type { IngressCounters, RouterStats } from './router-stats.js';
import { ReplayPacer } from './replay.js';
import { SourceRecovery } from './source-recovery.js';
import { receiverReportToSource, senderReportsToSinks } from './reports.js';
import { ingressCounters, type RouterStats } from './router-stats.js';
import { Sink, type SinkHost } from './sink.js';
import type { MediaKind, SinkPort, SourcePort, SourceStats, StreamParams } from './types.js';

export interface RouterOptions {
  /** Wall clock in Unix ms (used for arrival times and NTP in sender reports). Injected by tests. */
  now?: () => number;
  /** Random source for SSRCs and initial sequence numbers / timestamps. */
  random?: () => number;
  /** Timer for replay pacing and NACK retries (default setTimeout, unref'd). Injected by tests. */
  schedule?: (fn: () => void, ms: number) => unknown;
  /** Upstream keyframe requests are coalesced to one per this interval (ms). */
  keyframeRequestIntervalMs?: number;
  /** Spacing between replayed frames' timestamps (ms of media clock). */
  replayFrameSpacingMs?: number;
  /** A keyframe-cache replay is spread over at most this long (ms); 0 sends it at once. */
  replaySpreadMs?: number;
  /** Loss detection toward the source (used when the source negotiated 'nack'). */
  nack?: NackGeneratorOptions;
  /** How NACKs from sinks are answered. */
  nackPolicy?: Partial<NackPolicy>;
  gopMaxMs?: number;
  gopMaxPackets?: number;
  gopMaxBytes?: number;
  videoNackWindow?: number;
  audioNackWindow?: number;
  maxPacketBytes?: number;
  /** Extension URIs never forwarded (hop-by-hop values we do not rewrite). */
  stripExtensions?: readonly string[];
  /** Run the H.264 stream inspector on the source's video (profile, B-frames, IVS rules). Default true. */
  inspectH264?: boolean;
}

export interface SourceParams {
  audio?: StreamParams;
  video?: StreamParams;
}

export interface KeyframeEvent {
  /** Local time (ms) the keyframe's IDR was seen. */
  at: number;
  /** Sinks that were waiting for a keyframe and start with this one. */
  sinksStarted: number;
  /** Interval since the previous keyframe from the same source, ms. */
  intervalMs?: number;
}

export interface RouterEvents {
  keyframe: [KeyframeEvent];
  'source-stats': [SourceStats];
  'sink-started': [{ sinkId: string; replayedPackets: number }];
  close: [];
}

const VIDEO_RING = 1024;
const AUDIO_RING = 256;

export class Router extends EventEmitter<RouterEvents> implements SinkHost {
  /** SSRC the router uses as RTCP sender toward the source (RR, NACK, PLI, FIR). */
  readonly ssrc: number;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly schedule: (fn: () => void, ms: number) => unknown;
  private readonly strip: readonly string[];
  private source: SourcePort | undefined;
  private sourceParams: SourceParams = {};
  private readonly audioIn = new Ingress('audio');
  private readonly videoIn = new Ingress('video');
  readonly audioStore: PacketStore;
  readonly videoStore: PacketStore;
  private readonly recovery: SourceRecovery;
  private readonly kr: KeyframeRequester;
  private readonly pacer: ReplayPacer;
  private readonly feedback: SinkFeedback;
  private readonly audioClasses: ExtClass[] = [];
  private readonly videoClasses: ExtClass[] = [];
  private readonly sinks = new Map<string, Sink>();
  private readonly info = new RtpInfo();
  private readonly info2 = new RtpInfo();
  private readonly h264 = new H264PayloadInfo();
  private readonly inspector: H264StreamInspector | undefined;
  private auTs = -1;
  private auStart = -1;
  private auHasIdr = false;
  /** Local time minus the source's NTP clock, learned from its first SR (NaN = unknown). */
  private ntpOffset = NaN;
  private keyframesReceived = 0;
  private lastKeyframeAt: number | undefined;
  private droppedNoSource = 0;
  private lastTickAt = NaN;
  private lastTickBytes = 0;
  private bitrateBps = 0;
  private timer: ReturnType<typeof setInterval> | undefined;
  private closed = false;
  private readonly rtcpCursor = new RtcpCursor();

  constructor(opts: RouterOptions = {}) {
    super();
    this.now = opts.now ?? (() => performance.timeOrigin + performance.now());
    this.random = opts.random ?? Math.random;
    this.schedule =
      opts.schedule ??
      ((fn, ms) => {
        const t = setTimeout(fn, ms);
        t.unref?.();
        return t;
      });
    this.strip = opts.stripExtensions ?? HOP_BY_HOP_EXTENSIONS;
    this.ssrc = (Math.floor(this.random() * 0xfffffffe) + 1) >>> 0;
    const maxPacketBytes = opts.maxPacketBytes ?? 16384;
    const gopMaxPackets = opts.gopMaxPackets ?? 4000;
    let capacity = 1;
    while (capacity <= Math.max(gopMaxPackets, opts.videoNackWindow ?? 1024) + 16) capacity *= 2;
    this.videoStore = new PacketStore({
      capacity,
      nackWindow: opts.videoNackWindow ?? 1024,
      gop: true,
      gopMaxPackets,
      gopMaxBytes: opts.gopMaxBytes ?? 6 * 1024 * 1024,
      gopMaxTicks: ((opts.gopMaxMs ?? 3000) * 90000) / 1000,
      maxPacketBytes,
    });
    const audioWindow = opts.audioNackWindow ?? 256;
    let audioCap = 1;
    while (audioCap < audioWindow) audioCap *= 2;
    this.audioStore = new PacketStore({
      capacity: audioCap,
      nackWindow: audioWindow,
      gop: false,
      gopMaxPackets: 0,
      gopMaxBytes: 0,
      gopMaxTicks: 0,
      maxPacketBytes,
    });
    this.recovery = new SourceRecovery(
      this.ssrc,
      this.audioIn,
      this.videoIn,
      {
        source: () => this.source,
        now: this.now,
        schedule: this.schedule,
        videoLost: (ext) => this.videoLost(ext),
        needKeyframe: (now) => this.requestKeyframe(now),
      },
      opts.nack,
    );
    this.kr = new KeyframeRequester(this.ssrc, opts.keyframeRequestIntervalMs ?? 500);
    const spreadMs = opts.replaySpreadMs ?? 200;
    this.pacer = new ReplayPacer(
      {
        videoStore: this.videoStore,
        prepare: (cls, view, parsed) => this.prepare(cls, view, parsed),
        send: (m, out, seqExt, tsExt, r, payloadLen) => this.send(m, out, seqExt, tsExt, r, payloadLen),
        parameterSets: () => this.sourceParams.video?.parameterSets,
        random: this.random,
        started: (m, n) => this.emit('sink-started', { sinkId: m.port.id, replayedPackets: n }),
        abandoned: () => this.requestKeyframe(this.now()),
      },
      { frameSpacingMs: opts.replayFrameSpacingMs ?? 1, spreadMs, tickMs: 10, holeWaitMs: 500, schedule: this.schedule, now: this.now },
    );
    this.feedback = new SinkFeedback(
      {
        store: (kind) => (kind === 'video' ? this.videoStore : this.audioStore),
        prepare: (cls, view, parsed) => this.prepare(cls, view, parsed),
        keyframeRequested: (m, now) => {
          // A sink being replayed into is about to get its keyframe; every other one is served by the publisher.
          if (m.replay === undefined) this.requestKeyframe(now);
        },
      },
      { ...DEFAULT_NACK_POLICY, ...opts.nackPolicy },
    );
    this.inspector = opts.inspectH264 === false ? undefined : h264StreamInspector();
  }

  /** Optional: own a 1-s timer that calls tick(); cleared by close(). */
  startTimer(intervalMs = 1000): void {
    if (this.timer || this.closed) return;
    this.timer = setInterval(() => this.tick(), intervalMs);
    this.timer.unref?.();
  }

  get hasSource(): boolean {
    return this.source !== undefined;
  }

  /** A publisher arrived (or replaced the previous one). Sinks stay; they continue seamlessly. */
  setSource(port: SourcePort, params: SourceParams): void {
    if (this.closed) throw new Error('router closed');
    if (this.source) this.clearSource();
    this.source = port;
    this.sourceParams = params;
    if (params.audio) this.audioIn.configure(params.audio);
    else this.audioIn.params = undefined;
    if (params.video) {
      this.videoIn.configure(params.video);
      this.videoStore.gopMaxTicksFor(params.video.clockRate);
    } else this.videoIn.params = undefined;
    this.recovery.configure(params.audio, params.video);
    for (const c of this.audioClasses) c.bind(params.audio?.extensions, this.strip);
    for (const c of this.videoClasses) c.bind(params.video?.extensions, this.strip);
    this.ntpOffset = NaN;
    this.inspector?.reset();
    this.kr.reset();
    this.requestKeyframe(this.now());
  }

  /** The publisher went away. Sinks stay connected and resume with the next source's first keyframe. */
  clearSource(): void {
    if (!this.source) return;
    this.source = undefined;
    this.audioIn.endEpoch();
    this.videoIn.endEpoch();
    this.recovery.reset();
    this.resetVideoStart();
    this.ntpOffset = NaN;
    this.kr.reset();
  }

  private resetVideoStart(): void {
    this.videoStore.clearGop();
    this.auTs = -1;
    this.auHasIdr = false;
    for (const c of this.videoClasses)
      for (const m of c.sinks) {
        this.pacer.cancel(m);
        m.started = false;
      }
  }

  /** One RTP packet from the publisher. Never throws; bad input is counted. */
  pushRtp(kind: MediaKind, packet: Uint8Array): void {
    if (this.source === undefined) {
      this.droppedNoSource++;
      return;
    }
    const video = kind === 'video';
    const ing = video ? this.videoIn : this.audioIn;
    const params = ing.params;
    if (params === undefined) {
      this.droppedNoSource++;
      return;
    }
    let buf = packet;
    let len = packet.length;
    let viaRtx = false;
    let info = parseRtpHeader(buf, len, this.info);
    if (info === undefined) {
      ing.malformed++;
      return;
    }
    if (info.payloadType !== params.payloadType) {
      if (info.payloadType !== params.rtxPayloadType) {
        ing.unknownPayloadType++;
        return;
      }
      len = this.recovery.unwrapRtx(packet, info, ing, params.payloadType);
      if (len < 0) return;
      buf = this.recovery.rtxBuf;
      viaRtx = true;
      info = parseRtpHeader(buf, len, this.info);
      if (info === undefined) {
        ing.malformed++;
        return;
      }
    }
    const now = this.now();
    if (!ing.accept(info, now)) return;
    if (ing.newEpoch) {
      this.recovery.reset(kind);
      if (video) this.onVideoEpoch(now);
    }
    const ext = ing.curExt;
    const highestBefore = ing.newEpoch ? -1 : ing.highestExt;
    if (info.payloadLength === 0 && ing.padding()) {
      this.recovery.noteArrival(video, ext, highestBefore, now, viaRtx, params.rtxPayloadType !== undefined);
      return;
    }
    const store = video ? this.videoStore : this.audioStore;
    const r = ing.routerSeq(ext);
    if (store.has(r)) {
      ing.duplicates++;
      return;
    }
    const t = ing.curTsExt + ing.tsDelta;
    const prevHighest = store.highest;
    const view = store.put(r, t, buf, len);
    if (view === undefined) {
      ing.tooOld++;
      return;
    }
    ing.commit(info, len, now);
    this.recovery.noteArrival(video, ext, highestBefore, now, viaRtx, params.rtxPayloadType !== undefined);
    if (!video) {
      this.forward(this.audioClasses, view, r, t, false);
      return;
    }
    let keyframe = false;
    if (r === store.highest && t !== this.auTs) {
      // A new access unit. It starts right after the last packet we had: a lost first packet that is recovered
      // later still falls inside it (and inside its GOP, when it is a keyframe).
      this.auTs = t;
      this.auStart = prevHighest >= 0 && prevHighest < r ? prevHighest + 1 : r;
      this.auHasIdr = false;
    }
    const h = this.h264;
    if (analyzeH264Payload(view, info.payloadOffset, info.payloadLength, h) && h.idrStart && !this.auHasIdr && t === this.auTs) {
      this.auHasIdr = true;
      keyframe = true;
      store.startGop(this.auStart, t);
      this.kr.satisfied();
    }
    if (this.inspector !== undefined) this.inspector.push(view, info.payloadOffset, info.payloadLength, info.timestamp);
    if (this.kr.pending) this.kr.flush(this.source, this.videoIn.params, this.videoIn.ssrc, now);
    this.forward(this.videoClasses, view, r, t, keyframe);
    if (keyframe) this.onKeyframe(now);
  }

  /** A video packet will never arrive: the cache cannot replay its GOP, and the picture needs a keyframe. */
  private videoLost(ext: number): void {
    const r = this.videoIn.routerSeq(ext);
    this.videoStore.lostForGood(r);
    if (this.videoStore.gopStart < 0 || r >= this.videoStore.gopStart) this.requestKeyframe(this.now());
  }

  private onVideoEpoch(now: number): void {
    // New publisher stream: its deltas cannot be decoded against the old one's frames.
    this.resetVideoStart();
    this.inspector?.reset();
    this.requestKeyframe(now);
  }

  private forward(classes: ExtClass[], view: Uint8Array, r: number, t: number, keyframe: boolean): void {
    const payloadLen = this.info.payloadLength;
    for (let c = 0; c < classes.length; c++) {
      const cls = classes[c]!;
      const sinks = cls.sinks;
      let out: Uint8Array | undefined;
      for (let i = 0; i < sinks.length; i++) {
        const m = sinks[i]!;
        if (!m.started || r < m.minRouterSeq) continue;
        if (out === undefined) out = this.prepare(cls, view, this.info);
        this.send(m, out, r + m.seqOff, t + m.tsOff, r, payloadLen);
        if (keyframe) m.keyframes++;
      }
    }
  }

  /** The buffer to send to a class: the stored packet itself, or the class's rewritten copy. */
  private prepare(cls: ExtClass, view: Uint8Array, parsed: RtpInfo): Uint8Array {
    if (cls.identity || parsed.extOffset < 0) return view;
    if (cls.buf.length < view.length) cls.buf = new Uint8Array(view.length);
    cls.buf.set(view);
    const i2 = this.info2;
    if (parsed !== i2) copyInfo(parsed, i2);
    const n = rewriteRtpExtensions(cls.buf, i2, cls.map);
    return cls.buf.subarray(0, n);
  }

  private send(m: SinkMunger, out: Uint8Array, seqExt: number, tsExt: number, r: number, payloadLen: number): void {
    out[1] = (out[1]! & 0x80) | m.payloadType;
    setRtpSequence(out, seqExt);
    setRtpTimestamp(out, tsExt);
    setRtpSsrc(out, m.ssrc);
    try {
      m.port.sendRtp(m.kind, out);
    } catch {
      m.sendErrors++;
    }
    const i = seqExt & m.ringMask;
    m.ringOut[i] = seqExt;
    m.ringRouter[i] = r;
    m.ringTs[i] = tsExt;
    m.ringResentAt[i] = -Infinity;
    m.ringResends[i] = 0;
    if (seqExt >= m.nextSeqExt) m.nextSeqExt = seqExt + 1;
    if (tsExt > m.lastTsOutExt) m.lastTsOutExt = tsExt;
    m.packets++;
    m.bytes += out.length;
    m.octets += payloadLen;
  }

  private onKeyframe(now: number): void {
    const prev = this.lastKeyframeAt;
    this.keyframesReceived++;
    this.lastKeyframeAt = now;
    let started = 0;
    for (const c of this.videoClasses) {
      for (const m of c.sinks) {
        if (m.started || m.replay !== undefined) continue;
        if (this.pacer.start(m, now)) started++;
      }
    }
    const ev: KeyframeEvent = { at: now, sinksStarted: started };
    if (prev !== undefined) ev.intervalMs = now - prev;
    this.emit('keyframe', ev);
  }

  /** Add a downstream. Audio flows at once; video starts with a keyframe (replayed from the cache when one is held). */
  addSink(port: SinkPort): Sink {
    if (this.closed) throw new Error('router closed');
    if (this.sinks.has(port.id)) throw new Error(`sink ${port.id} already added`);
    const audio = port.audio ? new SinkMunger('audio', port, port.audio, AUDIO_RING, this.random) : undefined;
    const video = port.video ? new SinkMunger('video', port, port.video, VIDEO_RING, this.random) : undefined;
    const sink = new Sink(this, port, audio, video);
    this.sinks.set(port.id, sink);
    if (audio) {
      this.attach(this.audioClasses, audio, this.sourceParams.audio);
      // Audio needs no sync point: map the next router sequence number to the sink's first one.
      const nextR = this.audioIn.lastRouterSeq < 0 ? 0x10000 : this.audioIn.lastRouterSeq + 1;
      audio.seqOff = audio.nextSeqExt - nextR;
      audio.tsOff = Math.floor(this.random() * 0x80000000) - this.audioIn.lastRouterTs;
      audio.hasOffsets = true;
      audio.minRouterSeq = nextR;
      audio.started = true;
    }
    if (video) {
      this.attach(this.videoClasses, video, this.sourceParams.video);
      const now = this.now();
      const replaying = this.source !== undefined && this.pacer.start(video, now);
      if (!replaying) this.requestKeyframe(now);
    }
    return sink;
  }

  removeSink(id: string): void {
    this.sinks.get(id)?.close();
  }

  getSink(id: string): Sink | undefined {
    return this.sinks.get(id);
  }

  get sinkCount(): number {
    return this.sinks.size;
  }

  /** Replays in progress; tests and benchmarks drive them with `pumpReplays` when they inject `schedule`. */
  get replaysRunning(): number {
    return this.pacer.running;
  }

  pumpReplays(now: number = this.now()): void {
    this.pacer.pump(now);
  }

  private attach(classes: ExtClass[], m: SinkMunger, source: StreamParams | undefined): void {
    const key = ExtClass.keyOf(m.params.extensions);
    let cls = classes.find((c) => c.key === key);
    if (!cls) {
      cls = new ExtClass(key, { ...m.params.extensions });
      cls.bind(source?.extensions, this.strip);
      classes.push(cls);
    }
    cls.sinks.push(m);
    m.cls = cls;
  }

  private detach(classes: ExtClass[], m: SinkMunger | undefined): void {
    const cls = m?.cls;
    if (!m || !cls) return;
    this.pacer.cancel(m);
    const i = cls.sinks.indexOf(m);
    if (i >= 0) cls.sinks.splice(i, 1);
    if (cls.sinks.length === 0) classes.splice(classes.indexOf(cls), 1);
    m.cls = undefined;
    m.started = false;
  }

  /** @internal Sink.close() */
  detachSink(sink: Sink): void {
    if (this.sinks.get(sink.id) !== sink) return;
    this.sinks.delete(sink.id);
    this.detach(this.audioClasses, sink.audio);
    this.detach(this.videoClasses, sink.video);
  }

  /** RTCP from the publisher (SR for the NTP mapping; the rest is ignored). Never throws. */
  pushRtcp(packet: Uint8Array): void {
    if (this.closed || !this.source) return;
    const cur = this.rtcpCursor;
    cur.pos = 0;
    let now = NaN;
    while (nextRtcpPacket(packet, packet.length, cur)) {
      if (cur.packetType !== RTCP_SR) continue;
      const sr = parseRtcpPacket(packet, cur.offset, cur.length);
      if (!sr || sr.type !== 'sr') continue;
      const ing = sr.ssrc === this.videoIn.ssrc ? this.videoIn : sr.ssrc === this.audioIn.ssrc ? this.audioIn : undefined;
      if (!ing) continue;
      if (now !== now) now = this.now();
      const ntpMs = unixMsFromNtp(sr.ntpSec, sr.ntpFrac);
      if (this.ntpOffset !== this.ntpOffset) this.ntpOffset = now - ntpMs;
      ing.onSenderReport(ntpMs, sr.rtpTimestamp, (((sr.ntpSec & 0xffff) << 16) | (sr.ntpFrac >>> 16)) >>> 0, now);
    }
  }

  /** @internal Sink.handleRtcp() */
  sinkRtcp(sink: Sink, packet: Uint8Array): void {
    if (this.closed) return;
    this.feedback.handle(sink, packet, this.now());
  }

  /** Ask the publisher for a keyframe; coalesced to one per interval (PLI, or FIR when 'ccm fir' was negotiated). */
  requestKeyframe(now: number = this.now()): void {
    if (!this.source || !this.videoIn.params) return;
    this.kr.request(this.source, this.videoIn.params, this.videoIn.ssrc, now);
  }

  /**
   * Once a second: receiver report to the source, a sender report to every sink, due NACKs, pending keyframe
   * requests (also when the cache holds no usable keyframe), and the 'source-stats' event.
   */
  tick(now: number = this.now()): void {
    if (this.closed) return;
    if (this.source) {
      if (this.videoIn.params && this.videoIn.ssrc >= 0 && !this.videoStore.hasGop()) this.requestKeyframe(now);
      else if (this.kr.pending) this.kr.flush(this.source, this.videoIn.params, this.videoIn.ssrc, now);
      this.recovery.flush(now);
      receiverReportToSource(this.source, this.ssrc, [this.audioIn, this.videoIn], now);
    }
    senderReportsToSinks(this.sinks.values(), this.audioIn, this.videoIn, this.ntpOffset, now);
    const bytes = this.audioIn.bytes + this.videoIn.bytes;
    if (this.lastTickAt === this.lastTickAt && now > this.lastTickAt) this.bitrateBps = Math.round(((bytes - this.lastTickBytes) * 8000) / (now - this.lastTickAt));
    this.lastTickAt = now;
    this.lastTickBytes = bytes;
    this.emit('source-stats', this.sourceStats());
  }

  sourceStats(): SourceStats {
    const s: SourceStats = {
      online: this.source !== undefined,
      packetsReceived: this.audioIn.packets + this.videoIn.packets,
      bytesReceived: this.audioIn.bytes + this.videoIn.bytes,
      keyframesReceived: this.keyframesReceived,
      bitrateBps: this.bitrateBps,
      lost: this.audioIn.lost() + this.videoIn.lost(),
      plisSent: this.kr.sent,
      nacksSent: this.recovery.audio.nacksSent + this.recovery.video.nacksSent,
      recovered: this.recovery.audio.recovered + this.recovery.video.recovered,
      lostForGood: this.recovery.audio.lostForGood + this.recovery.video.lostForGood,
      rtxReceived: this.audioIn.rtxReceived + this.videoIn.rtxReceived,
    };
    if (this.lastKeyframeAt !== undefined) s.lastKeyframeAt = this.lastKeyframeAt;
    return s;
  }

  /** What the H.264 inspector saw in the current source's video (undefined when inspection is off). */
  h264Report(): H264StreamReport | undefined {
    return this.inspector?.report();
  }

  stats(): RouterStats {
    const st: RouterStats = {
      source: this.sourceStats(),
      sinks: [...this.sinks.values()].map((s) => s.stats()),
      ingress: { audio: ingressCounters(this.audioIn, this.recovery.audio), video: ingressCounters(this.videoIn, this.recovery.video) },
      cache: {
        video: { ...this.videoStore.footprint(), gopPackets: this.videoStore.gopPackets, gopDegraded: this.videoStore.degraded, gopIncomplete: this.videoStore.incomplete },
        audio: this.audioStore.footprint(),
      },
      keyframeRequestsSent: this.kr.sent,
      keyframeRequestsAsked: this.kr.asked,
      replaysRunning: this.pacer.running,
      droppedNoSource: this.droppedNoSource,
    };
    const h = this.inspector?.report();
    if (h) st.h264 = h;
    return st;
  }

  /** Idempotent: detaches every sink, drops the caches and the timer, emits 'close'. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.pacer.close();
    this.recovery.close();
    for (const s of [...this.sinks.values()]) s.close();
    this.source = undefined;
    this.videoStore.clear();
    this.audioStore.clear();
    this.emit('close');
    this.removeAllListeners();
  }
}

function copyInfo(a: RtpInfo, b: RtpInfo): void {
  b.version = a.version;
  b.padding = a.padding;
  b.extension = a.extension;
  b.csrcCount = a.csrcCount;
  b.marker = a.marker;
  b.payloadType = a.payloadType;
  b.sequence = a.sequence;
  b.timestamp = a.timestamp;
  b.ssrc = a.ssrc;
  b.extOffset = a.extOffset;
  b.extProfile = a.extProfile;
  b.extLength = a.extLength;
  b.headerLength = a.headerLength;
  b.payloadOffset = a.payloadOffset;
  b.payloadLength = a.payloadLength;
  b.paddingLength = a.paddingLength;
  b.length = a.length;
}
