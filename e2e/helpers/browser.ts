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

export interface LaunchOptions {
  /** A Y4M file the fake camera plays (looped) instead of Chromium's built-in test pattern. */
  fakeVideoFile?: string;
}

export async function launchChromium(o: LaunchOptions = {}): Promise<TestBrowser> {
  const args = o.fakeVideoFile ? [...CHROMIUM_ARGS, `--use-file-for-fake-video-capture=${o.fakeVideoFile}`] : CHROMIUM_ARGS;
  // playwright-core gives every launch a fresh, temporary profile of its own.
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args });
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
  /** The video inbound-rtp's loss-related counters (0 until there is one); totalFreezesDuration in seconds. */
  freezeCount: number;
  totalFreezesDuration: number;
  pliCount: number;
  nackCount: number;
  packetsLost: number;
  packetsReceived: number;
  framesDropped: number;
  /** Wall-clock ms (performance.timeOrigin + now) of the last frame presented by the <video>, or null. */
  lastFrameAt: number | null;
}

/** A publishing page's video outbound-rtp: what the receiver asked of it (NACK, PLI) and what it resent. */
export interface SenderStats {
  packetsSent: number;
  bytesSent: number;
  /** The encoder's target, bps (what the bandwidth estimate allows). */
  targetBitrate: number;
  nackCount: number;
  pliCount: number;
  firCount: number;
  retransmittedPacketsSent: number;
  framesEncoded: number;
  keyFramesEncoded: number;
}

/**
 * How the page signals, for tests that put an impairment relay (udp-relay.ts) in the path, as OBS connects: no
 * candidates in the offer, so the server learns the client as a peer-reflexive candidate from its checks, and the
 * answer's candidates replaced by the relay's address.
 */
export interface SignalOptions {
  /** Remove `a=candidate` and `a=end-of-candidates` from the offer before the POST. */
  stripOfferCandidates?: boolean;
  /** Every UDP host candidate of the answer gets this address and port before setRemoteDescription. */
  answerCandidatesTo?: { address: string; port: number };
  /**
   * Called in Node with the server's answer as it came (before any rewrite), and awaited before
   * setRemoteDescription: the moment to point a relay at the server's real candidate, before the first check.
   */
  onAnswer?: (answerSdp: string) => void | Promise<void>;
  /**
   * Send video at this bitrate (kbps), as OBS does at its configured rate, instead of where Chromium's bandwidth
   * estimate sits (~600 kbps here: our servers send no transport-cc or REMB). Added to the answer's H.264 fmtp as
   * x-google-{start,min,max}-bitrate, which Chromium's sender honours. The built-in test pattern needs only ~370
   * kbps whatever it is allowed: use it with a busy fake-camera file (y4m.ts).
   */
  videoBitrateKbps?: number;
}

interface PageSignal {
  kbps: number | null;
  strip: boolean;
  rewrite: { address: string; port: number } | null;
  hook: string | null;
}

let hooks = 0;
async function pageSignal(page: Page, o: SignalOptions): Promise<PageSignal> {
  let hook: string | null = null;
  if (o.onAnswer) {
    // exposeFunction names cannot be reused on a page: one fresh name per call.
    hook = `__scOnAnswer${++hooks}`;
    const fn = o.onAnswer;
    await page.exposeFunction(hook, async (sdp: string) => {
      await fn(sdp);
    });
  }
  return { strip: o.stripOfferCandidates ?? false, rewrite: o.answerCandidatesTo ?? null, hook, kbps: o.videoBitrateKbps ?? null };
}

type PageApi = {
  publish(u: string, t: string, o: PageSignal): Promise<PublishResult>;
  play(u: string, t: string, o: PageSignal): Promise<PlayResult>;
  stats(): Promise<VideoStats>;
  senderStats(): Promise<SenderStats>;
  framesSince(t: number): number[];
};
export const publishWhip = async (page: Page, url: string, token: string, o: SignalOptions = {}): Promise<PublishResult> =>
  page.evaluate(([u, t, s]) => (window as unknown as { sc: PageApi }).sc.publish(u, t, s), [url, token, await pageSignal(page, o)] as const);
