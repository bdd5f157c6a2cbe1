/**
 * /watch: joins as a viewer (POST /api/viewers/join), plays the assigned stage (WHEP for local stages, the IVS
 * SDK for IVS stages), heartbeats, leaves on close, and joins again by itself — with backoff — when the
 * connection fails or the heartbeat is refused (seat lost, stage deleted). When the server moves the seat to
 * another stage (consolidation: `move` in the heartbeat answer), it switches make-before-break: the new stage plays
 * in a second, hidden <video>, and only once it plays steadily do its tracks replace the old ones on screen and the
 * old subscription end.
 */
import './style.css';
import type { ViewerHeartbeatResponse, ViewerJoinResponse, ViewerMove } from '@stagecast/protocol';
import { $, ApiError, api, askKey, forgetKey, takeKey } from './lib/api.js';
import { kbps } from './lib/stats.js';
import { ExternalPlayback, firstFrame, steadyPlayback, subscribe, type Subscription, type SubscriptionHooks } from './lib/subscribe.js';

const KEY = 'stagecast.viewerKey';
const SWITCH_TIMEOUT_MS = 10_000;
/** How long the new stage must play without a stall before it replaces the old one on screen. */
const STEADY_MS = 1500;
/** The longest the old stage's audio plays on after the video was switched. */
const AUDIO_SWAP_TIMEOUT_MS = 2000;

/** Resolves after `video` has presented `n` more frames (requestVideoFrameCallback), or after `timeoutMs` in any case. */
function presented(video: HTMLVideoElement, n: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = window.setTimeout(resolve, timeoutMs);
    let left = n;
    const cb = () => {
      if (--left <= 0) {
        clearTimeout(timer);
        resolve();
      } else if (video.isConnected) video.requestVideoFrameCallback(cb);
    };
    if ('requestVideoFrameCallback' in video) video.requestVideoFrameCallback(cb);
  });
}
const stateEl = $('#state');
const errorEl = $('#error');
/** The element on screen is always #player; a switch builds the next one beside it. */
const player = () => $<HTMLVideoElement>('#player');

interface Playing {
  viewer: ViewerJoinResponse;
  /** The stage played now (changes with a move). */
  stageArn: string;
  sub: Subscription | null;
  /** The next stage's subscription while a switch is in progress (ended with the rest on leave). */
  pending: Subscription | null;
  switching: boolean;
  stop(keepalive?: boolean): Promise<void>;
}

let current: Playing | null = null;
let reconnects = 0;
let moves = 0;
let failures = 0;
let generation = 0;
let retryTimer: number | undefined;
let leaving = false;

function setState(text: string, tone: '' | 'ok' | 'warn' | 'bad' = ''): void {
  stateEl.textContent = text;
  stateEl.className = `pill ${tone}`;
  document.body.dataset.state = text;
}

/** Tears down the current playback (WHEP DELETE + viewer leave) and joins again after a jittered backoff. */
function rejoin(key: string, why: string, notBeforeMs = 0): void {
  if (leaving) return;
  const gen = ++generation;
  const old = current;
  current = null;
  void old?.stop();
  failures++;
  // Never sooner than the server's Retry-After (a 429 from the viewer key's rate limit, a 503 with no seat).
  const delay = Math.max(notBeforeMs, Math.min(15_000, 500 * 2 ** Math.min(failures - 1, 5)) * (0.75 + Math.random() * 0.5));
  setState(`reconnecting (${why})`, 'warn');
  clearTimeout(retryTimer);
  retryTimer = window.setTimeout(() => {
    if (gen !== generation) return;
    reconnects++;
    $('#reconnects').textContent = String(reconnects);
    void start(key, gen);
  }, delay);
}

function hooksFor(key: string, playing: Playing, isCurrent: () => boolean): SubscriptionHooks {
  return {
    onUp() {
      if (current !== playing || !isCurrent()) return;
      failures = 0;
      setState('playing', 'ok');
    },
    onDown(why) {
      if (current === playing && isCurrent()) rejoin(key, why);
    },
    onState(s) {
      if (current === playing && isCurrent()) setState(s, 'warn');
    },
    onStats(r) {
      if (current !== playing || !isCurrent()) return;
      $('#bitrate').textContent = kbps(r.bitrateBps);
      $('#resolution').textContent = r.width ? `${r.width}×${r.height}` : '–';
      $('#fps').textContent = r.fps ? r.fps.toFixed(0) : '–';
    },
  };
}

