/**
 * An OBS-shaped WHIP broadcaster on node-datachannel (libdatachannel, like OBS's own WHIP output), for e2e tests
 * and benchmarks:
 * - the offer is H.264 (profile-level-id=42e01f, packetization-mode=1) + Opus, POSTed with NO candidates and no
 *   trickle (OBS disables auto-gathering): the server learns our address from our STUN checks (peer-reflexive);
 * - media is synthetic: ~30 fps H.264 (SPS+PPS+IDR every `keyframeIntervalMs`, 2 s by default, else P frames),
 *   one 20 ms Opus packet per frame; the first frame sent is a keyframe;
 * - stop() DELETEs the session with the same Bearer token, then closes the peer;
 * - a 307/308 to the POST is followed by hand, as OBS does: the same offer and the same Authorization header are
 *   POSTed to the Location (fetch's own redirect would drop the header when the origin changes), at most 4 hops.
 *
 * API
 *   const b = await Broadcaster.publish({ url, token })   // POST → 201 → connected → media flowing; throws PublishError
 *   const r = await Broadcaster.attempt({ url, token })   // { status, body, broadcaster? }: for 409/401/422 cases
 *   b.connected(ms) (peer connected, tracks open) · b.startMedia() · b.stopMedia() · b.framesSent · b.keyframesSent · b.location
 *   b.sentTimes · b.maxSendGapMs(from, to)               // the sender's own pacing, to tell a stalled test from a stalled server
 *   b.url · b.redirects                                   // where the session was answered; the 307s on the way
 *   b.lastRtcpAt                                         // ms epoch of the last RTCP from the server (its RR comes once a second)
 *   await b.stop()                                        // DELETE (returns its status) + close; idempotent
 *   b.crash()                                             // closes the peer WITHOUT a DELETE (a vanished OBS)
 * Call shutdownRtc() from @stagecast/rtc in the test file's after() once all peers are done.
 */
import nodeDataChannel from 'node-datachannel';
import { isRtcp, Peer, TrackHandle, type PeerState } from '@stagecast/rtc';
import { SyntheticPublisher } from '@stagecast/rtc/testing';

export const OBS_H264_FMTP = 'profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1';

export interface BroadcasterOptions {
  /** The WHIP endpoint, e.g. the Media Server's http://127.0.0.1:<port>/whip. */
  url: string;
  token: string;
  /** ICE binds here (default 127.0.0.1). */
  bindAddress?: string;
  fps?: number;
  /** Keyframe (IDR) interval, ms. Default 2000 (OBS's "keyframe interval 2 s", the IVS maximum). */
  keyframeIntervalMs?: number;
  /** Varies SSRCs, first sequence numbers and timestamps: a reconnecting OBS starts a fresh RTP stream. */
  seed?: number;
  packetsPerFrame?: number;
  payloadBytes?: number;
  videoPayloadType?: number;
}

export class PublishError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`WHIP POST answered ${status}: ${body.slice(0, 300)}`);
  }
}

export class Broadcaster {
  readonly peer: Peer;
  readonly video: TrackHandle;
  readonly audio: TrackHandle;
  readonly gen: SyntheticPublisher;
  readonly fps: number;
  readonly gop: number;
  location: string | undefined;
  answerSdp = '';
  offerSdp = '';
  framesSent = 0;
  keyframesSent = 0;
  /** When each frame was sent (ms epoch): a stalled test process shows here, not only at the viewers. */
  readonly sentTimes: number[] = [];
  /** ms epoch of the 201. */
  publishedAt = NaN;
  /** The URL that answered 201 (after any redirects). */
  url: string;
  /** Each redirect followed: its status and Location. */
  readonly redirects: { status: number; location: string }[] = [];
  /** ms epoch of the last RTCP packet from the server (NaN before the first). */
  lastRtcpAt = NaN;
  rtcpPackets = 0;
  /** Resolves when both tracks can send (a few ms after the peer's 'connected'): a packet sent earlier is lost. */
  readonly tracksOpen: Promise<void>;
  private timer: NodeJS.Timeout | undefined;
  private stopped: Promise<number | undefined> | undefined;

  private constructor(readonly o: BroadcasterOptions) {
    this.url = o.url;
    const seed = o.seed ?? 1;
    const pt = o.videoPayloadType ?? 96;
    this.fps = o.fps ?? 30;
    this.gop = Math.max(1, Math.round(((o.keyframeIntervalMs ?? 2000) * this.fps) / 1000));
    this.peer = new Peer({ name: `obs-${seed}`, bindAddress: o.bindAddress ?? '127.0.0.1' });
    const videoSsrc = (0x0b500000 + seed * 7919) >>> 0;
    const audioSsrc = (0x0b600000 + seed * 7919) >>> 0;
    this.gen = new SyntheticPublisher({
      videoSsrc,
      audioSsrc,
      videoSeq: (seed * 9973) & 0xffff,
      audioSeq: (seed * 4099) & 0xffff,
      videoTs: (seed * 123_457) >>> 0,
      audioTs: (seed * 654_321) >>> 0,
      packetsPerFrame: o.packetsPerFrame ?? 3,
      payloadBytes: o.payloadBytes ?? 900,
    });
    this.gen.fps = this.fps;
    this.gen.videoPt = pt;
    const v = new nodeDataChannel.Video('0', 'SendOnly');
    v.addH264Codec(pt, OBS_H264_FMTP);
    v.addSSRC(videoSsrc, 'obs', 'obs-stream', 'video');
    const a = new nodeDataChannel.Audio('1', 'SendOnly');
    a.addOpusCodec(111);
    a.addSSRC(audioSsrc, 'obs', 'obs-stream', 'audio');
    let opened = 0;
    let onTracksOpen!: () => void;
    this.tracksOpen = new Promise<void>((r) => (onTracksOpen = r));
    const open = () => ++opened === 2 && onTracksOpen();
    this.video = new TrackHandle('video', this.peer.addTrack(v), open);
    this.audio = new TrackHandle('audio', this.peer.addTrack(a), open);
    const onRtcp = (buf: Buffer) => {
      if (!isRtcp(buf)) return;
      this.rtcpPackets++;
      this.lastRtcpAt = Date.now();
    };
    this.video.track.onMessage(onRtcp);
    this.audio.track.onMessage(onRtcp);
  }

