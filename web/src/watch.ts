/**
 * /watch: joins as a viewer (POST /api/viewers/join), plays the assigned stage (WHEP for local stages, the IVS
 * SDK for IVS stages), heartbeats, leaves on close, and joins again by itself — with backoff — when the
 * connection fails, the heartbeat is refused (seat lost, stage deleted) or the server moves it to another stage.
 */
import './style.css';
import type { ViewerJoinResponse } from '@stagecast/protocol';
import { $, ApiError, api, askKey, forgetKey, takeKey } from './lib/api.js';
import { playIvs } from './lib/ivs.js';
import { RateMeter, kbps } from './lib/stats.js';
import { negotiate } from './lib/whip.js';

const KEY = 'stagecast.viewerKey';
const video = $<HTMLVideoElement>('#player');
const stateEl = $('#state');
const errorEl = $('#error');

interface Playing {
  viewer: ViewerJoinResponse;
  stop(keepalive?: boolean): Promise<void>;
}

let current: Playing | null = null;
let reconnects = 0;
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
  $('#stage').textContent = viewer.stageId;
  document.body.dataset.stage = viewer.stageId;
  document.body.dataset.viewer = viewer.viewerId;

  const stops: ((keepalive: boolean) => Promise<void> | void)[] = [];
  const playing: Playing = {
    viewer,
    async stop(keepalive = false) {
      // Every request is sent before any is awaited: on pagehide there is no later.
      const pending: Promise<unknown>[] = stops.splice(0).map(async (s) => s(keepalive));
      pending.push(api(`/api/viewers/${encodeURIComponent(viewer.viewerId)}`, key, { method: 'DELETE', keepalive }).catch(() => undefined));
      await Promise.allSettled(pending);
    },
  };
  current = playing;

  const hb = window.setInterval(async () => {
    try {
      const r = await api<{ ok: true; stageArn: string }>(`/api/viewers/${encodeURIComponent(viewer.viewerId)}/heartbeat`, key, { method: 'POST', body: '{}' });
      if (current === playing && r.stageArn !== viewer.stageArn) rejoin(key, 'moved');
    } catch (err) {
      // 404: our seat is gone (missed heartbeats, or the stage was deleted) — join again.
      if (current === playing && err instanceof ApiError && err.status === 404) rejoin(key, 'seat lost');
    }
  }, viewer.heartbeatIntervalMs);
  stops.push(() => clearInterval(hb));

  try {
    if (viewer.playback.type === 'whep') {
      const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
      pc.addTransceiver('video', { direction: 'recvonly' });
      pc.addTransceiver('audio', { direction: 'recvonly' });
      const ms = new MediaStream();
      pc.addEventListener('track', (e) => {
        ms.addTrack(e.track);
        video.srcObject = ms;
      });
      let downTimer: number | undefined;
      pc.addEventListener('connectionstatechange', () => {
        if (current !== playing) return;
        const s = pc.connectionState;
        clearTimeout(downTimer);
        if (s === 'connected') {
          failures = 0;
          setState('playing', 'ok');
        } else if (s === 'failed' || s === 'closed') rejoin(key, `connection ${s}`);
        // "disconnected" often heals by itself; give it a few seconds.
        else if (s === 'disconnected') downTimer = window.setTimeout(() => current === playing && rejoin(key, 'disconnected'), 4000);
        else setState(s, 'warn');
      });
      const session = await negotiate(pc, viewer.playback.url, viewer.token);
      stops.push((keepalive) => {
        clearTimeout(downTimer);
        return session.stop({ keepalive });
      });
      const meter = new RateMeter();
      const statsTimer = window.setInterval(async () => {
        const r = await meter.sample(pc, 'inbound-rtp');
        if (!r) return;
        $('#bitrate').textContent = kbps(r.bitrateBps);
        $('#resolution').textContent = r.width ? `${r.width}×${r.height}` : '–';
        $('#fps').textContent = r.fps ? r.fps.toFixed(0) : '–';
      }, 1000);
      stops.push(() => clearInterval(statsTimer));
    } else if (viewer.playback.type === 'ivs') {
      const ivs = await playIvs(video, viewer.token, (s) => {
        if (current !== playing) return;
        if (s === 'connected') {
          failures = 0;
          setState('playing', 'ok');
        } else if (s === 'errored' || s === 'disconnected') rejoin(key, `ivs ${s}`);
        else setState(s, 'warn');
      });
      stops.push(() => ivs.stop());
    } else {
      setState('not playable here', 'bad');
      errorEl.textContent = 'This stage is an external WHIP destination: watch it where it is published.';
    }
  } catch (err) {
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
    video.muted = !video.muted;
    $('#unmute').textContent = video.muted ? 'Unmute' : 'Mute';
    void video.play().catch(() => undefined);
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