function showStage(stageId: string): void {
  $('#stage').textContent = stageId;
  document.body.dataset.stage = stageId;
}

async function heartbeat(key: string, playing: Playing): Promise<ViewerHeartbeatResponse> {
  return api<ViewerHeartbeatResponse>(`/api/viewers/${encodeURIComponent(playing.viewer.viewerId)}/heartbeat`, key, {
    method: 'POST',
    body: JSON.stringify({ playingStageArn: playing.stageArn }),
  });
}

/**
 * Make-before-break: subscribe to the new stage in a hidden <video>, wait until it plays steadily, then move its
 * tracks into the <video> on screen in one step and end the old subscription. The next heartbeat confirms the switch.
 * On failure the old stage keeps playing and the next heartbeat (which repeats the move) tries again.
 */
async function switchTo(key: string, playing: Playing, move: ViewerMove): Promise<void> {
  // Not yet playing the first stage: the next heartbeat repeats the move.
  if (playing.switching || !playing.sub) return;
  playing.switching = true;
  const old = player();
  const next = document.createElement('video');
  next.muted = old.muted;
  next.autoplay = true;
  next.playsInline = true;
  next.className = 'next';
  old.after(next);
  let sub: Subscription | undefined;
  let live = false;
  const began = performance.now();
  try {
    sub = await subscribe(move, next, hooksFor(key, playing, () => live));
    playing.pending = sub;
    await firstFrame(next, SWITCH_TIMEOUT_MS);
    await steadyPlayback(next, { steadyMs: STEADY_MS, maxGapMs: 200, timeoutMs: SWITCH_TIMEOUT_MS });
    if (current !== playing) throw new Error('left meanwhile');
    // The swap: the new stage's video track replaces the old one in the stream the <video> on screen already plays
    // — the element, its renderer and its place stay, only the source changes. Audio follows once the new video is
    // presented: changing both at once restarts the element's audio clock and Chromium then presents video at about
    // 1 frame/s for a second or two. (Showing a second <video> instead stalls too: one that was not rendered presents
    // its first frame late, and two rendered at once are composited at 1 frame/s.)
    const shown = old.srcObject instanceof MediaStream ? old.srcObject : null;
    const incoming = sub.stream;
    let handover: Promise<void> = Promise.resolve();
    if (shown) {
      for (const t of shown.getVideoTracks()) shown.removeTrack(t);
      for (const t of incoming.getVideoTracks()) shown.addTrack(t);
      sub.stream = shown;
      next.srcObject = null;
      next.remove();
      const moved = sub;
      const oldAudio = shown.getAudioTracks();
      handover = presented(old, 10, AUDIO_SWAP_TIMEOUT_MS).then(() => {
        if (playing.sub !== moved) return;
        // A newer audio track may already have gone straight to the stream on screen (an IVS publisher change).
        if (shown.getAudioTracks().some((t) => !oldAudio.includes(t))) return;
        for (const t of oldAudio) shown.removeTrack(t);
        for (const t of incoming.getAudioTracks()) shown.addTrack(t);
      });
    } else {
      old.removeAttribute('id');
      next.id = 'player';
      next.className = '';
      old.remove();
    }
    live = true;
    const previous = playing.sub;
    playing.sub = sub;
    playing.stageArn = move.stageArn;
    moves++;
    document.body.dataset.moves = String(moves);
    document.body.dataset.switchMs = String(Math.round(performance.now() - began));
    document.body.dataset.switchedAt = String(Math.round(performance.timeOrigin + performance.now()));
    showStage(move.stageId);
    setState('playing', 'ok');
    // The old subscription ends once its audio is no longer played (or at once when there is nothing to hand over),
    // and the switch is confirmed then rather than at the next interval: the old stage can go sooner.
    await handover;
    void previous?.stop();
    await heartbeat(key, playing).catch(() => undefined);
  } catch (err) {
    void sub?.stop();
    next.remove();
    if (!(err instanceof Error && err.message === 'left meanwhile')) errorEl.textContent = `switching stage: ${(err as Error).message}`;
  } finally {
    playing.pending = null;
    playing.switching = false;
  }
}

