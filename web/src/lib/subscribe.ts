/**
 * One subscription to one stage, into one <video>: WHEP for local stages, the IVS SDK for IVS stages. The page
 * decides what a failure means; this only reports it. `stop()` ends the subscription (WHEP DELETE / leave) and is
 * idempotent.
 */
import type { Playback } from '@stagecast/protocol';
import { playIvs } from './ivs.js';
import { RateMeter, type VideoRate } from './stats.js';
import { negotiate } from './whip.js';

export interface SubscriptionHooks {
  /** Connected (media may not have arrived yet). */
  onUp(): void;
  /** Failed for good (connection failed, closed, or disconnected for a few seconds). */
  onDown(why: string): void;
  /** Other transient states, for display. */
  onState(state: string): void;
  /** WHEP only: a getStats() sample each second. */
  onStats?(r: VideoRate): void;
}

export interface Subscription {
  video: HTMLVideoElement;
  /**
   * Where the stage's tracks go (a track replaces the one of its kind): the stream `video` plays, until a switch
   * points it at the stream of the <video> on screen, so tracks that come later (an IVS publisher that changes)
   * land there.
   */
  stream: MediaStream;
  stop(keepalive?: boolean): Promise<void>;
}

/** Subscribes `video` to the stage; throws when playback is external (nothing to play here) or the offer fails. */
export async function subscribe(target: { playback: Playback; token: string }, video: HTMLVideoElement, hooks: SubscriptionHooks): Promise<Subscription> {
  const stops: ((keepalive: boolean) => Promise<void> | void)[] = [];
  let stopped = false;
  const ms = new MediaStream();
  video.srcObject = ms;
  const sub: Subscription = {
    video,
    stream: ms,
    async stop(keepalive = false) {
      if (stopped) return;
      stopped = true;
      // Every request is sent before any is awaited: on pagehide there is no later.
      await Promise.allSettled(stops.splice(0).map(async (s) => s(keepalive)));
    },
  };
  const put = (track: MediaStreamTrack) => {
    const out = sub.stream;
    for (const old of out.getTracks().filter((t) => t.kind === track.kind)) out.removeTrack(old);
    out.addTrack(track);
  };
  if (target.playback.type === 'whep') {
    const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
    stops.push(() => pc.close());
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    pc.addEventListener('track', (e) => put(e.track));
    let downTimer: number | undefined;
    stops.push(() => clearTimeout(downTimer));
    pc.addEventListener('connectionstatechange', () => {
      if (stopped) return;
      const s = pc.connectionState;
      clearTimeout(downTimer);
      if (s === 'connected') hooks.onUp();
      else if (s === 'failed' || s === 'closed') hooks.onDown(`connection ${s}`);
      // "disconnected" often heals by itself; give it a few seconds.
      else if (s === 'disconnected') downTimer = window.setTimeout(() => !stopped && hooks.onDown('disconnected'), 4000);
      else hooks.onState(s);
    });
    const session = await negotiate(pc, target.playback.url, target.token);
    stops.push((keepalive) => session.stop({ keepalive }));
    if (hooks.onStats) {
      const meter = new RateMeter();
      const statsTimer = window.setInterval(async () => {
        const r = await meter.sample(pc, 'inbound-rtp');
        if (r && !stopped) hooks.onStats?.(r);
      }, 1000);
      stops.push(() => clearInterval(statsTimer));
    }
    return sub;
  }
  if (target.playback.type === 'ivs') {
    const ivs = await playIvs(target.token, put, (s) => {
      if (stopped) return;
      if (s === 'connected') hooks.onUp();
      else if (s === 'errored' || s === 'disconnected') hooks.onDown(`ivs ${s}`);
      else hooks.onState(s);
    });
    stops.push(() => ivs.stop());
    return sub;
  }
  throw new ExternalPlayback();
}

export class ExternalPlayback extends Error {
  constructor() {
    super('This stage is an external WHIP destination: watch it where it is published.');
  }
}

/** Resolves once `video` has a decoded frame to show (readyState ≥ HAVE_CURRENT_DATA), or rejects after `timeoutMs`. */
export function firstFrame(video: HTMLVideoElement, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const ready = () => video.readyState >= HTMLMediaElement.HAVE_CURRENT_DATA && video.videoWidth > 0;
    if (ready()) return resolve();
    const check = () => {
      if (!ready()) return;
      done();
      resolve();
    };
    const events = ['loadeddata', 'resize', 'playing', 'timeupdate'] as const;
    const timer = window.setTimeout(() => {
      done();
      reject(new Error('no picture from the new stage in time'));
    }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      for (const e of events) video.removeEventListener(e, check);
    };
    for (const e of events) video.addEventListener(e, check);
  });
}

/**
 * Resolves once `video` has decoded frames steadily for `steadyMs` — no pause longer than `maxGapMs` — or rejects
 * after `timeoutMs`. A new WebRTC subscription often stutters in its first second (a replayed keyframe, the jitter
 * buffer settling): a make-before-break switch waits this out while the old subscription is still on screen.
 */
export function steadyPlayback(video: HTMLVideoElement, o: { steadyMs: number; maxGapMs: number; timeoutMs: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let frames = -1;
    let lastFrameAt = 0;
    let steadySince: number | null = null;
    const timer = window.setInterval(() => {
      const now = performance.now();
      const n = video.getVideoPlaybackQuality().totalVideoFrames;
      if (n > frames) {
        if (frames >= 0 && steadySince === null && video.videoWidth > 0) steadySince = now;
        frames = n;
        lastFrameAt = now;
      } else if (now - lastFrameAt > o.maxGapMs) steadySince = null;
      if (steadySince !== null && now - steadySince >= o.steadyMs) {
        clearInterval(timer);
        resolve();
      } else if (now - started > o.timeoutMs) {
        clearInterval(timer);
        reject(new Error('the new stage did not play steadily in time'));
      }
    }, 25);
  });
}
