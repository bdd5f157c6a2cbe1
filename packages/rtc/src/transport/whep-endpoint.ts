/** WHEP (draft-ietf-wish-whep), server side: a viewer's session is a SinkPort for the router. */
import type { SinkPort } from '../core/types.js';
import { SignallingEndpoint, type EndpointOptions } from './endpoint.js';
import { Peer } from './peer.js';
import { acceptOffer, addLocalTrack, answerOffer, newSsrc, sinkParams } from './offer.js';
import { MediaSessionBase, type SessionStats } from './session.js';
import { receiveFrom, TrackSinkPort, type ReceiveHandlers, type TrackHandle } from './track-io.js';

export class WhepSession extends MediaSessionBase {
  sinkPort!: SinkPort;
  private readonly handlers: ReceiveHandlers = { rtp: undefined, rtcp: undefined };
  private writable = false;
  private writableWaiters: Array<() => void> = [];

  /** @internal */
  attach(tracks: { audio?: TrackHandle; video?: TrackHandle }, port: TrackSinkPort): void {
    this.sinkPort = port;
    for (const t of [tracks.audio, tracks.video]) if (t) receiveFrom(t, this.handlers);
  }

  /**
   * Calls `fn` once every sending track is open (at once if they are). The tracks open a few ms after the peer
   * connects, and a packet written before that is dropped: a router sink added earlier would lose the keyframe
   * cache it replays on joining, and the viewer would wait for the publisher's next keyframe (OBS ignores PLI).
   */
  onWritable(fn: () => void): void {
    if (this.writable) fn();
    else this.writableWaiters.push(fn);
  }

  /** @internal */
  markWritable(): void {
    if (this.writable || this.closed) return;
    this.writable = true;
    const waiters = this.writableWaiters;
    this.writableWaiters = [];
    for (const fn of waiters) fn();
  }

  /** RTCP from the viewer (PLI, NACK, RR), for the router's Sink. */
  onRtcp(fn: (packet: Uint8Array) => void): void {
    this.handlers.rtcp = fn;
  }

  override stats(): SessionStats {
    const port = this.sinkPort as TrackSinkPort | undefined;
    const st = super.stats();
    return { ...st, bytesSent: st.bytesSent + (port?.bytesSent ?? 0), rtcpReceived: this.handlers.rtcpPackets ?? 0, packetsSent: port?.packetsSent ?? 0, sendFailures: port?.sendFailures ?? 0 };
  }

  protected override onClose(): void {
    this.handlers.rtcp = undefined;
    this.writableWaiters = [];
  }
}

export class WhepEndpoint extends SignallingEndpoint<WhepSession> {
  constructor(o: EndpointOptions<WhepSession>) {
    super(o, async (offer, sd) => {
      const { sections, ufrag } = acceptOffer(sd, ['recvonly', 'sendrecv']);
      const peer = new Peer({ name: 'whep', ...(o.bindAddress ? { bindAddress: o.bindAddress } : {}) });
      const session = new WhepSession(peer, ufrag, sections[0]!.mid);
      try {
        const tracks: { audio?: TrackHandle; video?: TrackHandle } = {};
        const params: { audio?: ReturnType<typeof sinkParams>; video?: ReturnType<typeof sinkParams> } = {};
        for (const s of sections) {
          const ssrc = newSsrc();
          tracks[s.kind] = addLocalTrack(peer, s, 'SendOnly', { ssrc, cname: `stagecast-${session.id.slice(0, 8)}`, msid: 'stagecast' }, () => {
            if (Object.values(tracks).every((t) => t.open)) session.markWritable();
          });
          params[s.kind] = sinkParams(s, ssrc);
        }
        session.attach(tracks, new TrackSinkPort(session.id, tracks, params.audio, params.video));
        return { session, answer: await answerOffer(peer, offer, o.gatherTimeoutMs) };
      } catch (err) {
        session.close('offer refused');
        throw err;
      }
    }, (sd) => void acceptOffer(sd, ['recvonly', 'sendrecv']));
  }
}
