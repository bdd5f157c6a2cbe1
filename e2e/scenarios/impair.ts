/**
 * Media that survives a real network: loss, jitter and a blackout. Runs INSIDE a private network namespace (e2e/impairment.test.ts,
 * bench/impair.ts): one system (stage server, API Server, Media Server; ICE on 127.0.0.2), and per case a fresh
 * Chromium broadcaster (WHIP to the Media Server) and a fresh Chromium viewer (WHEP on the stage it is seated on),
 * each through its own UDP impairment relay (helpers/udp-relay.ts). As OBS does, the pages offer without
 * candidates and put the relay's address in place of the server's candidate in the answer, so every media packet
 * of both hops crosses a relay. Fresh pages per case keep the cases independent (no encoder or jitter-buffer state
 * carried over); the system is reused, as a live one would be.
 *
 * Per case: warm up until the viewer plays, impair, measure a window (IMPAIR_SECONDS, default 20), and report the
 * deltas over that window only. Env: IMPAIR_SECONDS, IMPAIR_CASES (comma list of names), IMPAIR_SEED, IMPAIR_VIDEO,
 * IMPAIR_KBPS.
 * Prints progress on stderr and one `RESULT {json}` line.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Page } from 'playwright-core';
import { framesPresentedSince, launchChromium, playWhep, publishWhip, senderStats, stopWhip, videoStats, type SenderStats, type TestBrowser, type VideoStats } from '../helpers/browser.js';
import { CASES, FREEZE_MS, MEDIA_PATHS, RECOVERY_FIELDS, STAGE_PATHS, at, deltaAt, type CaseResult, type ImpairCase } from '../helpers/impair-cases.js';
import { startSystem, type StagecastSystem } from '../helpers/system.js';
import { UdpRelay, type DirectionCounters, type Endpoint } from '../helpers/udp-relay.js';
import { waitFor } from '../helpers/wait.js';
import { writeBusyY4m } from '../helpers/y4m.js';

const BIND = '127.0.0.2';
const SECONDS = Number(process.env.IMPAIR_SECONDS ?? 20);
const SEED = Number(process.env.IMPAIR_SEED ?? 13);
const WANTED = (process.env.IMPAIR_CASES ?? CASES.map((c) => c.name).join(',')).split(',');
/**
 * IMPAIR_VIDEO=busy: an OBS-like feed — the broadcaster's camera plays a busy picture (helpers/y4m.ts) at a pinned
 * IMPAIR_KBPS (default 2500): ~300 SRTP packets/s on the ingest hop against ~100 for Chromium's test pattern (~370
 * kbps, the default), so the same loss rate hits ~3× more packets per second.
 */
const VIDEO = process.env.IMPAIR_VIDEO === 'busy' ? 'busy' : 'pattern';
const KBPS = VIDEO === 'busy' ? Number(process.env.IMPAIR_KBPS ?? 2500) : null;
/** Frames the viewer decodes before the window opens: it plays, and its jitter buffer has settled. */
const WARMUP_FRAMES = 60;

const log = (msg: string) => console.error(`[impair] ${msg}`);
/** The window's length: what is measured, not a synchronisation (conditions are awaited with waitFor). */
const measureFor = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (v: number, d = 1) => Math.round(v * 10 ** d) / 10 ** d;

/** The first UDP host candidate of an SDP: the server's real address, which the relay forwards to. */
function hostCandidate(sdp: string): Endpoint {
  for (const l of sdp.split('\r\n')) {
    const f = l.split(' ');
    if (l.startsWith('a=candidate:') && f.length >= 8 && f[2]!.toLowerCase() === 'udp' && f[7] === 'host') return { address: f[4]!, port: Number(f[5]) };
  }
  throw new Error(`no UDP host candidate in the answer:\n${sdp}`);
}

/** GET a JSON document raw, not through the protocol schemas: they would strip fields they do not know yet. */
async function raw(url: string): Promise<any> {
  const r = await fetch(url, { signal: AbortSignal.timeout(5000) });
  if (r.status !== 200) throw new Error(`${url}: ${r.status}`);
  return r.json();
}

