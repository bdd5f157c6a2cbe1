/**
 * Runs INSIDE a private network namespace (see e2e/consolidation.test.ts). Stage consolidation end to end: the real stage
 * server, API Server and Media Server; Chromium broadcasts its fake camera by WHIP; 8 real /watch pages end up 2 on
 * each of 4 stages of capacity 4 (placeholder seats, heartbeated from here, shape the pool and then leave). Then 4
 * pages close, one per stage: consolidation moves the 3 lone viewers onto the oldest stage, each /watch page switches
 * make-before-break, and the emptied stages are deleted (one may stay as the spare). Every remaining page records
 * when its on-screen <video> presents frames (requestVideoFrameCallback): the longest gap across the move is its
 * freeze. Finally the cost meter's participant-time is compared with what this scenario created. Prints one RESULT.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { CostResponseSchema, ScalingEventsResponseSchema } from '@stagecast/protocol';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ROOT } from '../helpers/apps.js';
import { CHROMIUM_ARGS, launchChromium, publishWhip, type TestBrowser } from '../helpers/browser.js';
import { SECRETS, startSystem, type StagecastSystem } from '../helpers/system.js';
import { waitFor } from '../helpers/wait.js';

const CAPACITY = 4;
const HEARTBEAT_MS = 1000;
const result: Record<string, unknown> = {};
let sys: StagecastSystem | undefined;
let browser: Browser | undefined;
let publisher: TestBrowser | undefined;
const key = { 'x-api-key': SECRETS.API_SECRET_KEY };

/** Seat-time this scenario created, by its own clock: [joined, left) per seat (left undefined while seated). */
const seats = new Map<string, { joined: number; left?: number }>();

async function api<T = any>(path: string, init: RequestInit = {}): Promise<{ status: number; body: T }> {
  const r = await fetch(sys!.apiUrl + path, { ...init, headers: { ...key, ...(init.body ? { 'content-type': 'application/json' } : {}) }, signal: AbortSignal.timeout(15_000) });
  return { status: r.status, body: (r.status === 204 ? undefined : await r.json()) as T };
}

/** Installed before the page's own scripts: records when the on-screen #player presents a frame (epoch ms). */
const FRAME_RECORDER = String.raw`
(() => {
  const frames = [];
  window.__frames = frames;
  const watch = (v) => {
    if (v.__watched) return;
    v.__watched = true;
    const cb = (now) => {
      if (v.id === 'player') { frames.push(performance.timeOrigin + now); if (frames.length > 20000) frames.splice(0, 10000); }
      if (v.isConnected) v.requestVideoFrameCallback(cb);
    };
    v.requestVideoFrameCallback(cb);
  };
  // Decoded-frame counts of the on-screen and the next video every 100 ms: tells a render stall from a decode stall.
  const decoded = [];
  window.__decoded = decoded;
  setInterval(() => {
    const q = (sel) => { const v = document.querySelector(sel); return v ? v.getVideoPlaybackQuality().totalVideoFrames : -1; };
    decoded.push([Math.round(performance.timeOrigin + performance.now()), q('#player'), q('video.next')]);
    if (decoded.length > 3000) decoded.splice(0, 1500);
  }, 100);
  new MutationObserver(() => document.querySelectorAll('video').forEach(watch)).observe(document, { childList: true, subtree: true });
  document.addEventListener('DOMContentLoaded', () => document.querySelectorAll('video').forEach(watch));
})();
`;

interface Watcher {
  page: Page;
  viewer: string;
  stage: string;
}

const data = (p: Page, name: string): Promise<string | undefined> => p.evaluate((n) => document.body.dataset[n], name);

/** Longest gap between presented frames of the on-screen video within [from, to] (epoch ms), and the frame count. */
async function freeze(p: Page, from: number, to: number, anchor: number): Promise<{ maxGapMs: number; frames: number; gaps: { atMs: number; ms: number }[] }> {
  const frames = await p.evaluate(() => (window as unknown as { __frames: number[] }).__frames.slice());
  const inside = frames.filter((t) => t >= from && t <= to);
  // The edges count too: from `from` to the first frame and from the last frame to `to`.
  const points = [from, ...inside, to];
  const gaps: { atMs: number; ms: number }[] = [];
  for (let i = 1; i < points.length; i++) gaps.push({ atMs: Math.round(points[i - 1]! - anchor), ms: Math.round(points[i]! - points[i - 1]!) });
  gaps.sort((a, b) => b.ms - a.ms);
  return { maxGapMs: gaps[0]?.ms ?? 0, frames: inside.length, gaps: gaps.slice(0, 4) };
}

