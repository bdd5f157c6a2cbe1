/**
 * Router: one source (the publisher of a broadcast), many sinks. The packet path is synchronous and
 * lean: each source packet is parsed once, copied once into the packet store, and then served to the
 * sinks one after another from the same buffer — only the fixed header fields (SSRC, sequence,
 * timestamp, payload type) are written per sink. Header extensions are rewritten once per extension
 * class (sinks with identical negotiated ids). No timers of its own unless `startTimer()` is called:
 * the owner calls `tick()` about once a second for receiver / sender reports and keyframe requests.
 */
import { EventEmitter } from 'node:events';
import { H264PayloadInfo, analyzeH264Payload } from '../codec/h264.js';
import { h264StreamInspector, type H264StreamInspector, type H264StreamReport } from '../codec/h264-inspector.js';
import {
  RTCP_PSFB,
  RTCP_RR,
  RTCP_RTPFB,
  RTCP_SR,
  RtcpCursor,
  buildFir,
  buildPli,
  buildReceiverReport,
  buildSenderReport,
  concatRtcp,
  nextRtcpPacket,
  ntpFromUnixMs,
  ntpMiddle32,
  parseRtcpPacket,
  unixMsFromNtp,
  type ReportBlock,
} from '../codec/rtcp.js';
import { RtpInfo, parseRtpHeader, rewriteRtpExtensions, setRtpSequence, setRtpSsrc, setRtpTimestamp } from '../codec/rtp.js';
import { ExtClass, HOP_BY_HOP_EXTENSIONS } from './ext-class.js';
import { Ingress } from './ingress.js';
import { SinkMunger } from './munger.js';
import { PacketStore } from './packet-store.js';
import { Sink, type RouterSinkStats, type SinkHost } from './sink.js';
import type { MediaKind, SinkPort, SourcePort, SourceStats, StreamParams } from './types.js';

export interface RouterOptions {
  /** Wall clock in Unix ms (used for arrival times and NTP in sender reports). Injected by tests. */
  now?: () => number;
  /** Random source for SSRCs and initial sequence numbers / timestamps. */
  random?: () => number;
  /** Upstream keyframe requests are coalesced to one per this interval (ms). */
  keyframeRequestIntervalMs?: number;
  /** A sink gets at most one keyframe-cache replay per this interval when it asks (ms). */
  replayIntervalMs?: number;
  /** Spacing between replayed frames' timestamps (ms of media clock). */
  replayFrameSpacingMs?: number;
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
  /** Sinks started by this keyframe (they were waiting for one). */
  sinksStarted: number;
  /** Interval since the previous keyframe from the same source, ms. */
  intervalMs?: number;
}

export interface RouterStats {
  source: SourceStats;
  sinks: RouterSinkStats[];
  ingress: { audio: IngressCounters; video: IngressCounters };
  cache: { video: ReturnType<PacketStore['footprint']> & { gopPackets: number; gopDegraded: boolean }; audio: ReturnType<PacketStore['footprint']> };
  keyframeRequestsSent: number;
  droppedNoSource: number;
  h264?: H264StreamReport;
}