interface Snapshot {
  at: number;
  viewer: VideoStats;
  sender: SenderStats;
  media: any;
  stage: any;
  relays: { ingest: Record<'up' | 'down', DirectionCounters>; viewer: Record<'up' | 'down', DirectionCounters> };
  kernelDrops: { ingest: number; viewer: number };
}

async function runCase(sys: StagecastSystem, browser: TestBrowser, c: ImpairCase, baselineFps: number | null): Promise<CaseResult> {
  const ingestRelay = await UdpRelay.start({ bindAddress: BIND, seed: SEED });
  const viewerRelay = await UdpRelay.start({ bindAddress: BIND, seed: SEED + 1 });
  const pages: Page[] = [];
  let viewerId: string | undefined;
  try {
    // Broadcaster: WHIP through the ingest relay.
    const publisher = await browser.newPage();
    pages.push(publisher);
    const ingest = await sys.ingestToken();
    const publishAt = Date.now();
    const pub = await publishWhip(publisher, ingest.whipUrl, ingest.token, {
      stripOfferCandidates: true,
      answerCandidatesTo: { address: ingestRelay.address, port: ingestRelay.port },
      onAnswer: (sdp) => ingestRelay.setTarget(hostCandidate(sdp)),
      ...(KBPS ? { videoBitrateKbps: KBPS } : {}),
    });
    if (pub.status !== 201) throw new Error(`${c.name}: WHIP POST ${pub.status}`);
    if (pub.offerCandidates.length) throw new Error(`${c.name}: the offer still had candidates`);
    await waitFor(
      async () => {
        const p = (await raw(sys.mediaUrl + '/')).publisher;
        return (p.online && p.lastKeyframeAt && Date.parse(p.lastKeyframeAt) >= publishAt - 1000) || undefined;
      },
      `${c.name}: the Media Server gets the broadcaster's keyframe`,
      20_000,
      100,
    );

    // Viewer: seated by the API Server, WHEP on its stage through the viewer relay.
    const viewer = await browser.newPage();
    pages.push(viewer);
    const seat = await sys.join(`impair-${c.name}`);
    viewerId = seat.viewerId;
    if (seat.playback.type !== 'whep') throw new Error(`${c.name}: playback ${seat.playback.type}`);
    const play = await playWhep(viewer, seat.playback.url, seat.token, {
      stripOfferCandidates: true,
      answerCandidatesTo: { address: viewerRelay.address, port: viewerRelay.port },
      onAnswer: (sdp) => viewerRelay.setTarget(hostCandidate(sdp)),
    });
    if (play.status !== 201) throw new Error(`${c.name}: WHEP POST ${play.status}`);
    await waitFor(async () => (await videoStats(viewer)).framesDecoded >= WARMUP_FRAMES || undefined, `${c.name}: the viewer decodes ${WARMUP_FRAMES} frames`, 30_000, 100);
    if (ingestRelay.counters.up.forwarded === 0 || viewerRelay.counters.down.forwarded === 0) throw new Error(`${c.name}: media bypassed a relay`);

    const snap = async (): Promise<Snapshot> => ({
      at: Date.now(),
      viewer: await videoStats(viewer),
      sender: await senderStats(publisher),
      media: await raw(sys.mediaUrl + '/'),
      stage: ((await raw(sys.stage.url + '/stats')).stages as any[]).find((s) => s.stageArn === seat.stageArn),
      relays: { ingest: structuredClone(ingestRelay.counters), viewer: structuredClone(viewerRelay.counters) },
      kernelDrops: { ingest: ingestRelay.kernelDrops(), viewer: viewerRelay.kernelDrops() },
    });

    // The window: impair, measure, and for the blackout case cut the ingest hop in its middle.
    if (c.ingest.up) ingestRelay.impair('up', c.ingest.up);
    if (c.ingest.down) ingestRelay.impair('down', c.ingest.down);
    if (c.viewer.up) viewerRelay.impair('up', c.viewer.up);
    if (c.viewer.down) viewerRelay.impair('down', c.viewer.down);
    const a = await snap();
    const windowMs = SECONDS * 1000;
    let blackout: { startedAt: number; returnedAt: number } | undefined;
    if (c.blackoutMs) {
      await measureFor(Math.max(0, windowMs / 2 - c.blackoutMs / 2));
      const startedAt = Date.now();
      const returnedAt = await ingestRelay.blackout(c.blackoutMs);
      blackout = { startedAt, returnedAt };
      await measureFor(Math.max(0, a.at + windowMs - Date.now()));
    } else {
      await measureFor(windowMs);
    }
    const b = await snap();
    log(`${c.name}: window done (${b.at - a.at} ms)`);
    return {
      ...figures(c, a, b, baselineFps),
      ...(blackout ? { blackout: await recovery(viewer, blackout) } : {}),
    };
  } finally {
    for (const p of pages.reverse()) {
      await stopWhip(p).catch(() => undefined);
      await p.close().catch(() => undefined);
    }
    if (viewerId) await sys.leave(viewerId).catch(() => undefined);
    // The next case's broadcaster must find the Media Server free again.
    await waitFor(async () => !(await raw(sys.mediaUrl + '/')).publisher.online || undefined, 'the broadcaster gone from the Media Server', 10_000, 100).catch(() => undefined);
    await ingestRelay.close();
    await viewerRelay.close();
  }
}