async function stagesNow() {
  return sys!.stages();
}

try {
  const t0 = Date.now();
  sys = await startSystem({
    stageCapacity: CAPACITY,
    minStages: 1,
    maxStages: 8,
    scaleDownCooldownS: 1,
    heartbeatIntervalMs: 500,
    rtcBindAddress: '127.0.0.2',
    env: {
      api: {
        VIEWER_HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS),
        CONSOLIDATION_ENABLED: 'true',
        CONSOLIDATION_INTERVAL_S: '1',
        // A stage is sparse at 1 viewer of 4: two a stage stay put, a lone viewer is merged.
        CONSOLIDATION_SPARSE_RATIO: '0.25',
        LOG_LEVEL: 'info',
      },
    },
  });
  const startedAt = Date.now();

  // The broadcaster: Chromium's fake camera by WHIP into the Media Server (which legs into every stage).
  publisher = await launchChromium();
  const pubPage = await publisher.newPage();
  // 320×240 at 15 fps: nine Chromium pages decode on a shared 2-core machine; a freeze here must be the switch's, not
  // a starved decoder's.
  await pubPage.evaluate(() => {
    const md = navigator.mediaDevices;
    const orig = md.getUserMedia.bind(md);
    md.getUserMedia = (c) => orig({ ...c, video: { width: 320, height: 240, frameRate: 15 } });
  });
  const ingest = await sys.ingestToken();
  const pub = await publishWhip(pubPage, ingest.whipUrl, ingest.token);
  if (pub.status !== 201) throw new Error(`broadcaster WHIP: ${pub.status}`);

  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [...CHROMIUM_ARGS, '--disable-background-timer-throttling', '--disable-renderer-backgrounding', '--disable-backgrounding-occluded-windows'],
  });
  const ctx = await browser.newContext({ viewport: { width: 480, height: 420 } });
  await ctx.addInitScript({ content: FRAME_RECORDER });
  const errors: string[] = [];

  // Placeholder seats (no video), heartbeated from here, so that real pages land two on each stage.
  const placeholders: string[] = [];
  const hbTimer = setInterval(() => {
    for (const id of placeholders) void api(`/api/viewers/${id}/heartbeat`, { method: 'POST', body: '{}' }).catch(() => undefined);
  }, HEARTBEAT_MS / 2);
  const openWatch = async (): Promise<Watcher> => {
    const page = await ctx.newPage();
    page.on('pageerror', (e) => errors.push(e.message));
    const opened = Date.now();
    await page.goto(`${sys!.apiUrl}/watch#key=${encodeURIComponent(SECRETS.API_SECRET_KEY)}`);
    const viewer = await waitFor(async () => data(page, 'viewer'), 'a /watch page joined', 30_000);
    seats.set(viewer, { joined: opened });
    await waitFor(async () => (await data(page, 'state')) === 'playing', `watch ${viewer}: playing`, 40_000);
    const stageId = (await data(page, 'stage'))!;
    return { page, viewer, stage: stageId };
  };
  const watchers: Watcher[] = [];
  try {
    for (let s = 0; s < 4; s++) {
      watchers.push(await openWatch(), await openWatch());
      for (let i = 0; i < 2; i++) {
        const before = Date.now();
        const j = await api<{ viewerId: string; stageId: string }>('/api/viewers/join', { method: 'POST', body: '{}' });
        if (j.status !== 201) throw new Error(`placeholder join: ${j.status} ${JSON.stringify(j.body)}`);
        seats.set(j.body.viewerId, { joined: before });
        placeholders.push(j.body.viewerId);
      }
    }
    const byStage = new Map<string, number>();
    for (const w of watchers) byStage.set(w.stage, (byStage.get(w.stage) ?? 0) + 1);
    result.pagesPerStage = [...byStage.values()];
    if (byStage.size !== 4 || [...byStage.values()].some((n) => n !== 2)) throw new Error(`pages not 2 a stage: ${JSON.stringify([...byStage])}`);
    // The placeholders leave: 8 real viewers on 4 stages of 4, the spare goes.
    for (const id of placeholders.splice(0)) {
      const r = await api(`/api/viewers/${id}`, { method: 'DELETE' });
      seats.get(id)!.left = Date.now();
      if (r.status !== 204) throw new Error(`placeholder leave: ${r.status}`);
    }
  } finally {
    clearInterval(hbTimer);
  }
  const settled = await waitFor(async () => {
    const l = await stagesNow();
    return l.length === 4 && l.every((s) => s.viewers === 2) ? l : undefined;
  }, '8 viewers on 4 stages (spare deleted)', 30_000);
  result.before = settled.map((s) => ({ stage: s.stageId, viewers: s.viewers, connected: s.connected }));
  // Every page plays (frames flowing) before the move.
  for (const w of watchers) await waitFor(async () => (await w.page.evaluate(() => (window as unknown as { __frames: number[] }).__frames.length)) > 30, `watch ${w.viewer}: frames`, 20_000);

  // 4 viewers leave, one from each stage (pagehide → DELETE), all at once.
  const leaving = [1, 3, 5, 7].map((i) => watchers[i]!);
  const staying = [0, 2, 4, 6].map((i) => watchers[i]!);
  const leaveAt = Date.now();
  await Promise.all(leaving.map((w) => w.page.close({ runBeforeUnload: true })));
  for (const w of leaving) seats.get(w.viewer)!.left = Date.now();

  // All remaining viewers on one stage, each page playing it; the moved pages switched.
  const final = await waitFor(async () => {
    const l = await stagesNow();
    const occupied = l.filter((s) => s.viewers > 0);
    if (occupied.length !== 1 || occupied[0]!.viewers !== 4) return undefined;
    const shown = await Promise.all(staying.map((w) => data(w.page, 'stage')));
    const states = await Promise.all(staying.map((w) => data(w.page, 'state')));
    return shown.every((s) => s === occupied[0]!.stageId) && states.every((s) => s === 'playing') ? { stage: occupied[0]!.stageId, pool: l } : undefined;
  }, 'the 4 remaining viewers all on one stage and playing it', 60_000);
  const movedAt = Date.now();
  // The emptied stages go: the pool ends as the full stage plus at most one spare.
  const pool = await waitFor(async () => {
    const l = await stagesNow();
    return l.length <= 2 && l.every((s) => s.state === 'active') ? l : undefined;
  }, 'emptied stages deleted', 30_000);
  const endAt = Date.now() + 1000;
  // Frames after the move, so the window has a closed right edge.
  await waitFor(async () => {
    const f = await Promise.all(staying.map((w) => w.page.evaluate((t) => (window as unknown as { __frames: number[] }).__frames.some((x) => x > t), endAt)));
    return f.every(Boolean);
  }, 'frames after the window', 15_000);

  const perViewer = [];
  for (const w of staying) {
    const moves = Number((await data(w.page, 'moves')) ?? 0);
    perViewer.push({
      viewer: w.viewer,
      from: w.stage,
      to: await data(w.page, 'stage'),
      moves,
      switchMs: moves ? Number(await data(w.page, 'switchMs')) : null,
      reconnects: await w.page.textContent('#reconnects'),
      decoded: moves
        ? await w.page.evaluate((t) => (window as unknown as { __decoded: number[][] }).__decoded.filter((d) => d[0]! > t - 2500 && d[0]! < t + 2500).map((d) => [d[0]! - t, d[1], d[2]]), Number(await data(w.page, 'switchedAt')))
        : undefined,
      // Gaps are timed from the page's swap of <video> elements (or from the leave, for the viewer not moved).
      ...(await freeze(w.page, leaveAt, endAt, moves ? Number(await data(w.page, 'switchedAt')) : leaveAt)),
    });
  }
  result.viewers = perViewer;
  result.final = { stage: final.stage, pool: pool.map((s) => ({ stage: s.stageId, viewers: s.viewers })) };
  result.moveMs = movedAt - leaveAt;
  const events = ScalingEventsResponseSchema.parse((await api('/api/scaling/events?limit=1000')).body).events.reverse();
  const ours = events.filter((e) => Date.parse(e.at) >= leaveAt);
  result.eventsAfterLeave = ours.map((e) => ({ action: e.action, stage: e.stageArn?.split('/').pop(), reason: e.reason }));
  const art = join(ROOT, 'test-artifacts');
  mkdirSync(art, { recursive: true });
  await staying[1]!.page.screenshot({ path: join(art, 'consolidation-watch-moved.png') });

  // The cost meter against what this scenario created. Viewers: seat-time by our own clock (the meter ticks once a
  // second; each seat's edges may differ by about that). Publishers: each stage's connected leg, bounded above by
  // the stage's life (create → delete) from the scaling events.
  const queryAt = Date.now();
  await waitFor(async () => {
    const c = CostResponseSchema.parse((await api(`/api/cost?from=${encodeURIComponent(new Date(t0 - 60_000).toISOString())}`)).body);
    return c.meteredUntil !== null && Date.parse(c.meteredUntil) >= queryAt ? c : undefined;
  }, 'meter ticked past the query time', 5000);
  const cost = CostResponseSchema.parse((await api(`/api/cost?from=${encodeURIComponent(new Date(t0 - 60_000).toISOString())}&to=${encodeURIComponent(new Date(queryAt).toISOString())}`)).body);
  let viewerSec = 0;
  for (const s of seats.values()) viewerSec += ((s.left ?? queryAt) - s.joined) / 1000;
  const life = new Map<string, { from: number; to: number }>();
  for (const e of events) {
    if (!e.stageArn) continue;
    if (e.action === 'create' || e.action === 'adopt') life.set(e.stageArn, { from: Date.parse(e.at), to: queryAt });
    if (e.action === 'delete' || e.action === 'drop') {
      const l = life.get(e.stageArn);
      if (l) l.to = Date.parse(e.at);
    }
  }
  const stageSecMax = [...life.values()].reduce((n, l) => n + (l.to - l.from) / 1000, 0);
  result.meter = {
    participantMinutes: cost.totals.participantMinutes,
    viewerMinutesMetered: cost.totals.viewerHours * 60,
    viewerMinutesCreated: viewerSec / 60,
    seats: seats.size,
    publisherMinutesMetered: cost.totals.publisherHours * 60,
    publisherMinutesStageLifeMax: stageSecMax / 60,
    stages: life.size,
    estimatedCost: cost.totals.estimatedCost,
    pricePerParticipantHour: cost.pricePerParticipantHour,
  };
  // The dashboard's cost tile, as the README shows it.
  const dash = await ctx.newPage();
  await dash.setViewportSize({ width: 1100, height: 800 });
  dash.on('pageerror', (e) => errors.push(`dashboard: ${e.message}`));
  await dash.goto(`${sys.apiUrl}/dashboard#key=${encodeURIComponent(SECRETS.API_SECRET_KEY)}`);
  await waitFor(async () => Number(await data(dash, 'costPolls')) >= 1 && Number(await data(dash, 'polls')) >= 3, 'dashboard: cost tile drawn', 20_000);
  result.costTile = await dash.evaluate(() => ['#k-rate', '#k-live', '#k-day'].map((s) => document.querySelector(s)?.textContent ?? ''));
  await dash.locator('#cost').screenshot({ path: join(art, 'dashboard-cost.png') });
  await dash.screenshot({ path: join(art, 'consolidation-dashboard.png'), fullPage: true });
  result.pageErrors = errors;
  result.systemMs = startedAt - t0;
  result.ok = true;
} catch (err) {
  Object.assign(result, { ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  try {
    result.apiLog = sys?.api.logs
      .slice(-60)
      .map((l) => JSON.stringify(l))
      .join('\n');
  } catch {
    /* no logs */
  }
} finally {
  await browser?.close().catch(() => undefined);
  await publisher?.close().catch(() => undefined);
  await sys?.stop().catch(() => undefined);
  console.log('RESULT ' + JSON.stringify(result));
  process.exit(0);
}
