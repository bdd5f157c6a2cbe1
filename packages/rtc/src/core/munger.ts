/**
 * Per sink and kind: the sink's own SSRC / payload type / extension class, the offsets that map the
 * router's sequence and timestamp space into the sink's, and a ring of what was sent (out seq →
 * router seq + out timestamp) so NACKs are answered with the sink's own numbering.
 * Offsets only change at a (re)start — a keyframe replay — so the live path is two additions.
 */
import type { MediaKind, SinkPort, StreamParams } from './types.js';
import type { ExtClass } from './ext-class.js';
import type { ReplayState } from './replay.js';

export class SinkMunger {
  readonly kind: MediaKind;
  readonly params: StreamParams;
  readonly ssrc: number;
  readonly payloadType: number;
  readonly clockRate: number;
  readonly port: SinkPort;
  cls: ExtClass | undefined;
  /** Live packets flow to this sink (video: it has had a keyframe since it joined / the source changed). */
  started = false;
  /** Offsets applied to router seq / ts; `hasOffsets` once a first start chose them. */
  seqOff = 0;
  tsOff = 0;
  hasOffsets = false;
  /** Next unused extended out sequence number; last extended out timestamp sent (-Infinity: none). */
  nextSeqExt: number;
  lastTsOutExt = -Infinity;
  /** Live packets older than this router seq are not sent (they precede the sink's start). */
  minRouterSeq = 0;
  readonly ringMask: number;
  readonly ringOut: Float64Array;
  readonly ringRouter: Float64Array;
  readonly ringTs: Float64Array;
  /** Per ring slot: when it was last resent, and how often (NACK de-duplication). */
  readonly ringResentAt: Float64Array;
  readonly ringResends: Uint8Array;
  /** Retransmission budget (token bucket, packets). */
  resendTokens = 0;
  resendTokensAt = NaN;
  /** A paced keyframe-cache replay in progress (video): live packets wait until it has caught up. */
  replay: ReplayState | undefined;
  // Counters.
  packets = 0;
  bytes = 0;
  /** Payload octets (for the SR). */
  octets = 0;
  keyframes = 0;
  replays = 0;
  nacks = 0;
  retransmitted = 0;
  nackMisses = 0;
  /** NACKed packets not resent: de-duplicated, resent too often already, or over the budget. */
  nackSuppressed = 0;
  plis = 0;
  // From the sink's receiver reports.
  fractionLost = 0;
  cumulativeLost = 0;
  jitter = 0;
  rttMs: number | undefined;
  srSent = 0;
  sendErrors = 0;

  constructor(kind: MediaKind, port: SinkPort, params: StreamParams, ringSize: number, random: () => number) {
    this.kind = kind;
    this.port = port;
    this.params = params;
    this.ssrc = params.ssrc !== 0 ? params.ssrc >>> 0 : (Math.floor(random() * 0xfffffffe) + 1) >>> 0;
    this.payloadType = params.payloadType & 0x7f;
    this.clockRate = params.clockRate > 0 ? params.clockRate : kind === 'audio' ? 48000 : 90000;
    // Random initial sequence number (RFC 3550 §5.1).
    this.nextSeqExt = Math.floor(random() * 0x10000);
    this.ringMask = ringSize - 1;
    this.ringOut = new Float64Array(ringSize).fill(-1);
    this.ringRouter = new Float64Array(ringSize);
    this.ringTs = new Float64Array(ringSize);
    this.ringResentAt = new Float64Array(ringSize).fill(-Infinity);
    this.ringResends = new Uint8Array(ringSize);
  }

  /** Look up an out sequence number (16-bit) in the ring; returns the ring index or -1. */
  lookup(seq: number): number {
    const i = seq & this.ringMask;
    const out = this.ringOut[i]!;
    return out >= 0 && (out & 0xffff) === seq ? i : -1;
  }
}
