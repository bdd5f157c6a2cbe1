/**
 * A WHEP viewer on node-datachannel for e2e tests and benchmarks: a recvonly H.264 + Opus offer (without candidates
 * unless asked: see play()), POSTed to a stage's WHEP URL with the viewer token. It reassembles nothing; it counts what a player
 * would get: complete video frames (RTP marker bit), keyframes (a frame carrying SPS or the start of an IDR),
 * their arrival times, the SSRCs seen, and every peer-connection state change.
 *
 * API
 *   const v = await WhepViewer.play({ url, token })        // POST → 201 → connected; throws on another status
 *   v.frames · v.keyframes · v.firstFrameAt · v.firstKeyframeAt · v.lastFrameAt · v.ssrcs · v.audioPackets
 *   v.framesAfter(t) · v.maxGapMs(from, to)               // frame arrival gaps in a window (ms epoch)
 *   v.states                                             // [{ state, at }] every state the peer went through
 *   v.leftConnected()                                    // true once it left 'connected' after reaching it
 *   await v.waitForFrames(n, timeoutMs, after?)          // n frames (after an instant)
 *   await v.stop()                                       // DELETE the WHEP session + close; idempotent
 * Call shutdownRtc() from @stagecast/rtc in the test file's after() once all peers are done.
 */
import nodeDataChannel from 'node-datachannel';
import { H264PayloadInfo, isH264KeyframeStart, parseRtpHeader, Peer, RtpInfo, TrackHandle, withoutCandidates, type PeerState } from '@stagecast/rtc';
import { waitFor } from './wait.js';

export interface ViewerOptions {
  /** The stage's WHEP URL (playback.url from POST /api/viewers/join). */
  url: string;
  token: string;
  /** ICE binds here (default 127.0.0.1). */
  bindAddress?: string;
  name?: string;
  /** Send our candidates in the offer (default: none, see play()). */
  withCandidates?: boolean;
}

export class WhepViewer {
  readonly peer: Peer;
  readonly video: TrackHandle;
  readonly audio: TrackHandle;
  location: string | undefined;
  status = 0;
  frames = 0;
  keyframes = 0;
  videoPackets = 0;
  audioPackets = 0;
  firstFrameAt = NaN;
  firstKeyframeAt = NaN;
  lastFrameAt = NaN;
  /** Arrival time (ms epoch) of every complete frame. */
  readonly frameTimes: number[] = [];
  readonly ssrcs = new Set<number>();
  readonly states: { state: PeerState; at: number }[] = [];
  /** ms epoch of the 201. */
  answeredAt = NaN;
  private readonly info = new RtpInfo();
  private readonly h264 = new H264PayloadInfo();
  private frameTs = -1;
  private frameIsKey = false;
  private stopping: Promise<void> | undefined;

  private constructor(readonly o: ViewerOptions) {
    this.peer = new Peer({ name: o.name ?? 'whep-viewer', bindAddress: o.bindAddress ?? '127.0.0.1' });
    this.peer.on('state', (state) => this.states.push({ state, at: Date.now() }));
    const v = new nodeDataChannel.Video('0', 'RecvOnly');
    v.addH264Codec(102, 'profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1');
    const a = new nodeDataChannel.Audio('1', 'RecvOnly');
    a.addOpusCodec(111);
    const isRtp = (b: Buffer) => b.length >= 12 && !(b[1]! >= 192 && b[1]! <= 223);
    // Through TrackHandle, which registers onClosed: node-datachannel 0.33 only drops a Track from its registry in
    // that callback, and cleanup() (shutdownRtc) then touches every registered Track — one that was garbage-collected
    // meanwhile crashes the process (SIGSEGV in TrackWrapper::CloseAll).
    this.video = new TrackHandle('video', this.peer.addTrack(v));
    this.audio = new TrackHandle('audio', this.peer.addTrack(a));
    this.video.track.onMessage((b) => {
      if (isRtp(b)) this.onVideo(b);
    });
    this.audio.track.onMessage((b) => {
      if (isRtp(b)) this.audioPackets++;
    });
  }