/** The first frame the viewer presented after the link returned. */
async function recovery(viewer: Page, o: { startedAt: number; returnedAt: number }): Promise<NonNullable<CaseResult['blackout']>> {
  const after = await framesPresentedSince(viewer, o.returnedAt);
  const first = after[0];
  return { ...o, firstFrameAfterMs: first ?? null, recoveryMs: first === undefined ? null : round(first - o.returnedAt) };
}

function figures(c: ImpairCase, a: Snapshot, b: Snapshot, baselineFps: number | null): CaseResult {
  const windowMs = b.at - a.at;
  const v = (k: keyof VideoStats) => (b.viewer[k] as number) - (a.viewer[k] as number);
  const s = (k: keyof SenderStats) => b.sender[k] - a.sender[k];
  const lastFrameAge = b.viewer.lastFrameAt === null ? windowMs : b.at - b.viewer.lastFrameAt;
  const stalledAtEndMs = lastFrameAge > FREEZE_MS ? round(lastFrameAge) : 0;
  const freezesMs = round(v('totalFreezesDuration') * 1000);
  const frozenMs = freezesMs + stalledAtEndMs;
  const fps = round((v('framesDecoded') * 1000) / windowMs, 2);
  const relay = (x: Snapshot['relays']['ingest'], y: Snapshot['relays']['ingest']) => ({
    upForwarded: y.up.forwarded - x.up.forwarded,
    upDropped: y.up.dropped - x.up.dropped,
    downForwarded: y.down.forwarded - x.down.forwarded,
    downDropped: y.down.dropped - x.down.dropped,
    blackoutDropped: y.up.blackoutDropped + y.down.blackoutDropped - x.up.blackoutDropped - x.down.blackoutDropped,
  });
  const media = {} as CaseResult['mediaServer'];
  const stage = {} as CaseResult['stageServer'];
  const sources: CaseResult['sources'] = { mediaServer: {}, stageServer: {} };
  for (const f of RECOVERY_FIELDS) {
    const m = deltaAt(a.media, b.media, MEDIA_PATHS[f]);
    media[f] = m.value;
    sources.mediaServer[f] = m.path;
    const st = deltaAt(a.stage, b.stage, STAGE_PATHS[f]);
    stage[f] = st.value;
    sources.stageServer[f] = st.path;
  }
  media.keyframeRequestsSent = deltaAt(a.media, b.media, ['publisher.keyframeRequestsSent']).value;
  const leg = (snap: Snapshot, k: string) => (snap.media.legs as any[]).reduce((n, l) => n + (at(l, k) ?? 0), 0);
  media.legNacksReceived = leg(b, 'nacksReceived') - leg(a, 'nacksReceived');
  media.legPlisReceived = leg(b, 'plisReceived') - leg(a, 'plisReceived');
  stage.keyframeRequestsSent = deltaAt(a.stage, b.stage, ['keyframeRequestsSent']).value;
  const { name, ...impairment } = c;
  return {
    name,
    windowMs,
    impairment,
    viewer: {
      framesDecoded: v('framesDecoded'),
      fps,
      framesVsBaselinePct: baselineFps ? round((fps / baselineFps) * 100) : null,
      freezes: v('freezeCount') + (stalledAtEndMs ? 1 : 0),
      freezeCount: v('freezeCount'),
      freezesMs,
      stalledAtEndMs,
      frozenMs,
      frozenPct: round((frozenMs / windowMs) * 100, 2),
      pliCount: v('pliCount'),
      nackCount: v('nackCount'),
      packetsLost: v('packetsLost'),
      framesDropped: v('framesDropped'),
    },
    broadcaster: { kbps: round((s('bytesSent') * 8) / windowMs), targetKbps: round(b.sender.targetBitrate / 1000), nackCount: s('nackCount'), pliCount: s('pliCount'), firCount: s('firCount'), retransmittedPacketsSent: s('retransmittedPacketsSent'), keyFramesEncoded: s('keyFramesEncoded') },
    relays: {
      ingest: { ...relay(a.relays.ingest, b.relays.ingest), kernelDrops: b.kernelDrops.ingest - a.kernelDrops.ingest },
      viewer: { ...relay(a.relays.viewer, b.relays.viewer), kernelDrops: b.kernelDrops.viewer - a.kernelDrops.viewer },
    },
    mediaServer: media,
    stageServer: stage,
    sources,
  };
}

