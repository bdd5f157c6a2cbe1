/**
 * A publisher shaped like OBS's WHIP output (libdatachannel, like OBS itself): H.264 with profile-level-id=42e01f
 * whatever it encodes, Opus, an offer POSTed with NO candidates (OBS disables auto-gathering), no trickle, DELETE
 * on stop. The server only learns our address from our STUN checks (peer-reflexive).
 */
import nodeDataChannel from 'node-datachannel';
import { Peer } from '../../src/transport/peer.js';
import { TrackHandle } from '../../src/transport/track-io.js';
import { SyntheticPublisher } from '../../src/core/testing.js';

export class ObsLikePublisher {
  readonly peer = new Peer({ name: 'obs', bindAddress: '127.0.0.1' });
  readonly video: TrackHandle;
  readonly audio: TrackHandle;
  readonly gen = new SyntheticPublisher({ videoSsrc: 0x0b5, audioSsrc: 0x0b6, videoSeq: 100, audioSeq: 200, videoTs: 1000, audioTs: 2000, packetsPerFrame: 2, payloadBytes: 600 });
  location: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  frames = 0;

  constructor(opts: { videoPt?: number } = {}) {
    const pt = opts.videoPt ?? 96;
    this.gen.videoPt = pt;
    const v = new nodeDataChannel.Video('0', 'SendOnly');
    v.addH264Codec(pt, 'profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1');
    v.addSSRC(0x0b5, 'obs', 'obs-stream', 'video');
    const a = new nodeDataChannel.Audio('1', 'SendOnly');
    a.addOpusCodec(111);
    a.addSSRC(0x0b6, 'obs', 'obs-stream', 'audio');
    this.video = new TrackHandle('video', this.peer.addTrack(v));
    this.audio = new TrackHandle('audio', this.peer.addTrack(a));
  }

  /** The offer as OBS sends it: every a=candidate / end-of-candidates stripped. */
  async offer(): Promise<string> {
    this.peer.pc.setLocalDescription('offer');
    await this.peer.gathered();
    return this.peer.localSdp().replace(/a=(candidate:[^\r\n]*|end-of-candidates)\r\n/g, '');
  }

  async publish(endpoint: string, token?: string): Promise<Response> {
    const res = await fetch(endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: await this.offer(),
    });
    if (res.status === 201) {
      this.location = res.headers.get('location') ?? undefined;
      this.peer.pc.setRemoteDescription(await res.clone().text(), 'answer');
    }
    return res;
  }

  /** Sends 30 fps video (keyframe every `gop` frames) and 50 pps audio, until stop(). */
  startMedia(gop = 30): void {
    let n = 0;
    this.timer = setInterval(() => {
      for (const p of this.gen.videoFrame(n % gop === 0)) this.video.send(p);
      this.audio.send(this.gen.audioPacket());
      n++;
      this.frames = n;
    }, 33);
  }

  async stop(token?: string): Promise<void> {
    clearInterval(this.timer);
    if (this.location) await fetch(this.location, { method: 'DELETE', headers: token ? { authorization: `Bearer ${token}` } : {} }).catch(() => undefined);
    this.peer.close();
  }
}