export const playWhep = async (page: Page, url: string, token: string, o: SignalOptions = {}): Promise<PlayResult> =>
  page.evaluate(([u, t, s]) => (window as unknown as { sc: PageApi }).sc.play(u, t, s), [url, token, await pageSignal(page, o)] as const);
export const videoStats = (page: Page): Promise<VideoStats> => page.evaluate(() => (window as unknown as { sc: PageApi }).sc.stats());
export const senderStats = (page: Page): Promise<SenderStats> => page.evaluate(() => (window as unknown as { sc: PageApi }).sc.senderStats());
/**
 * Wall-clock ms (performance.timeOrigin + now, in the page) of the frames the player's <video> presented after
 * `sinceMs`, oldest first, from a requestVideoFrameCallback loop (the last 8192 frames are kept, ~4.5 min at 30 fps).
 */
export const framesPresentedSince = (page: Page, sinceMs: number): Promise<number[]> => page.evaluate((t) => (window as unknown as { sc: PageApi }).sc.framesSince(t), sinceMs);
export const connectionState = (page: Page): Promise<string> => page.evaluate(() => (window as unknown as { sc: { state(): string } }).sc.state());
export const stopWhip = (page: Page): Promise<number> => page.evaluate(() => (window as unknown as { sc: { stop(): Promise<number> } }).sc.stop());