export interface IngressCounters {
  ssrc?: number;
  packets: number;
  bytes: number;
  lost: number;
  jitterMs: number;
  epochs: number;
  malformed: number;
  rtxDropped: number;
  paddingDropped: number;
  unknownPayloadType: number;
  foreignSsrc: number;
  duplicates: number;
  tooOld: number;
  unmappable: number;
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
  /** SSRC the router uses as RTCP sender toward the source (RR, PLI, FIR). */
  readonly ssrc: number;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly krIntervalMs: number;
  private readonly replayIntervalMs: number;
  private readonly replaySpacingMs: number;
  private readonly strip: readonly string[];
  private source: SourcePort | undefined;
  private sourceParams: SourceParams = {};
  private readonly audioIn = new Ingress('audio');
  private readonly videoIn = new Ingress('video');
  private readonly audioStore: PacketStore;
  private readonly videoStore: PacketStore;
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
  private krPending = false;
  private lastKrAt = -Infinity;
  private firSeq = 0;
  private keyframeRequestsSent = 0;
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
    this.krIntervalMs = opts.keyframeRequestIntervalMs ?? 1000;
    this.replayIntervalMs = opts.replayIntervalMs ?? 1000;
    this.replaySpacingMs = opts.replayFrameSpacingMs ?? 1;
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
    for (const c of this.audioClasses) c.bind(params.audio?.extensions, this.strip);
    for (const c of this.videoClasses) c.bind(params.video?.extensions, this.strip);
    this.ntpOffset = NaN;
    this.inspector?.reset();
    this.requestKeyframe(this.now());
  }

  /** The publisher went away. Sinks stay connected and resume with the next source's first keyframe. */
  clearSource(): void {
    if (!this.source) return;
    this.source = undefined;
    this.audioIn.endEpoch();
    this.videoIn.endEpoch();
    this.resetVideoStart();
    this.ntpOffset = NaN;
    this.krPending = false;
  }

  private resetVideoStart(): void {
    this.videoStore.clearGop();
    this.auTs = -1;
    this.auHasIdr = false;
    for (const c of this.videoClasses) for (const m of c.sinks) m.started = false;
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
    const len = packet.length;
    const info = parseRtpHeader(packet, len, this.info);
    if (info === undefined) {
      ing.malformed++;
      return;
    }
    if (info.payloadType !== params.payloadType) {
      if (info.payloadType === params.rtxPayloadType) ing.rtxDropped++;
      else ing.unknownPayloadType++;
      return;
    }
    const now = this.now();
    if (!ing.accept(info, now)) return;
    if (ing.newEpoch && video) this.onVideoEpoch(now);
    if (info.payloadLength === 0) {
      ing.padding();
      return;
    }
    const store = video ? this.videoStore : this.audioStore;
    const r = ing.curExt + ing.seqDelta;
    if (store.has(r)) {
      ing.duplicates++;
      return;
    }
    const t = ing.curTsExt + ing.tsDelta;
    const view = store.put(r, t, packet, len);
    if (view === undefined) {
      ing.tooOld++;
      return;
    }
    ing.commit(info, len, now);
    if (!video) {
      this.forward(this.audioClasses, view, r, t, false);
      return;
    }
    let keyframe = false;
    if (r === store.highest && t !== this.auTs) {
      this.auTs = t;
      this.auStart = r;
      this.auHasIdr = false;
    }
    const h = this.h264;
    if (analyzeH264Payload(view, info.payloadOffset, info.payloadLength, h) && h.idrStart && !this.auHasIdr && t === this.auTs) {
      this.auHasIdr = true;
      keyframe = true;
      store.startGop(this.auStart, t);
      this.krPending = false;
    }
    if (this.inspector !== undefined) this.inspector.push(view, info.payloadOffset, info.payloadLength, info.timestamp);
    if (this.krPending) this.flushKeyframeRequest(now);
    this.forward(this.videoClasses, view, r, t, keyframe);
    if (keyframe) this.onKeyframe(now);
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
        if (m.started) continue;
        const n = this.replay(m, now);
        if (n > 0) {
          started++;
          this.emit('sink-started', { sinkId: m.port.id, replayedPackets: n });
        }
      }
    }
    const ev: KeyframeEvent = { at: now, sinksStarted: started };
    if (prev !== undefined) ev.intervalMs = now - prev;
    this.emit('keyframe', ev);
  }

  /**
   * Send the keyframe cache to one sink, re-sequenced to continue its numbering and re-timestamped so
   * the cached frames sit in a tiny span just before the live timestamp; then live packets continue
   * from there. Returns the number of packets sent.
   */
  private replay(m: SinkMunger, now: number): number {
    const store = this.videoStore;
    if (!store.hasGop() || store.highest < 0) return 0;
    const cls = m.cls!;
    const spacing = Math.max(1, Math.round((m.clockRate * this.replaySpacingMs) / 1000));
    const tLive = store.highestTs;
    const degraded = store.degraded;
    // First pass: packets and frames to replay.
    let frames = 0;
    let n = 0;
    let prevTs = NaN;
    let r0 = -1;
    if (degraded) {
      for (let k = 0; k < store.kfTss.length; k++) {
        if (store.kfTss[k] !== prevTs) frames++;
        prevTs = store.kfTss[k]!;
        n++;
      }
    } else {
      for (let s = store.gopStart; s <= store.highest; s++) {
        if (!store.has(s)) continue;
        if (r0 < 0) r0 = s;
        const ts = store.tsOf(s);
        if (ts !== prevTs) frames++;
        prevTs = ts;
        n++;
      }
    }
    if (n === 0) return 0;
    const lastIsLive = prevTs === tLive;
    const natural = m.hasOffsets ? tLive + m.tsOff : tLive + Math.floor(this.random() * 0x80000000);
    let L = natural;
    const minL = m.lastTsOutExt + (frames + 1) * spacing;
    if (L < minL) L = minL;
    const seqStart = m.nextSeqExt;
    // Second pass: send.
    let frame = -1;
    prevTs = NaN;
    let k = 0;
    const info = this.info2;
    if (degraded) {
      for (; k < store.kfViews.length; k++) {
        const view = store.kfViews[k]!;
        const ts = store.kfTss[k]!;
        if (ts !== prevTs) frame++;
        prevTs = ts;
        if (!parseRtpHeader(view, view.length, info)) continue;
        const back = lastIsLive ? frames - 1 - frame : frames - frame;
        const out = this.prepare(cls, view, info);
        this.send(m, out, seqStart + k, L - back * spacing, store.kfSeqs[k]!, info.payloadLength);
      }
      m.seqOff = seqStart + k - (store.highest + 1);
    } else {
      for (let s = r0; s <= store.highest; s++) {
        const view = store.get(s);
        if (view === undefined) continue;
        const ts = store.tsOf(s);
        if (ts !== prevTs) frame++;
        prevTs = ts;
        if (!parseRtpHeader(view, view.length, info)) continue;
        const back = frames - 1 - frame;
        const out = this.prepare(cls, view, info);
        this.send(m, out, seqStart + (s - r0), L - back * spacing, s, info.payloadLength);
        k++;
      }
      m.seqOff = seqStart - r0;
    }
    m.tsOff = L - tLive;
    m.hasOffsets = true;
    m.started = true;
    m.minRouterSeq = store.highest + 1;
    if (m.nextSeqExt < store.highest + 1 + m.seqOff) m.nextSeqExt = store.highest + 1 + m.seqOff;
    m.keyframes++;
    m.replays++;
    m.replayedPackets += k;
    m.lastReplayAt = now;
    return k;
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
      if (this.source && this.videoStore.hasGop()) {
        const n = this.replay(video, now);
        if (n > 0) this.emit('sink-started', { sinkId: port.id, replayedPackets: n });
      }
      if (!video.started) this.requestKeyframe(now);
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
    const cur = new RtcpCursor();
    const now = this.now();
    while (nextRtcpPacket(packet, packet.length, cur)) {
      const pt = cur.packetType;
      if (pt !== RTCP_RR && pt !== RTCP_SR && pt !== RTCP_RTPFB && pt !== RTCP_PSFB) continue;
      const p = parseRtcpPacket(packet, cur.offset, cur.length);
      if (!p) continue;
      switch (p.type) {
        case 'rr':
        case 'sr':
          for (const b of p.reports) this.onSinkReport(sink, b, now);
          break;
        case 'nack': {
          const m = this.mungerBySsrc(sink, p.mediaSsrc);
          if (m) for (const seq of p.lost) this.resend(m, seq);
          break;
        }
        case 'pli':
          if (sink.video && (p.mediaSsrc === sink.video.ssrc || p.mediaSsrc === 0)) this.onSinkKeyframeRequest(sink.video, now);
          break;
        case 'fir':
          if (sink.video && p.entries.some((e) => e.ssrc === sink.video!.ssrc)) this.onSinkKeyframeRequest(sink.video, now);
          break;
        case 'remb':
          sink.rembBps = p.bitrate;
          break;
        default:
          break;
      }
    }
  }

  private mungerBySsrc(sink: Sink, ssrc: number): SinkMunger | undefined {
    if (sink.video && sink.video.ssrc === ssrc) return sink.video;
    if (sink.audio && sink.audio.ssrc === ssrc) return sink.audio;
    return undefined;
  }

  private onSinkReport(sink: Sink, b: ReportBlock, now: number): void {
    const m = this.mungerBySsrc(sink, b.ssrc);
    if (!m) return;
    m.fractionLost = b.fractionLost / 256;
    m.cumulativeLost = b.cumulativeLost;
    m.jitter = (b.jitter * 1000) / m.clockRate;
    if (b.lsr !== 0) {
      const rtt = ((ntpMiddle32(now) - b.lsr - b.dlsr) >>> 0) / 65.536;
      if (rtt < 60_000) m.rttMs = rtt;
    }
  }

  private onSinkKeyframeRequest(m: SinkMunger, now: number): void {
    m.plis++;
    if (this.source && this.videoStore.hasGop() && now - m.lastReplayAt >= this.replayIntervalMs) {
      const n = this.replay(m, now);
      if (n > 0) this.emit('sink-started', { sinkId: m.port.id, replayedPackets: n });
    }
    this.requestKeyframe(now);
  }

  private resend(m: SinkMunger, seq: number): void {
    m.nacks++;
    const i = m.lookup(seq & 0xffff);
    const store = m.kind === 'video' ? this.videoStore : this.audioStore;
    const view = i < 0 ? undefined : store.get(m.ringRouter[i]!);
    const cls = m.cls;
    if (view === undefined || !cls || !parseRtpHeader(view, view.length, this.info2)) {
      m.nackMisses++;
      return;
    }
    const out = this.prepare(cls, view, this.info2);
    out[1] = (out[1]! & 0x80) | m.payloadType;
    setRtpSequence(out, m.ringOut[i]!);
    setRtpTimestamp(out, m.ringTs[i]!);
    setRtpSsrc(out, m.ssrc);
    try {
      m.port.sendRtp(m.kind, out);
    } catch {
      m.sendErrors++;
    }
    m.retransmitted++;
    m.packets++;
    m.bytes += out.length;
  }

  /** Ask the publisher for a keyframe, at most once per interval (PLI, or FIR when 'ccm fir' was negotiated). */
  requestKeyframe(now: number = this.now()): void {
    if (!this.source || !this.videoIn.params) return;
    if (this.videoIn.ssrc < 0 || now - this.lastKrAt < this.krIntervalMs) {
      this.krPending = true;
      return;
    }
    this.sendKeyframeRequest(now);
  }

  private flushKeyframeRequest(now: number): void {
    if (this.source && this.videoIn.ssrc >= 0 && now - this.lastKrAt >= this.krIntervalMs) this.sendKeyframeRequest(now);
  }

  private sendKeyframeRequest(now: number): void {
    this.krPending = false;
    this.lastKrAt = now;
    this.keyframeRequestsSent++;
    const fir = this.videoIn.params?.rtcpFeedback?.includes('ccm fir') ?? false;
    const pkt = fir ? buildFir(this.ssrc, this.videoIn.ssrc, this.firSeq++ & 0xff) : buildPli(this.ssrc, this.videoIn.ssrc);
    try {
      this.source!.sendRtcp(pkt);
    } catch {
      // The transport is going away; the next source will be asked again.
    }
  }

  /**
   * Once a second: receiver report to the source, a sender report to every sink, pending keyframe
   * requests (also when the cache holds no keyframe), and the 'source-stats' event.
   */
  tick(now: number = this.now()): void {
    if (this.closed) return;
    if (this.source) {
      if (this.videoIn.params && this.videoIn.ssrc >= 0 && !this.videoStore.hasGop()) this.requestKeyframe(now);
      else if (this.krPending) this.flushKeyframeRequest(now);
      const blocks: ReportBlock[] = [];
      const a = this.audioIn.reportBlock(now);
      if (a) blocks.push(a);
      const v = this.videoIn.reportBlock(now);
      if (v) blocks.push(v);
      if (blocks.length > 0) {
        try {
          this.source.sendRtcp(buildReceiverReport({ ssrc: this.ssrc, reports: blocks }));
        } catch {
          // counted nowhere: the transport reports its own failures
        }
      }
    }
    const ntp = ntpFromUnixMs(now);
    for (const sink of this.sinks.values()) {
      let a: Uint8Array | undefined;
      let v: Uint8Array | undefined;
      if (sink.audio && sink.audio.packets > 0) a = this.senderReport(sink.audio, this.audioIn, ntp, now);
      if (sink.video && sink.video.packets > 0) v = this.senderReport(sink.video, this.videoIn, ntp, now);
      if (!a && !v) continue;
      try {
        sink.port.sendRtcp(a && v ? concatRtcp([a, v]) : (a ?? v)!);
      } catch {
        if (sink.video) sink.video.sendErrors++;
      }
    }
    const bytes = this.audioIn.bytes + this.videoIn.bytes;
    if (this.lastTickAt === this.lastTickAt && now > this.lastTickAt) this.bitrateBps = Math.round(((bytes - this.lastTickBytes) * 8000) / (now - this.lastTickAt));
    this.lastTickAt = now;
    this.lastTickBytes = bytes;
    this.emit('source-stats', this.sourceStats());
  }

  private senderReport(m: SinkMunger, ing: Ingress, ntp: { sec: number; frac: number }, now: number): Uint8Array {
    m.srSent++;
    const rtp = ing.routerTsAt(now, this.ntpOffset) + m.tsOff;
    return buildSenderReport({
      ssrc: m.ssrc,
      ntpSec: ntp.sec,
      ntpFrac: ntp.frac,
      rtpTimestamp: Math.round(rtp) >>> 0,
      packetCount: m.packets,
      octetCount: m.octets,
    });
  }

  sourceStats(): SourceStats {
    const s: SourceStats = {
      online: this.source !== undefined,
      packetsReceived: this.audioIn.packets + this.videoIn.packets,
      bytesReceived: this.audioIn.bytes + this.videoIn.bytes,
      keyframesReceived: this.keyframesReceived,
      bitrateBps: this.bitrateBps,
      lost: this.audioIn.lost() + this.videoIn.lost(),
      plisSent: this.keyframeRequestsSent,
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
      ingress: { audio: ingressCounters(this.audioIn), video: ingressCounters(this.videoIn) },
      cache: {
        video: { ...this.videoStore.footprint(), gopPackets: this.videoStore.gopPackets, gopDegraded: this.videoStore.degraded },
        audio: this.audioStore.footprint(),
      },
      keyframeRequestsSent: this.keyframeRequestsSent,
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
    for (const s of [...this.sinks.values()]) s.close();
    this.source = undefined;
    this.videoStore.clear();
    this.audioStore.clear();
    this.emit('close');
    this.removeAllListeners();
  }
}

function ingressCounters(i: Ingress): IngressCounters {
  const c: IngressCounters = {
    packets: i.packets,
    bytes: i.bytes,
    lost: i.lost(),
    jitterMs: i.jitterMs(),
    epochs: i.epochs,
    malformed: i.malformed,
    rtxDropped: i.rtxDropped,
    paddingDropped: i.paddingDropped,
    unknownPayloadType: i.unknownPayloadType,
    foreignSsrc: i.foreignSsrc,
    duplicates: i.duplicates,
    tooOld: i.tooOld,
    unmappable: i.unmappable,
  };
  if (i.ssrc >= 0) c.ssrc = i.ssrc;
  return c;
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
