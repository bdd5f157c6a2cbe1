/**
 * A real WHEP viewer for stagecast-loadtest: a recvonly H.264 + Opus peer (packages/rtc's Peer on node-datachannel)
 * that POSTs its offer to a stage's WHEP URL with the viewer token and counts complete video frames (RTP marker bit).
 * It reassembles and decodes nothing. stop() DELETEs the WHEP session and closes the peer; call shutdownRtc() once
 * every viewer is stopped.
 */
import nodeDataChannel from 'node-datachannel';
import { isRtcp, parseRtpHeader, Peer, RtpInfo, TrackHandle, withoutCandidates } from '@stagecast/rtc';

export class FrameCountingViewer {
  frames = 0;
  connected = false;
  private readonly peer: Peer;
  private readonly info = new RtpInfo();
  private location: string | undefined;
  private stopping: Promise<void> | undefined;

  constructor(
    private readonly url: string,
    private readonly token: string,
    name: string,
  ) {
    this.peer = new Peer({ name, bindAddress: '127.0.0.1' });
    const v = new nodeDataChannel.Video('0', 'RecvOnly');
    v.addH264Codec(102, 'profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1');
    const a = new nodeDataChannel.Audio('1', 'RecvOnly');
    a.addOpusCodec(111);
    // Through TrackHandle, which registers onClosed (node-datachannel drops a Track from its registry only there).
    const video = new TrackHandle('video', this.peer.addTrack(v));
    new TrackHandle('audio', this.peer.addTrack(a));
    video.track.onMessage((b) => {
      if (isRtcp(b)) return;
      const h = parseRtpHeader(b, b.length, this.info);
      if (h?.marker) this.frames++;
    });
  }

  /** Offer → 201 answer → ICE/DTLS connected, or throws (the peer is then closed). */
  async play(connectTimeoutMs: number): Promise<void> {
    try {
      this.peer.pc.setLocalDescription('offer');
      await this.peer.gathered();
      const res = await fetch(this.url, {
        method: 'POST',
        headers: { 'content-type': 'application/sdp', authorization: `Bearer ${this.token}` },
        body: withoutCandidates(this.peer.localSdp()),
        signal: AbortSignal.timeout(10_000),
      });
      const body = await res.text();
      if (res.status !== 201) throw new Error(`WHEP POST answered ${res.status}: ${body.slice(0, 200)}`);
      const loc = res.headers.get('location');
      this.location = loc ? new URL(loc, this.url).toString() : undefined;
      this.peer.pc.setRemoteDescription(body, 'answer');
      if (!(await this.peer.connected(connectTimeoutMs))) throw new Error(`not connected within ${connectTimeoutMs} ms`);
      this.connected = true;
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (this.location)
        await fetch(this.location, { method: 'DELETE', headers: { authorization: `Bearer ${this.token}` }, signal: AbortSignal.timeout(5000) }).catch(() => undefined);
      this.peer.close();
    })();
    return this.stopping;
  }
}
