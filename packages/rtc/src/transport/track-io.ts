/**
 * The packet edge between node-datachannel Tracks and the fan-out core: what a sending Track looks like as a
 * SinkPort, and how a receiving Track's buffers are split into RTP and RTCP. No closure or allocation per packet.
 */
import type { Track } from 'node-datachannel';
import type { MediaKind, SinkPort, StreamParams } from '../core/types.js';

/** RTCP packet types are 192–223 in the second byte (RFC 5761 §4). */
export function isRtcp(buf: Uint8Array): boolean {
  if (buf.length < 2) return false;
  const pt = buf[1]!;
  return pt >= 192 && pt <= 223;
}

/** A Track with a cheap open flag (no native call per packet). */
export class TrackHandle {
  open = false;
  constructor(
    readonly kind: MediaKind,
    readonly track: Track,
    /** Called once the track can send (node-datachannel takes one onOpen callback per track: this is it). */
    onOpen?: () => void,
  ) {
    track.onOpen(() => {
      this.open = true;
      onOpen?.();
    });
    track.onClosed(() => {
      this.open = false;
    });
  }
  send(packet: Uint8Array): boolean {
    if (!this.open) return false;
    try {
      return this.track.sendMessageBinary(packet as Buffer);
    } catch {
      return false;
    }
  }
}

export interface ReceiveHandlers {
  rtp: ((kind: MediaKind, packet: Uint8Array) => void) | undefined;
  rtcp: ((packet: Uint8Array) => void) | undefined;
  /** Counters, updated on every buffer (handlers set or not). */
  rtpPackets?: number;
  rtpBytes?: number;
  rtcpPackets?: number;
}

/** Routes a Track's incoming buffers to handlers that can be set later. */
export function receiveFrom(handle: TrackHandle, h: ReceiveHandlers): void {
  const kind = handle.kind;
  handle.track.onMessage((buf) => {
    // A throwing handler must not unwind into libdatachannel's callback thread.
    try {
      if (isRtcp(buf)) {
        h.rtcpPackets = (h.rtcpPackets ?? 0) + 1;
        h.rtcp?.(buf);
      } else {
        h.rtpPackets = (h.rtpPackets ?? 0) + 1;
        h.rtpBytes = (h.rtpBytes ?? 0) + buf.length;
        h.rtp?.(kind, buf);
      }
    } catch {
      /* a packet handler never throws out (untrusted input); the router counts its own drops */
    }
  });
}

/** A SinkPort over one video and/or one audio sending Track. */
export class TrackSinkPort implements SinkPort {
  packetsSent = 0;
  /** RTP bytes sent (node-datachannel's pc.bytesSent() counts only SCTP). */
  bytesSent = 0;
  sendFailures = 0;
  constructor(
    readonly id: string,
    private readonly tracks: { audio?: TrackHandle; video?: TrackHandle },
    readonly audio?: StreamParams,
    readonly video?: StreamParams,
  ) {}

  sendRtp(kind: MediaKind, packet: Uint8Array): void {
    const t = kind === 'video' ? this.tracks.video : this.tracks.audio;
    if (t && t.send(packet)) {
      this.packetsSent++;
      this.bytesSent += packet.length;
    } else this.sendFailures++;
  }

  sendRtcp(packet: Uint8Array): void {
    (this.tracks.video?.open ? this.tracks.video : this.tracks.audio)?.send(packet);
  }
}
