/**
 * Contract between the RTP fan-out core (`core/`, pure TypeScript, no I/O) and the WebRTC
 * transport (`transport/`, node-datachannel). The core never imports node-datachannel; the
 * transport adapts Tracks to these interfaces. All packet buffers are raw RTP / RTCP bytes
 * (after SRTP), as node-datachannel's Track.onMessage delivers them and sendMessageBinary takes them.
 */

export type MediaKind = 'audio' | 'video';

/** What the core needs to know of one negotiated media section on one side of the router. */
export interface StreamParams {
  kind: MediaKind;
  /** SSRC we send with (sink side) or that the source sends with (source side, 0 = learn from packets). */
  ssrc: number;
  /** Negotiated RTP payload type for the codec (H.264 packetization-mode=1 or Opus). */
  payloadType: number;
  clockRate: number;
  /** Negotiated header-extension ids by URI (RFC 8285); the core rewrites or strips ids per sink. */
  extensions: Record<string, number>;
  /** Payload type of RTX for this stream, when negotiated (we never send RTX; we receive and unwrap it). */
  rtxPayloadType?: number;
  /** H.264 SPS and PPS NAL units from the SDP's sprop-parameter-sets (source side), for a keyframe sent without them. */
  parameterSets?: Uint8Array[];
  /**
   * Negotiated a=rtcp-fb values for the codec (e.g. 'nack', 'nack pli', 'ccm fir', 'goog-remb').
   * Optional: the router sends FIR instead of PLI upstream only when 'ccm fir' is listed.
   */
  rtcpFeedback?: string[];
}

/** The publisher side: the router asks it for keyframes and tells it its receiver reports. */
export interface SourcePort {
  /** Send RTCP (PLI/FIR, RR, NACK) toward the publisher. */
  sendRtcp(packet: Uint8Array): void;
}

/** One downstream (a stage leg, a WHEP viewer): the router writes rewritten packets into it. */
export interface SinkPort {
  readonly id: string;
  readonly audio?: StreamParams;
  readonly video?: StreamParams;
  /** Send one RTP packet of `kind` (already rewritten for this sink). Must not keep a reference to `packet`. */
  sendRtp(kind: MediaKind, packet: Uint8Array): void;
  /** Send RTCP (sender reports) toward the sink. */
  sendRtcp(packet: Uint8Array): void;
}

export interface SinkStats {
  id: string;
  packetsSent: number;
  bytesSent: number;
  keyframesSent: number;
  nacksReceived: number;
  retransmitted: number;
  plisReceived: number;
  /** From the sink's receiver reports. */
  fractionLost: number;
  cumulativeLost: number;
  /** Interarrival jitter reported by the sink, in milliseconds. */
  jitter: number;
  rttMs?: number;
  /** The sink has received a decodable start (a keyframe) since it joined or the source changed. */
  started: boolean;
}

export interface SourceStats {
  online: boolean;
  packetsReceived: number;
  bytesReceived: number;
  keyframesReceived: number;
  bitrateBps: number;
  lost: number;
  plisSent: number;
  /** NACK entries sent to the publisher, packets recovered by them, packets given up on, RTX packets received. */
  nacksSent: number;
  recovered: number;
  lostForGood: number;
  rtxReceived: number;
  lastKeyframeAt?: number;
}
