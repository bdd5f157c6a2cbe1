/**
 * Loss recovery toward the source: one NACK generator per kind (used when the source negotiated 'nack'), the NACK
 * packets they produce (RFC 4585, in a compound packet behind an empty RR), their retry timer, and RTX unwrapping
 * (RFC 4588) of the retransmissions that come back on their own SSRC.
 */
import { buildNack, buildReceiverReport, concatRtcp } from '../codec/rtcp.js';
import { setRtpSequence, setRtpSsrc, type RtpInfo } from '../codec/rtp.js';
import type { Ingress } from './ingress.js';
import { NackGenerator, type NackGeneratorOptions } from './nack-generator.js';
import type { SourcePort, StreamParams } from './types.js';

export interface SourceRecoveryHost {
  source(): SourcePort | undefined;
  now(): number;
  schedule(fn: () => void, ms: number): unknown;
  /** A video packet (source ext) will never arrive. */
  videoLost(ext: number): void;
  /** Packets were given up on (or skipped after a blackout): the picture needs a keyframe. */
  needKeyframe(now: number): void;
}

const RTX_BUF_BYTES = 16384;

export class SourceRecovery {
  readonly audio: NackGenerator;
  readonly video: NackGenerator;
  /** Where `unwrapRtx` writes the original packet. */
  readonly rtxBuf = new Uint8Array(RTX_BUF_BYTES);
  private audioOn = false;
  private videoOn = false;
  private timerAt = Infinity;
  private closed = false;
  private readonly scratch: number[] = [];
  private readonly onVideoLost = (ext: number) => this.host.videoLost(ext);
  private readonly onAudioLost = (_ext: number) => undefined;

  constructor(
    private readonly senderSsrc: number,
    private readonly audioIn: Ingress,
    private readonly videoIn: Ingress,
    private readonly host: SourceRecoveryHost,
    opts: NackGeneratorOptions = {},
  ) {
    this.audio = new NackGenerator(opts);
    this.video = new NackGenerator(opts);
  }

  /** A new source: NACK only the kinds it negotiated 'nack' for. */
  configure(audio: StreamParams | undefined, video: StreamParams | undefined): void {
    this.audioOn = audio?.rtcpFeedback?.includes('nack') ?? false;
    this.videoOn = video?.rtcpFeedback?.includes('nack') ?? false;
  }

  reset(kind?: 'audio' | 'video'): void {
    if (kind !== 'video') this.audio.reset();
    if (kind !== 'audio') this.video.reset();
  }

  /**
   * RFC 4588: an RTX packet carries the original sequence number (OSN) and then the original payload. Writes the
   * original packet into `rtxBuf` and returns its length, or -1 when it carries no media (a padding probe).
   */
  unwrapRtx(packet: Uint8Array, info: RtpInfo, ing: Ingress, payloadType: number): number {
    if (info.payloadLength <= 2 || ing.ssrc < 0) {
      ing.rtxPadding++;
      return -1;
    }
    const off = info.payloadOffset;
    const n = info.payloadLength - 2;
    if (off + n > RTX_BUF_BYTES) {
      ing.malformed++;
      return -1;
    }
    const osn = (packet[off]! << 8) | packet[off + 1]!;
    const out = this.rtxBuf;
    out.set(packet.subarray(0, off), 0);
    out.set(packet.subarray(off + 2, off + 2 + n), off);
    out[0] = out[0]! & ~0x20; // the original payload carries no padding of its own
    out[1] = (out[1]! & 0x80) | (payloadType & 0x7f);
    setRtpSequence(out, osn);
    setRtpSsrc(out, ing.ssrc);
    ing.rtxReceived++;
    return off + n;
  }

  /**
   * A packet (media or padding) numbered `ext` arrived — unwrapped from RTX when `viaRtx`, else on the media SSRC
   * (`rtxNegotiated`: then it is never a retransmission). Note gaps, and ask for what is missing when it is due.
   */
  noteArrival(video: boolean, ext: number, highestBefore: number, now: number, viaRtx = false, rtxNegotiated = false): void {
    if (video ? this.videoOn : this.audioOn) {
      const gen = video ? this.video : this.audio;
      const kind = viaRtx ? 'rtx' : rtxNegotiated ? 'media' : 'either';
      if (gen.onPacket(ext, highestBefore, now, video ? this.onVideoLost : this.onAudioLost, kind) > 0 && video) this.host.needKeyframe(now);
    }
    if (this.video.dueAt <= now || this.audio.dueAt <= now) this.flush(now);
    else this.armTimer(now);
  }

  /** Send the NACKs that are due and give up on what is past its bounds. */
  flush(now: number): void {
    const source = this.host.source();
    if (!source || this.closed) return;
    let givenVideo = 0;
    const parts: Uint8Array[] = [];
    for (const video of [true, false]) {
      const gen = video ? this.video : this.audio;
      const ing = video ? this.videoIn : this.audioIn;
      const out = this.scratch;
      out.length = 0;
      const given = gen.collect(now, out, video ? this.onVideoLost : this.onAudioLost);
      if (video) givenVideo = given;
      if (out.length > 0 && ing.ssrc >= 0) parts.push(buildNack(this.senderSsrc, ing.ssrc, out));
    }
    if (parts.length > 0) {
      parts.unshift(buildReceiverReport({ ssrc: this.senderSsrc, reports: [] }));
      try {
        source.sendRtcp(concatRtcp(parts));
      } catch {
        // the transport is going away
      }
    }
    if (givenVideo > 0) this.host.needKeyframe(now);
    this.armTimer(now);
  }

  /** NACK retries are due even when no packet arrives to trigger them (a burst loss, a pause). */
  private armTimer(now: number): void {
    const due = Math.min(this.video.dueAt, this.audio.dueAt);
    if (due === Infinity || due >= this.timerAt || this.closed) return;
    this.timerAt = due;
    this.host.schedule(
      () => {
        this.timerAt = Infinity;
        if (!this.closed) this.flush(this.host.now());
      },
      Math.max(1, Math.ceil(due - now)),
    );
  }

  close(): void {
    this.closed = true;
  }
}
