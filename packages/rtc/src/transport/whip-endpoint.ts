/** WHIP (RFC 9725), server side: a publisher's session delivers its RTP and RTCP, and takes RTCP back. */
import type { MediaKind, SourcePort, StreamParams } from '../core/types.js';
import { OfferRejected, SignallingEndpoint, type EndpointOptions } from './endpoint.js';
import { Peer, withRtcpMuxOnly } from './peer.js';
import { acceptOffer, addLocalTrack, sourceParams } from './offer.js';
import { MediaSessionBase } from './session.js';
import { receiveFrom, type ReceiveHandlers, type TrackHandle } from './track-io.js';

export class WhipSession extends MediaSessionBase {
  readonly params: { audio?: StreamParams; video?: StreamParams } = {};
  readonly sourcePort: SourcePort;
  private readonly handlers: ReceiveHandlers = { rtp: undefined, rtcp: undefined };
  private readonly tracks: TrackHandle[] = [];
  packetsReceived = 0;

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
  bytesReceived(): number {
    return this.peer.bytesReceived();
  }

  protected override onClose(): void {
    this.handlers.rtp = undefined;
    this.handlers.rtcp = undefined;
  }
}

export class WhipEndpoint extends SignallingEndpoint<WhipSession> {
  constructor(o: EndpointOptions<WhipSession>) {
    super(o, async (offer, sd) => {
      const { sections, ufrag } = acceptOffer(sd, ['sendonly', 'sendrecv']);
      const peer = new Peer({ name: 'whip', ...(o.bindAddress ? { bindAddress: o.bindAddress } : {}) });
      const session = new WhipSession(peer, ufrag, sections[0]!.mid);
      try {
        for (const s of sections) session.attach(addLocalTrack(peer, s, 'RecvOnly'), sourceParams(s));
        try {
          peer.pc.setRemoteDescription(offer, 'offer');
          peer.pc.setLocalDescription('answer');
        } catch (err) {
          throw new OfferRejected(400, `offer not usable: ${err instanceof Error ? err.message : String(err)}`);
        }
        await peer.gathered(o.gatherTimeoutMs ?? 5000);
        return { session, answer: withRtcpMuxOnly(peer.localSdp()) };
      } catch (err) {
        session.close('offer refused');
        throw err;
      }
    });
  }
}
