/**
 * RTCP from a sink's peer (a viewer, a stage): receiver reports, NACKs, keyframe requests, REMB.
 *
 * - NACKs are answered from the packet store with the sink's own numbering. Each sink has a retransmission budget
 *   (a token bucket in packets per second) and each packet is resent at most once per `dedupeMs` and at most
 *   `maxResends` times, so a hostile peer cannot make us resend the store in a loop.
 * - A PLI or FIR from a sink that is playing goes upstream (the keyframe requester coalesces them); a sink still
 *   waiting for its start is already owed a keyframe. Nothing is replayed into a playing sink.
 */
import { RTCP_PSFB, RTCP_RR, RTCP_RTPFB, RTCP_SR, RtcpCursor, nextRtcpPacket, ntpMiddle32, parseRtcpPacket, type ReportBlock } from '../codec/rtcp.js';
import { parseRtpHeader, RtpInfo, setRtpSequence, setRtpSsrc, setRtpTimestamp } from '../codec/rtp.js';
import type { ExtClass } from './ext-class.js';
import type { SinkMunger } from './munger.js';
import type { PacketStore } from './packet-store.js';
import type { Sink } from './sink.js';

export interface FeedbackHost {
  store(kind: 'audio' | 'video'): PacketStore;
  prepare(cls: ExtClass, view: Uint8Array, parsed: RtpInfo): Uint8Array;
  /** A playing sink asked for a keyframe. */
  keyframeRequested(m: SinkMunger, now: number): void;
}

export interface NackPolicy {
  /** Retransmissions per second per sink and kind (token bucket rate and depth). */
  ratePerSec: number;
  /** The same packet is not resent to the same sink twice within this long. */
  dedupeMs: number;
  /** Times one packet is resent to one sink at most. */
  maxResends: number;
}

export const DEFAULT_NACK_POLICY: NackPolicy = { ratePerSec: 250, dedupeMs: 15, maxResends: 5 };

export class SinkFeedback {
  private readonly cursor = new RtcpCursor();
  private readonly info = new RtpInfo();

  constructor(
    private readonly host: FeedbackHost,
    private readonly policy: NackPolicy,
  ) {}

  handle(sink: Sink, packet: Uint8Array, now: number): void {
    const cur = this.cursor;
    cur.pos = 0;
    while (nextRtcpPacket(packet, packet.length, cur)) {
      const pt = cur.packetType;
      if (pt !== RTCP_RR && pt !== RTCP_SR && pt !== RTCP_RTPFB && pt !== RTCP_PSFB) continue;
      const p = parseRtcpPacket(packet, cur.offset, cur.length);
      if (!p) continue;
      switch (p.type) {
        case 'rr':
        case 'sr':
          for (const b of p.reports) this.onReport(sink, b, now);
          break;
        case 'nack': {
          const m = mungerBySsrc(sink, p.mediaSsrc);
          if (m) for (const seq of p.lost) this.resend(m, seq, now);
          break;
        }
        case 'pli':
          if (sink.video && (p.mediaSsrc === sink.video.ssrc || p.mediaSsrc === 0)) this.onKeyframeRequest(sink.video, now);
          break;
        case 'fir':
          if (sink.video && p.entries.some((e) => e.ssrc === sink.video!.ssrc)) this.onKeyframeRequest(sink.video, now);
          break;
        case 'remb':
          sink.rembBps = p.bitrate;
          break;
        default:
          break;
      }
    }
  }

  private onReport(sink: Sink, b: ReportBlock, now: number): void {
    const m = mungerBySsrc(sink, b.ssrc);
    if (!m) return;
    m.fractionLost = b.fractionLost / 256;
    m.cumulativeLost = b.cumulativeLost;
    m.jitter = (b.jitter * 1000) / m.clockRate;
    if (b.lsr !== 0) {
      const rtt = ((ntpMiddle32(now) - b.lsr - b.dlsr) >>> 0) / 65.536;
      if (rtt < 60_000) m.rttMs = rtt;
    }
  }

  private onKeyframeRequest(m: SinkMunger, now: number): void {
    m.plis++;
    this.host.keyframeRequested(m, now);
  }

  private resend(m: SinkMunger, seq: number, now: number): void {
    m.nacks++;
    const i = m.lookup(seq & 0xffff);
    if (i < 0) {
      m.nackMisses++;
      return;
    }
    if (now - m.ringResentAt[i]! < this.policy.dedupeMs || m.ringResends[i]! >= this.policy.maxResends) {
      m.nackSuppressed++;
      return;
    }
    // Token bucket, refilled by elapsed time.
    const rate = this.policy.ratePerSec;
    if (m.resendTokensAt !== m.resendTokensAt) m.resendTokens = rate;
    else m.resendTokens = Math.min(rate, m.resendTokens + ((now - m.resendTokensAt) * rate) / 1000);
    m.resendTokensAt = now;
    if (m.resendTokens < 1) {
      m.nackSuppressed++;
      return;
    }
    const view = this.host.store(m.kind).get(m.ringRouter[i]!);
    const cls = m.cls;
    if (view === undefined || !cls || !parseRtpHeader(view, view.length, this.info)) {
      m.nackMisses++;
      return;
    }
    m.resendTokens--;
    m.ringResentAt[i] = now;
    m.ringResends[i]!++;
    const out = this.host.prepare(cls, view, this.info);
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
}

function mungerBySsrc(sink: Sink, ssrc: number): SinkMunger | undefined {
  if (sink.video && sink.video.ssrc === ssrc) return sink.video;
  if (sink.audio && sink.audio.ssrc === ssrc) return sink.audio;
  return undefined;
}
