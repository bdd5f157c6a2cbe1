/**
 * Stands between the broadcaster's session and the router and reads every video packet's H.264 before it is
 * forwarded: the SPS (profile, resolution) and each slice header's slice_type (B-frames). While IVS rules are
 * enforced, video waits for a conforming SPS, and a packet that breaks a refusing rule is dropped — as is
 * everything after it — so a refused stream never reaches an IVS leg. The first violation of each code is
 * reported once through `onViolation`; the owner (IngestService) decides to refuse or to warn.
 *
 * Packet path: one RTP header parse and one payload scan per video packet, into reused objects; the SPS and
 * slice-header readers run only on packets that carry one.
 */
import {
  analyzeH264Payload,
  checkIvsRules,
  H264PayloadInfo,
  h264SliceType,
  NAL_SLICE,
  NAL_SPS,
  parseH264Sps,
  parseRtpHeader,
  RtpInfo,
  SLICE_B,
  type H264StreamReport,
  type MediaKind,
} from '@stagecast/rtc';
import type { IngestSession } from '../media/ports.js';
import type { IvsPolicy } from './IvsPolicy.js';
import { isRefusing, type IvsRuleViolation } from './IvsRules.js';

export class IvsGate implements IngestSession {
  readonly id: string;
  readonly params: IngestSession['params'];
  readonly sourcePort: IngestSession['sourcePort'];
  /** Every violation seen so far (first of each code). */
  readonly violations: IvsRuleViolation[] = [];
  /** Set once a refusing violation was seen while enforcing: nothing more is forwarded. */
  blocked = false;
  videoDropped = 0;
  private spsSeen = false;
  private refusing = false;
  private bSlices = 0;
  private readonly rtp = new RtpInfo();
  private readonly h264 = new H264PayloadInfo();
  private readonly rtxPt: number;

  constructor(
    private readonly session: IngestSession,
    private readonly policy: IvsPolicy,
    private readonly onViolation: (gate: IvsGate, v: IvsRuleViolation) => void,
  ) {
    this.id = session.id;
    this.params = session.params;
    this.sourcePort = session.sourcePort;
    this.rtxPt = session.params.video?.rtxPayloadType ?? -1;
  }

  /** A refusing rule is broken (whether or not enforced when it was seen). */
  get hasRefusingViolation(): boolean {
    return this.refusing;
  }

  onRtp(fn: (kind: MediaKind, packet: Uint8Array) => void): void {
    this.session.onRtp((kind, packet) => {
      if (kind === 'video' && !this.pass(packet)) {
        this.videoDropped++;
        return;
      }
      if (!this.blocked) fn(kind, packet);
    });
  }

  onRtcp(fn: (packet: Uint8Array) => void): void {
    this.session.onRtcp(fn);
  }

  on(event: 'closed', listener: (reason: string) => void): unknown {
    return this.session.on(event, listener);
  }

  close(reason?: string): void {
    this.session.close(reason);
  }

  /** Blocks forwarding for good (the session is being refused). */
  block(): void {
    this.blocked = true;
  }

  private pass(packet: Uint8Array): boolean {
    if (this.blocked) return false;
    const enforcing = this.policy.enforcing;
    const info = parseRtpHeader(packet, packet.length, this.rtp);
    if (!info || info.payloadLength <= 0) return !enforcing || this.spsSeen;
    // An RTX packet carries the original payload after its 2-byte original sequence number.
    const skip = info.payloadType === this.rtxPt ? 2 : 0;
    const h = this.h264;
    if (!analyzeH264Payload(packet, info.payloadOffset + skip, info.payloadLength - skip, h)) return !enforcing || this.spsSeen;
    if (h.spsOffset >= 0 && h.nalMask & (1 << NAL_SPS)) this.checkSps(packet, h.spsOffset, h.spsEnd);
    if (h.sliceOffset >= 0 && h.sliceNalType === NAL_SLICE && h264SliceType(packet, h.sliceOffset, h.sliceEnd) === SLICE_B) this.noteB();
    if (this.refusing && enforcing) {
      this.blocked = true;
      return false;
    }
    // While enforcing, nothing goes out before an SPS has shown the stream's profile and size.
    return !enforcing || this.spsSeen;
  }

  private checkSps(buf: Uint8Array, start: number, end: number): void {
    const sps = parseH264Sps(buf, start, end);
    // An SPS we cannot read proves nothing: let the stream through rather than hold it forever.
    this.spsSeen = true;
    if (!sps) return;
    const report: H264StreamReport = { sps, width: sps.width, height: sps.height, bFramesSeen: false, bSlices: 0, frames: 0, keyframes: 0, bitrateBps: 0, maxBitrateBps: 0, spsChanges: 0 };
    for (const v of checkIvsRules(report)) this.note(v);
  }

  private noteB(): void {
    this.bSlices++;
    if (this.bSlices === 1) this.note({ code: 'B_FRAMES', message: 'B-frames seen in the stream; Amazon IVS does not accept B-frames' });
  }

  private note(v: IvsRuleViolation): void {
    if (this.violations.some((x) => x.code === v.code)) return;
    this.violations.push({ code: v.code, message: v.message });
    if (isRefusing(v)) this.refusing = true;
    this.onViolation(this, v);
  }
}
