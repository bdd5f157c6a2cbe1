/**
 * Headless Chromium (Debian's /usr/bin/chromium, never a downloaded one) driven by playwright-core, with a fake
 * camera, and in-page WHIP publishing / WHEP playing written against the browser's own WebRTC stack.
 */
import { createServer, type Server } from 'node:http';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--autoplay-policy=no-user-gesture-required',
  // Real addresses in candidates (no mDNS .local names): the peers are our own servers.
  '--disable-features=WebRtcHideLocalIpsWithMdns',
];

export interface TestBrowser {
  browser: Browser;
  /** A page on a blank http://127.0.0.1 origin (a secure context, so getUserMedia works). */
  newPage(): Promise<Page>;
  close(): Promise<void>;
}

export async function launchChromium(): Promise<TestBrowser> {
  // playwright-core gives every launch a fresh, temporary profile of its own.
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  const server: Server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<!doctype html><html><body style="margin:0;background:#111"></body></html>');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
  return {
    browser,
    async newPage() {
      const page = await browser.newPage();
      await page.goto(origin);
      await page.addScriptTag({ content: PAGE_HELPERS });
      return page;
    },
    async close() {
      await browser.close().catch(() => undefined);
      server.closeAllConnections();
      server.close();
    },
  };
}

export interface PublishResult {
  status: number;
  location: string | null;
  offerCandidates: string[];
  answerCandidates: string[];
  videoCodec: string;
}

export interface PlayResult {
  status: number;
  offerCandidates: string[];
  answerCandidates: string[];
}

export interface VideoStats {
  framesDecoded: number;
  frameWidth: number;
  frameHeight: number;
  codec: string;
  /** ms from the WHEP POST to the first rendered frame. */
  firstFrameMs: number | null;
  currentTime: number;
}

export const publishWhip = (page: Page, url: string, token: string): Promise<PublishResult> =>
  page.evaluate(([u, t]) => (window as unknown as { sc: { publish(u: string, t: string): Promise<PublishResult> } }).sc.publish(u!, t!), [url, token]);
export const playWhep = (page: Page, url: string, token: string): Promise<PlayResult> =>
  page.evaluate(([u, t]) => (window as unknown as { sc: { play(u: string, t: string): Promise<PlayResult> } }).sc.play(u!, t!), [url, token]);
export const videoStats = (page: Page): Promise<VideoStats> => page.evaluate(() => (window as unknown as { sc: { stats(): Promise<VideoStats> } }).sc.stats());
export const connectionState = (page: Page): Promise<string> => page.evaluate(() => (window as unknown as { sc: { state(): string } }).sc.state());
export const stopWhip = (page: Page): Promise<number> => page.evaluate(() => (window as unknown as { sc: { stop(): Promise<number> } }).sc.stop());

/** Runs in the page. Plain JavaScript: it is injected as a script tag. */
const PAGE_HELPERS = String.raw`
window.sc = (() => {
  let pc, location, token, t0 = 0, firstFrameAt = null, video;
  const cands = (sdp) => sdp.split('\r\n').filter((l) => l.startsWith('a=candidate:'));
  const gathered = (pc) => new Promise((r) => {
    if (pc.iceGatheringState === 'complete') return r();
    pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && r());
    setTimeout(r, 5000);
  });
  async function post(url, tok, sdp) {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/sdp', authorization: 'Bearer ' + tok }, body: sdp });
    return { status: res.status, location: res.headers.get('location'), body: await res.text() };
  }
  return {
    async publish(url, tok) {
      token = tok;
      const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480, frameRate: 30 }, audio: true });
      pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
      const vt = pc.addTransceiver(stream.getVideoTracks()[0], { direction: 'sendonly', streams: [stream] });
      pc.addTransceiver(stream.getAudioTracks()[0], { direction: 'sendonly', streams: [stream] });
      const h264 = RTCRtpSender.getCapabilities('video').codecs.filter((c) => c.mimeType === 'video/H264' && /packetization-mode=1/.test(c.sdpFmtpLine || '') && /profile-level-id=42e01f/.test(c.sdpFmtpLine || ''));
      if (h264.length) vt.setCodecPreferences(h264);
      await pc.setLocalDescription();
      await gathered(pc);
      const offer = pc.localDescription.sdp;
      const r = await post(url, tok, offer);
      if (r.status !== 201) return { status: r.status, location: null, offerCandidates: cands(offer), answerCandidates: [], videoCodec: '' };
      location = r.location;
      await pc.setRemoteDescription({ type: 'answer', sdp: r.body });
      const codec = /a=rtpmap:\d+ (\S+)\/90000/.exec(r.body.slice(r.body.indexOf('m=video')));
      return { status: r.status, location, offerCandidates: cands(offer), answerCandidates: cands(r.body), videoCodec: codec ? codec[1] : '' };
    },
    async play(url, tok) {
      token = tok;
      pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
      pc.addTransceiver('video', { direction: 'recvonly' });
      pc.addTransceiver('audio', { direction: 'recvonly' });
      video = document.createElement('video');
      video.muted = true; video.autoplay = true; video.playsInline = true; video.width = 640; video.height = 480;
      document.body.append(video);
      const ms = new MediaStream();
      pc.ontrack = (e) => { ms.addTrack(e.track); video.srcObject = ms; };
      video.requestVideoFrameCallback(() => { firstFrameAt = performance.now(); });
      await pc.setLocalDescription();
      await gathered(pc);
      const offer = pc.localDescription.sdp;
      t0 = performance.now();
      const r = await post(url, tok, offer);
      if (r.status !== 201) return { status: r.status, offerCandidates: cands(offer), answerCandidates: [] };
      location = r.location;
      await pc.setRemoteDescription({ type: 'answer', sdp: r.body });
      return { status: r.status, offerCandidates: cands(offer), answerCandidates: cands(r.body) };
    },
    async stats() {
      const out = { framesDecoded: 0, frameWidth: 0, frameHeight: 0, codec: '', firstFrameMs: firstFrameAt === null ? null : firstFrameAt - t0, currentTime: video ? video.currentTime : 0 };
      if (!pc) return out;
      const report = await pc.getStats();
      report.forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video') {
          out.framesDecoded = s.framesDecoded || 0; out.frameWidth = s.frameWidth || 0; out.frameHeight = s.frameHeight || 0;
          const c = s.codecId && report.get(s.codecId); if (c) out.codec = c.mimeType;
        }
      });
      return out;
    },
    state() { return pc ? pc.connectionState : 'none'; },
    async stop() {
      const res = location ? await fetch(location, { method: 'DELETE', headers: { authorization: 'Bearer ' + token } }) : null;
      pc && pc.close();
      return res ? res.status : 0;
    },
  };
})();
`;
