/** WHIP (RFC 9725), server side: a publisher's session delivers its RTP and RTCP, and takes RTCP back. */
import type { MediaKind, SourcePort, StreamParams } from '../core/types.js';
import { SignallingEndpoint, type EndpointOptions } from './endpoint.js';
import { Peer } from './peer.js';
import { acceptOffer, addLocalTrack, answerOffer, sourceParams } from './offer.js';
import { MediaSessionBase, type SessionStats } from './session.js';
import { receiveFrom, type ReceiveHandlers, type TrackHandle } from './track-io.js';

export class WhipSession extends MediaSessionBase {
  readonly params: { audio?: StreamParams; video?: StreamParams } = {};
  readonly sourcePort: SourcePort;
  private readonly handlers: ReceiveHandlers = { rtp: undefined, rtcp: undefined };
  private readonly tracks: TrackHandle[] = [];
  private mediaTimer: NodeJS.Timeout | undefined;

  constructor(peer: Peer, remoteUfrag: string | undefined, firstMid: string) {
    super(peer, remoteUfrag, firstMid);
    this.sourcePort = {
      sendRtcp: (packet: Uint8Array) => {
        const t = this.tracks.find((x) => x.kind === 'video' && x.open) ?? this.tracks.find((x) => x.open);
        t?.send(packet);
      },
    };
  }

  /** @internal */
  attach(t: TrackHandle, params: StreamParams): void {
    this.tracks.push(t);
    this.params[t.kind] = params;
    receiveFrom(t, this.handlers);
  }

  /** Every RTP packet of the publisher. The buffer is only valid during the call. */
  onRtp(fn: (kind: MediaKind, packet: Uint8Array) => void): void {
    this.handlers.rtp = fn;
  }
  /** Every RTCP packet of the publisher (SR, SDES, …). */
  onRtcp(fn: (packet: Uint8Array) => void): void {
    this.handlers.rtcp = fn;
  }
  /** RTP bytes received (node-datachannel's pc.bytesReceived() counts only SCTP, so it is 0 for media). */
  bytesReceived(): number {
    return (this.handlers.rtpBytes ?? 0) + this.peer.bytesReceived();
  }
  get packetsReceived(): number {
    return this.handlers.rtpPackets ?? 0;
  }
  get rtpBytesReceived(): number {
    return this.handlers.rtpBytes ?? 0;
  }

  override stats(): SessionStats {
    const st = super.stats();
    return { ...st, bytesReceived: st.bytesReceived + (this.handlers.rtpBytes ?? 0), packetsReceived: this.handlers.rtpPackets ?? 0, rtcpReceived: this.handlers.rtcpPackets ?? 0 };
  }

  /**
   * Closes the session ('media timeout') when a connected publisher sends no RTP or RTCP for `timeoutMs` (checked
   * every timeoutMs, so it fires after timeoutMs…2×timeoutMs). ICE consent freshness (libjuice: ~30 s) is the fallback.
   * @internal
   */
  watchMedia(timeoutMs: number): void {
    if (timeoutMs <= 0) return;
    let last = -1;
    this.mediaTimer = setInterval(() => {
      if (this.state !== 'connected') return;
      const now = (this.handlers.rtpPackets ?? 0) + (this.handlers.rtcpPackets ?? 0);
      if (now === last) this.close('media timeout');
      last = now;
    }, timeoutMs);
    this.mediaTimer.unref();
  }

  protected override onClose(): void {
    clearInterval(this.mediaTimer);
    this.handlers.rtp = undefined;
    this.handlers.rtcp = undefined;
  }
}

export interface WhipEndpointOptions extends EndpointOptions<WhipSession> {
  /**
   * Close a connected session that sends no RTP/RTCP for this long. Default 0 = off: a vanished peer is then closed
   * when ICE consent fails (libjuice: ~30 s). Off by default because a silent but live publisher (e.g. a media
   * server's leg waiting for its broadcaster; a libdatachannel sender with no media handler sends no RTCP) is legal.
   */
  mediaTimeoutMs?: number;
}

export class WhipEndpoint extends SignallingEndpoint<WhipSession> {
  constructor(o: WhipEndpointOptions) {
    super(o, async (offer, sd) => {
      const { sections, ufrag } = acceptOffer(sd, ['sendonly', 'sendrecv']);
      const peer = new Peer({ name: 'whip', ...(o.bindAddress ? { bindAddress: o.bindAddress } : {}) });
      const session = new WhipSession(peer, ufrag, sections[0]!.mid);
      try {
        for (const s of sections) session.attach(addLocalTrack(peer, s, 'RecvOnly'), sourceParams(s));
        const answer = await answerOffer(peer, offer, o.gatherTimeoutMs);
        session.watchMedia(o.mediaTimeoutMs ?? 0);
        return { session, answer };
      } catch (err) {
        session.close('offer refused');
        throw err;
      }
    }, (sd) => void acceptOffer(sd, ['sendonly', 'sendrecv']));
  }
}