let sys: StagecastSystem | undefined;
let browser: TestBrowser | undefined;
let videoFile: string | undefined;
const result: Record<string, unknown> = { seconds: SECONDS, seed: SEED, video: VIDEO, kbps: KBPS };
const cases: CaseResult[] = [];
try {
  const unknown = WANTED.filter((w) => !CASES.some((c) => c.name === w));
  if (unknown.length) throw new Error(`unknown case(s) ${unknown.join(', ')}; known: ${CASES.map((c) => c.name).join(', ')}`);
  // Large stages: every case's viewer is seated on the one stage the pool starts with.
  sys = await startSystem({ stageCapacity: 50, rtcBindAddress: BIND });
  const s = sys;
  await waitFor(async () => ((await s.mediaStats()).stages.connected >= 1 ? true : undefined), 'the Media Server’s leg into the first stage', 20_000);
  if (VIDEO === 'busy') {
    videoFile = join(mkdtempSync(join(tmpdir(), 'sc-impair-')), 'busy.y4m');
    writeBusyY4m(videoFile);
  }
  browser = await launchChromium(videoFile ? { fakeVideoFile: videoFile } : {});
  let baselineFps: number | null = null;
  for (const c of CASES.filter((x) => WANTED.includes(x.name))) {
    log(`${c.name}: starting (${SECONDS} s window)`);
    const r = await runCase(s, browser, c, baselineFps);
    if (c.name === 'baseline') baselineFps = r.viewer.fps;
    cases.push(r);
    log(`${c.name}: ${JSON.stringify(r.viewer)}${r.blackout ? ` recovery ${r.blackout.recoveryMs} ms` : ''}`);
  }
  result.ok = true;
} catch (err) {
  Object.assign(result, { ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  if (sys) for (const a of [sys.media, sys.api, sys.stage]) if (a) result[`${a.name}Logs`] = a.logs.slice(-25);
} finally {
  result.cases = cases;
  await browser?.close();
  await sys?.stop().catch(() => undefined);
  if (videoFile) rmSync(dirname(videoFile), { recursive: true, force: true });
  console.log('RESULT ' + JSON.stringify(result));
}
