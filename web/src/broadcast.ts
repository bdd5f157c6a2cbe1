/**
 * /broadcast: pick a camera and a microphone, preview, go live by WHIP to the Media Server with an ingest token
 * from POST /api/media/ingest-token (x-api-key), watch the stream's stats, stop.
 */
import './style.css';
import type { IngestTokenResponse } from '@stagecast/protocol';
import { $, ApiError, api, askKey, forgetKey, takeKey } from './lib/api.js';
import { RateMeter, kbps } from './lib/stats.js';
import { negotiate, preferBaselineH264, WhipError, type Session } from './lib/whip.js';

const KEY = 'stagecast.apiKey';
const preview = $<HTMLVideoElement>('#preview');
const camera = $<HTMLSelectElement>('#camera');
const mic = $<HTMLSelectElement>('#mic');
const liveBtn = $<HTMLButtonElement>('#live');
const stopBtn = $<HTMLButtonElement>('#stop');
const errorEl = $('#error');
const stateEl = $('#state');

let stream: MediaStream | null = null;
let session: Session | null = null;
let statsTimer: number | undefined;

function setState(text: string, tone: '' | 'ok' | 'warn' | 'bad' = ''): void {
  stateEl.textContent = text;
  stateEl.className = `pill ${tone}`;
  document.body.dataset.state = text;
}

async function listDevices(): Promise<void> {
  const devices = await navigator.mediaDevices.enumerateDevices();
  const fill = (sel: HTMLSelectElement, kind: MediaDeviceKind, current?: string) => {
    sel.replaceChildren(
      ...devices
        .filter((d) => d.kind === kind)
        .map((d, i) => {
          const o = new Option(d.label || `${kind === 'videoinput' ? 'Camera' : 'Microphone'} ${i + 1}`, d.deviceId);
          o.selected = d.deviceId === current;
          return o;
        }),
    );
  };
  fill(camera, 'videoinput', stream?.getVideoTracks()[0]?.getSettings().deviceId);
  fill(mic, 'audioinput', stream?.getAudioTracks()[0]?.getSettings().deviceId);
}

async function openDevices(): Promise<void> {
  stream?.getTracks().forEach((t) => t.stop());
  const video: MediaTrackConstraints = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } };
  if (camera.value) video.deviceId = { exact: camera.value };
  const audio: MediaTrackConstraints | boolean = mic.value ? { deviceId: { exact: mic.value } } : true;
  stream = await navigator.mediaDevices.getUserMedia({ video, audio });
  preview.srcObject = stream;
  await listDevices();
  // Switching devices while live: replace the tracks in place, no renegotiation.
  if (session) {
    for (const sender of session.pc.getSenders()) {
      const next = sender.track?.kind === 'audio' ? stream.getAudioTracks()[0] : stream.getVideoTracks()[0];
      if (next) await sender.replaceTrack(next);
    }
  }
}

async function goLive(key: string): Promise<void> {
  if (!stream) throw new Error('no camera');
  liveBtn.disabled = true;
  errorEl.textContent = '';
  setState('connecting', 'warn');
  const ingest = await api<IngestTokenResponse>('/api/media/ingest-token', key, { method: 'POST', body: '{}' });
  const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
  const vt = pc.addTransceiver(stream.getVideoTracks()[0]!, { direction: 'sendonly', streams: [stream] });
  preferBaselineH264(vt);
  const at = stream.getAudioTracks()[0];
  if (at) pc.addTransceiver(at, { direction: 'sendonly', streams: [stream] });
  pc.addEventListener('connectionstatechange', () => {
    const s = pc.connectionState;
    setState(s === 'connected' ? 'live' : s, s === 'connected' ? 'ok' : s === 'failed' || s === 'closed' ? 'bad' : 'warn');
  });
  session = await negotiate(pc, ingest.whipUrl, ingest.token);
  // IVS's ceiling (8.5 Mbps) with room to spare; the browser adapts below it.
  const p = vt.sender.getParameters();
  if (p.encodings?.[0]) {
    p.encodings[0].maxBitrate = 2_500_000;
    await vt.sender.setParameters(p).catch(() => undefined);
  }
  stopBtn.disabled = false;
  const meter = new RateMeter();
  statsTimer = window.setInterval(async () => {
    if (!session) return;
    const r = await meter.sample(session.pc, 'outbound-rtp');
    if (!r) return;
    $('#bitrate').textContent = kbps(r.bitrateBps);
    $('#resolution').textContent = r.width ? `${r.width}×${r.height}` : '–';
    $('#fps').textContent = r.fps ? r.fps.toFixed(0) : '–';
    $('#codec').textContent = r.codec || '–';
  }, 1000);
}

async function stop(): Promise<void> {
  clearInterval(statsTimer);
  const s = session;
  session = null;
  await s?.stop();
  setState('offline');
  stopBtn.disabled = true;
  liveBtn.disabled = false;
}

async function main(): Promise<void> {
  let key = takeKey(KEY);
  if (!key) {
    key = await askKey($('#auth'), 'API key (x-api-key; `npm start` prints a link that fills it in)');
    sessionStorage.setItem(KEY, key);
  }
  try {
    await openDevices();
  } catch (err) {
    errorEl.textContent = `Camera/microphone: ${(err as Error).message}`;
    return;
  }
  setState('offline');
  liveBtn.disabled = false;
  camera.addEventListener('change', () => void openDevices().catch((e: Error) => (errorEl.textContent = e.message)));
  mic.addEventListener('change', () => void openDevices().catch((e: Error) => (errorEl.textContent = e.message)));
  liveBtn.addEventListener('click', () => {
    void goLive(key).catch(async (err: unknown) => {
      await stop();
      setState('failed', 'bad');
      if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
        forgetKey(KEY);
        errorEl.textContent = 'The API key was not accepted; reload the page to enter it again.';
      } else if (err instanceof WhipError && err.status === 409) {
        // One broadcaster at a time. A session of ours that died (a crashed or closed tab) gives way after a few
        // seconds without media (the Media Server's INGEST_SILENCE_TAKEOVER_S).
        errorEl.textContent = 'Another broadcaster is live. If that was you in another tab or a session that just died, try again in a few seconds.';
      } else errorEl.textContent = (err as Error).message;
    });
  });
  stopBtn.addEventListener('click', () => void stop());
  // Leaving the page ends the WHIP session at once (DELETE), instead of after an ICE timeout.
  addEventListener('pagehide', () => void session?.stop({ keepalive: true }));
}

void main();