/** Runs in the page. Plain JavaScript: it is injected as a script tag. */
const PAGE_HELPERS = String.raw`
window.sc = (() => {
  let pc, location, token, t0 = 0, firstFrameAt = null, video;
  // Wall-clock presentation times of the player's frames (a ring, so a long run stays bounded).
  const FRAMES = 8192, frameTimes = new Float64Array(FRAMES);
  let frameCount = 0;
  const cands = (sdp) => sdp.split('\r\n').filter((l) => l.startsWith('a=candidate:'));
  const stripCandidates = (sdp) => sdp.split('\r\n').filter((l) => !l.startsWith('a=candidate:') && l !== 'a=end-of-candidates').join('\r\n');
  // a=candidate:<foundation> <component> <transport> <priority> <address> <port> typ host ...
  const rewriteCandidates = (sdp, to) => sdp.split('\r\n').map((l) => {
    const f = l.split(' ');
    if (!l.startsWith('a=candidate:') || f.length < 8 || f[2].toLowerCase() !== 'udp' || f[7] !== 'host') return l;
    f[4] = to.address; f[5] = String(to.port);
    return f.join(' ');
  }).join('\r\n');
  // Signal options (SignalOptions in Node): strip the offer's candidates, let Node see the answer, rewrite it.
  // a=fmtp:<pt> ...packetization-mode=1... (H.264) gets Chromium's own bitrate bounds.
  const pinBitrate = (sdp, kbps) => sdp.split('\r\n').map((l) => /^a=fmtp:\d+ .*packetization-mode=/.test(l) ? l + ';x-google-start-bitrate=' + kbps + ';x-google-min-bitrate=' + kbps + ';x-google-max-bitrate=' + kbps : l).join('\r\n');
  async function answerFor(body, o) {
    if (o && o.hook) await window[o.hook](body);
    let sdp = o && o.rewrite ? rewriteCandidates(body, o.rewrite) : body;
    if (o && o.kbps) sdp = pinBitrate(sdp, o.kbps);
    return sdp;
  }
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
    async publish(url, tok, o) {
      token = tok;
      const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480, frameRate: 30 }, audio: true });
      pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
      const vt = pc.addTransceiver(stream.getVideoTracks()[0], { direction: 'sendonly', streams: [stream] });
      pc.addTransceiver(stream.getAudioTracks()[0], { direction: 'sendonly', streams: [stream] });
      const h264 = RTCRtpSender.getCapabilities('video').codecs.filter((c) => c.mimeType === 'video/H264' && /packetization-mode=1/.test(c.sdpFmtpLine || '') && /profile-level-id=42e01f/.test(c.sdpFmtpLine || ''));
      // RTX stays in (as the /broadcast page keeps it): the Media Server negotiates it and unwraps resends.
      const rtx = RTCRtpSender.getCapabilities('video').codecs.filter((c) => c.mimeType === 'video/rtx');
      if (h264.length) vt.setCodecPreferences([...h264, ...rtx]);
      await pc.setLocalDescription();
      await gathered(pc);
      const offer = o && o.strip ? stripCandidates(pc.localDescription.sdp) : pc.localDescription.sdp;
      const r = await post(url, tok, offer);
      if (r.status !== 201) return { status: r.status, location: null, offerCandidates: cands(offer), answerCandidates: [], videoCodec: '' };
      location = r.location;
      await pc.setRemoteDescription({ type: 'answer', sdp: await answerFor(r.body, o) });
      const codec = /a=rtpmap:\d+ (\S+)\/90000/.exec(r.body.slice(r.body.indexOf('m=video')));
      return { status: r.status, location, offerCandidates: cands(offer), answerCandidates: cands(r.body), videoCodec: codec ? codec[1] : '' };
    },
    async play(url, tok, o) {
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
      const onFrame = (now) => {
        frameTimes[frameCount++ % FRAMES] = performance.timeOrigin + now;
        video.requestVideoFrameCallback(onFrame);
      };
      video.requestVideoFrameCallback(onFrame);
      await pc.setLocalDescription();
      await gathered(pc);
      const offer = o && o.strip ? stripCandidates(pc.localDescription.sdp) : pc.localDescription.sdp;
      t0 = performance.now();
      const r = await post(url, tok, offer);
      if (r.status !== 201) return { status: r.status, offerCandidates: cands(offer), answerCandidates: [] };
      location = r.location;
      await pc.setRemoteDescription({ type: 'answer', sdp: await answerFor(r.body, o) });
      return { status: r.status, offerCandidates: cands(offer), answerCandidates: cands(r.body) };
    },
    async stats() {
      const out = { framesDecoded: 0, frameWidth: 0, frameHeight: 0, codec: '', firstFrameMs: firstFrameAt === null ? null : firstFrameAt - t0, currentTime: video ? video.currentTime : 0,
        freezeCount: 0, totalFreezesDuration: 0, pliCount: 0, nackCount: 0, packetsLost: 0, packetsReceived: 0, framesDropped: 0,
        lastFrameAt: frameCount ? frameTimes[(frameCount - 1) % FRAMES] : null };
      if (!pc) return out;
      const report = await pc.getStats();
      report.forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video') {
          out.framesDecoded = s.framesDecoded || 0; out.frameWidth = s.frameWidth || 0; out.frameHeight = s.frameHeight || 0;
          for (const k of ['freezeCount', 'totalFreezesDuration', 'pliCount', 'nackCount', 'packetsLost', 'packetsReceived', 'framesDropped']) out[k] = s[k] || 0;
          const c = s.codecId && report.get(s.codecId); if (c) out.codec = c.mimeType;
        }
      });
      return out;
    },
    async senderStats() {
      const out = { packetsSent: 0, bytesSent: 0, targetBitrate: 0, nackCount: 0, pliCount: 0, firCount: 0, retransmittedPacketsSent: 0, framesEncoded: 0, keyFramesEncoded: 0 };
      if (!pc) return out;
      (await pc.getStats()).forEach((s) => {
        if (s.type === 'outbound-rtp' && s.kind === 'video') for (const k of Object.keys(out)) out[k] = s[k] || 0;
      });
      return out;
    },
    framesSince(since) {
      const out = [];
      for (let i = Math.max(0, frameCount - FRAMES); i < frameCount; i++) { const t = frameTimes[i % FRAMES]; if (t > since) out.push(t); }
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