async function start(key: string, gen: number): Promise<void> {
  errorEl.textContent = '';
  setState('joining', 'warn');
  let viewer: ViewerJoinResponse;
  try {
    viewer = await api<ViewerJoinResponse>('/api/viewers/join', key, { method: 'POST', body: JSON.stringify({ userId: 'web-watch' }) });
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
      forgetKey(KEY);
      setState('not allowed', 'bad');
      errorEl.textContent = 'The viewer key was not accepted; reload the page to enter it again.';
      return;
    }
    if (err instanceof ApiError && err.status === 409) {
      // STAGE_PROVIDER=whip: the stages are external WHIP destinations; nobody watches through Stagecast.
      setState('not available', 'bad');
      errorEl.textContent = err.message;
      return;
    }
    errorEl.textContent = (err as Error).message;
    return rejoin(key, err instanceof ApiError ? err.code : 'network', err instanceof ApiError && err.retryAfterS ? err.retryAfterS * 1000 : 0);
  }
  if (gen !== generation) {
    void api(`/api/viewers/${encodeURIComponent(viewer.viewerId)}`, key, { method: 'DELETE' }).catch(() => undefined);
    return;
  }
  showStage(viewer.stageId);
  document.body.dataset.viewer = viewer.viewerId;

  let hb: number | undefined;
  const playing: Playing = {
    viewer,
    stageArn: viewer.stageArn,
    sub: null,
    pending: null,
    switching: false,
    async stop(keepalive = false) {
      clearInterval(hb);
      // Every request is sent before any is awaited: on pagehide there is no later.
      await Promise.allSettled([
        playing.sub?.stop(keepalive),
        playing.pending?.stop(keepalive),
        api(`/api/viewers/${encodeURIComponent(viewer.viewerId)}`, key, { method: 'DELETE', keepalive }).catch(() => undefined),
      ]);
    },
  };
  current = playing;

  hb = window.setInterval(async () => {
    try {
      const r = await heartbeat(key, playing);
      if (current !== playing) return;
      if (r.move) void switchTo(key, playing, r.move);
      // A server that moves seats without `move` (older API Servers): join again.
      else if (r.stageArn !== playing.stageArn && !playing.switching) rejoin(key, 'moved');
    } catch (err) {
      // 404: our seat is gone (missed heartbeats, or the stage was deleted) — join again.
      if (current === playing && err instanceof ApiError && err.status === 404) rejoin(key, 'seat lost');
    }
  }, viewer.heartbeatIntervalMs);

  try {
    playing.sub = await subscribe(viewer, player(), hooksFor(key, playing, () => true));
    if (current !== playing) void playing.sub.stop();
  } catch (err) {
    if (err instanceof ExternalPlayback) {
      setState('not playable here', 'bad');
      errorEl.textContent = err.message;
      return;
    }
    errorEl.textContent = (err as Error).message;
    if (current === playing) rejoin(key, 'play failed');
  }
}

async function main(): Promise<void> {
  let key = takeKey(KEY);
  if (!key) {
    key = await askKey($('#auth'), 'Viewer key (VIEWER_API_KEY or the API key)');
    sessionStorage.setItem(KEY, key);
  }
  $('#unmute').addEventListener('click', () => {
    const v = player();
    v.muted = !v.muted;
    $('#unmute').textContent = v.muted ? 'Unmute' : 'Mute';
    void v.play().catch(() => undefined);
  });
  // Leave at once when the page goes away: the seat is freed now, not after three missed heartbeats.
  addEventListener('pagehide', () => {
    leaving = true;
    void current?.stop(true);
  });
  // Back from the back/forward cache: the old session was left on pagehide, so join again.
  addEventListener('pageshow', (e) => {
    if (!e.persisted) return;
    leaving = false;
    void start(key, ++generation);
  });
  void start(key, generation);
}

void main();