  /** POSTs the offer; on 201 applies the answer. Never throws for an HTTP status: the caller reads it. */
  static async attempt(o: BroadcasterOptions): Promise<{ status: number; body: string; broadcaster?: Broadcaster }> {
    const b = new Broadcaster(o);
    try {
      b.peer.pc.setLocalDescription('offer');
      await b.peer.gathered();
      // OBS posts its offer with every candidate line stripped.
      b.offerSdp = b.peer.localSdp().replace(/a=(candidate:[^\r\n]*|end-of-candidates)\r\n/g, '');
      let res: Response;
      for (let hop = 0; ; hop++) {
        res = await fetch(b.url, {
          method: 'POST',
          headers: { 'content-type': 'application/sdp', authorization: `Bearer ${o.token}` },
          body: b.offerSdp,
          redirect: 'manual',
          signal: AbortSignal.timeout(10_000),
        });
        const location = res.headers.get('location');
        if ((res.status !== 307 && res.status !== 308) || !location || hop >= 4) break;
        await res.body?.cancel();
        b.redirects.push({ status: res.status, location });
        b.url = new URL(location, b.url).toString();
      }
      const body = await res.text();
      if (res.status !== 201) {
        b.peer.close();
        return { status: res.status, body };
      }
      b.publishedAt = Date.now();
      const loc = res.headers.get('location');
      b.location = loc ? new URL(loc, b.url).toString() : undefined;
      b.answerSdp = body;
      b.peer.pc.setRemoteDescription(body, 'answer');
      return { status: 201, body, broadcaster: b };
    } catch (err) {
      b.peer.close();
      throw err;
    }
  }

  /** POST → 201 → ICE/DTLS connected → media flowing. Throws PublishError on any other status. */
  static async publish(o: BroadcasterOptions, connectTimeoutMs = 10_000): Promise<Broadcaster> {
    const r = await Broadcaster.attempt(o);
    if (!r.broadcaster) throw new PublishError(r.status, r.body);
    const b = r.broadcaster;
    if (!(await b.connected(connectTimeoutMs))) {
      await b.stop();
      throw new Error(`broadcaster did not connect within ${connectTimeoutMs} ms (state ${b.state})`);
    }
    b.startMedia();
    return b;
  }

  get state(): PeerState {
    return this.peer.state;
  }

  /** True once connected with both tracks open (media can flow). */
  async connected(timeoutMs = 10_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    if (!(await this.peer.connected(timeoutMs))) return false;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((r) => (timer = setTimeout(() => r(false), Math.max(0, deadline - Date.now()))));
    const ok = await Promise.race([this.tracksOpen.then(() => true as const), timeout]);
    clearTimeout(timer);
    return ok;
  }

  /** Sends frames at `fps` until stopMedia()/stop(); the first frame is a keyframe. */
  startMedia(): void {
    if (this.timer || this.stopped) return;
    let n = 0;
    this.timer = setInterval(() => {
      const key = n % this.gop === 0;
      for (const p of this.gen.videoFrame(key)) this.video.send(p);
      this.audio.send(this.gen.audioPacket());
      n++;
      this.framesSent++;
      this.sentTimes.push(Date.now());
      if (key) this.keyframesSent++;
    }, Math.round(1000 / this.fps));
  }

  /** The longest stretch without a frame SENT inside [from, to] (edges included). */
  maxSendGapMs(from: number, to: number): number {
    let prev = from;
    let max = 0;
    for (const t of this.sentTimes) {
      if (t <= from) continue;
      if (t > to) break;
      max = Math.max(max, t - prev);
      prev = t;
    }
    return Math.max(max, to - prev);
  }

  stopMedia(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** DELETE the session (as OBS does on "Stop Streaming"), then close. Resolves with the DELETE's status. */
  stop(): Promise<number | undefined> {
    if (this.stopped) return this.stopped;
    this.stopMedia();
    this.stopped = (async () => {
      let status: number | undefined;
      if (this.location) {
        status = await fetch(this.location, { method: 'DELETE', headers: { authorization: `Bearer ${this.o.token}` }, signal: AbortSignal.timeout(5000) })
          .then((r) => r.status)
          .catch(() => undefined);
      }
      this.peer.close();
      return status;
    })();
    return this.stopped;
  }

  /** Gone without a word (crash, cable pulled): no DELETE; the server only notices by ICE consent / media timeout. */
  crash(): void {
    this.stopMedia();
    this.stopped ??= Promise.resolve(undefined);
    this.peer.close();
  }
}
