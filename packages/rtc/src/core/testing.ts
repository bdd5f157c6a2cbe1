/**
 * In-memory fakes and a synthetic H.264/Opus RTP generator for tests and benchmarks of the core.
 * No I/O. Not used by the packet path.
 */
import { buildRtpPacket, parseRtpHeader, RtpInfo } from '../codec/rtp.js';
import type { MediaKind, SinkPort, SourcePort, StreamParams } from './types.js';

export interface RecordedRtp {
  kind: MediaKind;
  seq: number;
  ts: number;
  ssrc: number;
  pt: number;
  marker: boolean;
  bytes: Uint8Array;
}

/** A SinkPort that copies and records everything it is given. */
export class FakeSinkPort implements SinkPort {
  readonly id: string;
  readonly audio?: StreamParams;
  readonly video?: StreamParams;
  readonly rtp: RecordedRtp[] = [];
  readonly rtcp: Uint8Array[] = [];
  /** When false, packets are only counted (benchmarks). */
  record: boolean;
  count = 0;
  private readonly info = new RtpInfo();

  constructor(id: string, params: { audio?: StreamParams; video?: StreamParams }, record = true) {
    this.id = id;
    if (params.audio) this.audio = params.audio;
    if (params.video) this.video = params.video;
    this.record = record;
  }
  sendRtp(kind: MediaKind, packet: Uint8Array): void {
    this.count++;
    if (!this.record) return;
    const info = parseRtpHeader(packet, packet.length, this.info);
    if (!info) throw new Error('router sent an unparsable RTP packet');
    this.rtp.push({ kind, seq: info.sequence, ts: info.timestamp, ssrc: info.ssrc, pt: info.payloadType, marker: info.marker, bytes: packet.slice() });
  }
  sendRtcp(packet: Uint8Array): void {
    this.rtcp.push(packet.slice());
  }
  of(kind: MediaKind): RecordedRtp[] {
    return this.rtp.filter((p) => p.kind === kind);
  }
}

export class FakeSourcePort implements SourcePort {
  readonly rtcp: Uint8Array[] = [];
  sendRtcp(packet: Uint8Array): void {
    this.rtcp.push(packet.slice());
  }
}

export const OPUS: StreamParams = { kind: 'audio', ssrc: 0, payloadType: 111, clockRate: 48000, extensions: {} };
export const H264: StreamParams = { kind: 'video', ssrc: 0, payloadType: 96, clockRate: 90000, extensions: {}, rtxPayloadType: 97 };

/** mulberry32: a small seeded PRNG for reproducible tests and fuzzing. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Synthetic publisher: H.264 (SPS+PPS+IDR as STAP-A + FU-A, then P frames of `packetsPerFrame`
 * FU-A fragments) and Opus, with its own SSRCs and starting sequence numbers / timestamps.
 */
export class SyntheticPublisher {
  videoSsrc: number;
  audioSsrc: number;
  videoSeq: number;
  audioSeq: number;
  videoTs: number;
  audioTs: number;
  fps = 30;
  packetsPerFrame: number;
  payloadBytes: number;
  videoPt = 96;
  audioPt = 111;
  extensions: Array<{ id: number; data: Uint8Array }> = [];

  constructor(opts: { videoSsrc: number; audioSsrc: number; videoSeq: number; audioSeq: number; videoTs: number; audioTs: number; packetsPerFrame?: number; payloadBytes?: number }) {
    this.videoSsrc = opts.videoSsrc;
    this.audioSsrc = opts.audioSsrc;
    this.videoSeq = opts.videoSeq & 0xffff;
    this.audioSeq = opts.audioSeq & 0xffff;
    this.videoTs = opts.videoTs >>> 0;
    this.audioTs = opts.audioTs >>> 0;
    this.packetsPerFrame = opts.packetsPerFrame ?? 3;
    this.payloadBytes = opts.payloadBytes ?? 1000;
  }

  private rtp(pt: number, ssrc: number, seq: number, ts: number, marker: boolean, payload: Uint8Array): Uint8Array {
    return buildRtpPacket({ payloadType: pt, sequence: seq, timestamp: ts, ssrc, marker, payload, extensions: this.extensions });
  }

  /** One video frame as RTP packets; a keyframe starts with a STAP-A of SPS+PPS. Advances seq and ts. */
  videoFrame(keyframe: boolean): Uint8Array[] {
    const out: Uint8Array[] = [];
    const ts = this.videoTs;
    if (keyframe) {
      // Constrained Baseline 640x480 SPS (x264), a PPS, as one STAP-A.
      const sps = SPS_CB_640x480;
      const pps = Uint8Array.of(0x68, 0xce, 0x3c, 0x80);
      const stap = new Uint8Array(1 + 2 + sps.length + 2 + pps.length);
      stap[0] = 0x78;
      stap[1] = sps.length >> 8;
      stap[2] = sps.length & 0xff;
      stap.set(sps, 3);
      stap[3 + sps.length] = pps.length >> 8;
      stap[4 + sps.length] = pps.length & 0xff;
      stap.set(pps, 5 + sps.length);
      out.push(this.rtp(this.videoPt, this.videoSsrc, this.videoSeq, ts, false, stap));
      this.videoSeq = (this.videoSeq + 1) & 0xffff;
    }
    const nalType = keyframe ? 5 : 1;
    const nri = 0x60;
    for (let i = 0; i < this.packetsPerFrame; i++) {
      const p = new Uint8Array(this.payloadBytes);
      p[0] = nri | 28;
      p[1] = (i === 0 ? 0x80 : 0) | (i === this.packetsPerFrame - 1 ? 0x40 : 0) | nalType;
      // Slice header: first_mb_in_slice = 0 (ue "1"), slice_type = 7 (I) or 5 (P) (ue), then filler.
      p[2] = keyframe ? 0x88 : 0x98;
      for (let k = 3; k < p.length; k++) p[k] = (k * 7 + this.videoSeq) & 0xff;
      out.push(this.rtp(this.videoPt, this.videoSsrc, this.videoSeq, ts, i === this.packetsPerFrame - 1, p));
      this.videoSeq = (this.videoSeq + 1) & 0xffff;
    }
    this.videoTs = (this.videoTs + 90000 / this.fps) >>> 0;
    return out;
  }

  /** One 20-ms Opus packet. */
  audioPacket(): Uint8Array {
    const p = new Uint8Array(80).fill(0xfc);
    const pkt = this.rtp(this.audioPt, this.audioSsrc, this.audioSeq, this.audioTs, false, p);
    this.audioSeq = (this.audioSeq + 1) & 0xffff;
    this.audioTs = (this.audioTs + 960) >>> 0;
    return pkt;
  }
}

/** x264-style Constrained Baseline SPS, 640x480, level 3.0 (67 42 c0 1e …). */
export const SPS_CB_640x480 = Uint8Array.of(0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x3d, 0xa1, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x8f, 0x16, 0x2e, 0x48);