  static async play(o: ViewerOptions, connectTimeoutMs = 10_000): Promise<WhepViewer> {
    const v = new WhepViewer(o);
    try {
      v.peer.pc.setLocalDescription('offer');
      await v.peer.gathered();
      const res = await fetch(o.url, {
        method: 'POST',
        headers: { 'content-type': 'application/sdp', authorization: `Bearer ${o.token}` },
        // No candidates, as OBS and our WHIPClient do: the stage learns our address from our own checks. With them,
        // the stage's checks can reach libjuice before it has the answer, and ICE then fails at once now and then.
        body: o.withCandidates ? v.peer.localSdp() : withoutCandidates(v.peer.localSdp()),
        signal: AbortSignal.timeout(10_000),
      });
      const body = await res.text();
      v.status = res.status;
      if (res.status !== 201) throw new Error(`WHEP POST to ${o.url} answered ${res.status}: ${body.slice(0, 300)}`);
      v.answeredAt = Date.now();
      const loc = res.headers.get('location');
      v.location = loc ? new URL(loc, o.url).toString() : undefined;
      try {
        v.peer.pc.setRemoteDescription(body, 'answer');
      } catch (err) {
        throw new Error(`applying the WHEP answer failed (viewer states ${JSON.stringify(v.states)}, gathering ${v.peer.closed ? 'closed' : v.peer.pc.gatheringState()}): ${(err as Error).message}`);
      }
      if (!(await v.peer.connected(connectTimeoutMs))) throw new Error(`WHEP viewer did not connect within ${connectTimeoutMs} ms (states ${JSON.stringify(v.states)})`);
      return v;
    } catch (err) {
      await v.stop();
      throw err;
    }
  }

  private onVideo(b: Buffer): void {
    const info = parseRtpHeader(b, b.length, this.info);
    if (!info) return;
    this.videoPackets++;
    this.ssrcs.add(info.ssrc);
    if (info.timestamp !== this.frameTs) {
      this.frameTs = info.timestamp;
      this.frameIsKey = false;
    }
    if (!this.frameIsKey && isH264KeyframeStart(b, info.payloadOffset, info.payloadLength, this.h264)) this.frameIsKey = true;
    if (!info.marker) return;
    const now = Date.now();
    this.frames++;
    this.frameTimes.push(now);
    if (this.firstFrameAt !== this.firstFrameAt) this.firstFrameAt = now;
    this.lastFrameAt = now;
    if (this.frameIsKey) {
      this.keyframes++;
      if (this.firstKeyframeAt !== this.firstKeyframeAt) this.firstKeyframeAt = now;
    }
    this.frameTs = -1;
  }

  get state(): PeerState {
    return this.peer.state;
  }

  /** True once the peer left 'connected' after having reached it (a dropped viewer). */
  leftConnected(): boolean {
    const i = this.states.findIndex((s) => s.state === 'connected');
    return i >= 0 && this.states.slice(i + 1).some((s) => s.state !== 'connected');
  }

  framesAfter(t: number): number {
    let n = 0;
    for (let i = this.frameTimes.length - 1; i >= 0 && this.frameTimes[i]! > t; i--) n++;
    return n;
  }

  /** First frame that arrived after t (ms epoch), or NaN. */
  firstFrameAfter(t: number): number {
    return this.frameTimes.find((x) => x > t) ?? NaN;
  }

  /** The longest stretch without a frame inside [from, to] (edges included): how long the picture froze. */
  maxGapMs(from: number, to: number): number {
    let prev = from;
    let max = 0;
    for (const t of this.frameTimes) {
      if (t <= from) continue;
      if (t > to) break;
      max = Math.max(max, t - prev);
      prev = t;
    }
    return Math.max(max, to - prev);
  }

  waitForFrames(n: number, timeoutMs = 10_000, after = 0): Promise<number> {
    return waitFor(() => {
      if (this.peer.closed) throw new Error(`viewer closed (states ${JSON.stringify(this.states.map((s) => s.state))})`);
      const got = after ? this.framesAfter(after) : this.frames;
      return got >= n ? got : undefined;
    }, `${n} frames at viewer ${this.o.name ?? this.o.url}`, timeoutMs, 20);
  }

  /** DELETE the WHEP session, then close the peer. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (this.location) {
        await fetch(this.location, { method: 'DELETE', headers: { authorization: `Bearer ${this.o.token}` }, signal: AbortSignal.timeout(5000) }).catch(() => undefined);
      }
      this.peer.close();
    })();
    return this.stopping;
  }
}
