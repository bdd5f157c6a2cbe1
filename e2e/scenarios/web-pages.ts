/**
 * Runs INSIDE a private network namespace (see e2e/web-pages.test.ts). Starts the whole system the way the README
 * says — `npm start`, i.e. `node --import tsx scripts/start.ts` — with free ports and STAGE_CAPACITY=1, reads the page
 * links it prints, and drives the real pages in headless Chromium: /broadcast goes live with the fake camera, two
 * /watch pages land on different stages and play, /dashboard shows both stages, both viewers and the broadcaster; a
 * /watch page whose seat is taken, then one whose stage server is killed, joins again by itself.
 * Screenshots go to test-artifacts/. Ctrl-C (SIGINT) must then stop everything. Prints one RESULT line.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ROOT } from '../helpers/apps.js';
import { CHROMIUM_ARGS } from '../helpers/browser.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';

const dataDir = mkdtempSync(join(tmpdir(), 'sc-web-'));
const artifacts = join(ROOT, 'test-artifacts');
const result: Record<string, unknown> = {};
let system: ChildProcess | undefined;
let browser: Browser | undefined;
let output = '';

interface Playback {
  frames: number;
  currentTime: number;
  width: number;
  height: number;
  paused: boolean;
}
const playback = (p: Page): Promise<Playback> =>
  p.evaluate(() => {
    const v = document.querySelector<HTMLVideoElement>('#player')!;
    return { frames: v.getVideoPlaybackQuality().totalVideoFrames, currentTime: v.currentTime, width: v.videoWidth, height: v.videoHeight, paused: v.paused };
  });
const bodyData = (p: Page, name: string): Promise<string | undefined> => p.evaluate((n) => document.body.dataset[n], name);

/** The video element advances: more frames decoded and a later currentTime than a moment ago. */
async function advances(p: Page, what: string): Promise<{ before: Playback; after: Playback }> {
  const before = await waitFor(async () => {
    const s = await playback(p);
    return s.frames >= 10 && s.width > 0 ? s : undefined;
  }, `${what}: first decoded frames`, 20_000);
  const after = await waitFor(async () => {
    const s = await playback(p);
    return s.frames >= before.frames + 15 && s.currentTime > before.currentTime + 0.5 ? s : undefined;
  }, `${what}: video keeps advancing`, 15_000);
  return { before, after };
}

/** The process listening on a TCP port of this namespace (`ss -ltnp`). */
function listeningPid(port: number): number {
  const out = execFileSync('ss', ['-ltnpH', `sport = :${port}`], { encoding: 'utf8' });
  const pid = /pid=(\d+)/.exec(out)?.[1];
  if (!pid) throw new Error(`no process listens on port ${port}: ${out}`);
  return Number(pid);
}

try {
  const [apiPort, mediaPort, stagePort] = [await freePort(), await freePort(), await freePort()];
  const started = Date.now();
  system = spawn(process.execPath, ['--import', 'tsx', 'scripts/start.ts'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      API_PORT: String(apiPort),
      MEDIA_PORT: String(mediaPort),
      STAGE_PORT: String(stagePort),
      DATA_DIR: dataDir,
      // libjuice skips 127.x when it gathers on its own; the namespace's 127.0.0.2 is what Chromium can reach.
      RTC_BIND_ADDRESS: '127.0.0.2',
      STAGE_CAPACITY: '1',
      // Two stage servers (on STAGE_PORT and the next port): one is killed below, and its viewer must play on.
      STAGE_SERVERS: '2',
      STAGE_SERVER_HEALTH_INTERVAL_MS: '500',
      HEARTBEAT_INTERVAL_MS: '1000',
      VIEWER_HEARTBEAT_INTERVAL_MS: '1000',
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  system.stdout!.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-20_000)));
  system.stderr!.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-20_000)));
  const links = await waitFor(
    () => {
      if (system!.exitCode !== null) throw new Error(`npm start exited (${system!.exitCode}):\n${output}`);
      const m = (label: string) => new RegExp(`^\\s*${label}:\\s+(http://\\S+)$`, 'm').exec(output)?.[1];
      const [broadcast, watch, dashboard, whip] = [m('Broadcast'), m('Watch'), m('Dashboard'), m('Server')];
      return output.includes('Ctrl-C stops everything') && broadcast && watch && dashboard && whip ? { broadcast, watch, dashboard, whip } : undefined;
    },
    'npm start prints the page links',
    120_000,
    100,
  );
  result.startupMs = Date.now() - started;
  result.links = { ...links, broadcast: links.broadcast.replace(/#.*/, '#key=…'), watch: links.watch.replace(/#.*/, '#key=…'), dashboard: links.dashboard.replace(/#.*/, '#key=…') };
  const api = new URL(links.broadcast).origin;
  const apiKey = decodeURIComponent(new URL(links.broadcast).hash.slice(5));
  const pageStatus = await Promise.all(['/broadcast', '/watch', '/dashboard'].map(async (p) => (await fetch(api + p)).status));
  result.pageStatus = pageStatus;

  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  const ctx = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  const errors: string[] = [];
  const open = async (url: string) => {
    const p = await ctx.newPage();
    p.on('pageerror', (e) => errors.push(`${url.replace(/#.*/, '')}: ${e.message}`));
    await p.goto(url);
    return p;
  };

  // The broadcaster goes live with Chromium's fake camera.
  const bc = await open(links.broadcast);
  result.keyLeftAddressBar = !bc.url().includes('#key=');
  await waitFor(async () => bc.isEnabled('#live'), 'broadcast page: camera open, Go live enabled', 15_000);
  await bc.click('#live');
  await waitFor(async () => (await bodyData(bc, 'state')) === 'live', 'broadcast page: live', 20_000);
  const sent = await waitFor(async () => {
    const [bitrate, resolution, codec] = await Promise.all(['#bitrate', '#resolution', '#codec'].map((s) => bc.textContent(s)));
    return /\d/.test(resolution ?? '') && /[1-9]/.test(bitrate ?? '') ? { bitrate, resolution, codec } : undefined;
  }, 'broadcast page: stats shown', 15_000);
  result.broadcast = sent;

  // Two viewers; with STAGE_CAPACITY=1 the second one is given the stage the pool grew for it.
  const w1 = await open(links.watch);
  await waitFor(async () => (await bodyData(w1, 'state')) === 'playing', 'watch 1: playing', 25_000);
  const w1play = await advances(w1, 'watch 1');
  const w2 = await open(links.watch);
  await waitFor(async () => (await bodyData(w2, 'state')) === 'playing', 'watch 2: playing', 40_000);
  const w2play = await advances(w2, 'watch 2');
  result.watch = [
    { stage: await bodyData(w1, 'stage'), shown: await w1.textContent('#stage'), ...w1play },
    { stage: await bodyData(w2, 'stage'), shown: await w2.textContent('#stage'), ...w2play },
  ];

  const dash = await open(links.dashboard);
  const seen = await waitFor(async () => {
    const d = await dash.evaluate(() => ({
      stages: Array.from(document.querySelectorAll<HTMLTableRowElement>('#stages tbody tr')).map((r) => ({ stage: r.dataset.stage, viewers: Number(r.dataset.viewers) })),
      servers: document.querySelectorAll('#servers tbody tr').length,
      broadcaster: document.body.dataset.broadcaster,
      bitrate: document.querySelector('#b-bitrate')?.textContent ?? '',
      viewersText: document.querySelector('#t-viewers')?.textContent ?? '',
      events: document.querySelectorAll('#events tbody tr').length,
    }));
    const viewers = d.stages.reduce((n, s) => n + s.viewers, 0);
    return d.stages.length >= 2 && viewers === 2 && d.broadcaster === 'online' && /[1-9]/.test(d.bitrate) ? d : undefined;
  }, 'dashboard: both stages, both viewers, the broadcaster online with a bitrate', 20_000);
  result.dashboard = seen;
  // Let the sparklines draw a few points (one per poll) before the picture is taken.
  await waitFor(async () => Number(await bodyData(dash, 'polls')) >= 6, 'dashboard: six polls drawn', 15_000);

  mkdirSync(artifacts, { recursive: true });
  await bc.screenshot({ path: join(artifacts, 'web-broadcast.png') });
  await w1.screenshot({ path: join(artifacts, 'web-watch-1.png') });
  await w2.screenshot({ path: join(artifacts, 'web-watch-2.png') });
  await dash.screenshot({ path: join(artifacts, 'web-dashboard.png'), fullPage: true });
  result.screenshots = ['web-broadcast.png', 'web-watch-1.png', 'web-watch-2.png', 'web-dashboard.png'];

  // Closing a /watch page gives its seat back at once (DELETE on pagehide), not after missed heartbeats.
  await w2.close({ runBeforeUnload: true });
  const closedAt = Date.now();
  await waitFor(async () => {
    const r = await fetch(`${api}/api/stages`, { headers: { 'x-api-key': apiKey } });
    const body = (await r.json()) as { stages: { viewers: number }[] };
    return body.stages.reduce((n, s) => n + s.viewers, 0) === 1;
  }, 'the closed viewer left', 8000);
  result.leaveMs = Date.now() - closedAt;

  // The seat of a playing viewer is taken away (as when its stage is deleted): its next heartbeat gets 404 and
  // the page joins again by itself and plays on.
  const oldViewer = await bodyData(w1, 'viewer');
  const del = await fetch(`${api}/api/viewers/${oldViewer}`, { method: 'DELETE', headers: { 'x-api-key': apiKey } });
  if (del.status !== 204) throw new Error(`DELETE viewer: ${del.status}`);
  const kickedAt = Date.now();
  await waitFor(async () => (await bodyData(w1, 'viewer')) !== oldViewer && (await bodyData(w1, 'state')) === 'playing', 'watch 1 joined again and plays', 20_000);
  result.rejoin = { ms: Date.now() - kickedAt, reconnects: await w1.textContent('#reconnects'), ...(await advances(w1, 'watch 1 after rejoin')) };

  // The stage server that holds the viewer's stage dies (kill -9): the API Server drops its stages, and the page joins
  // again by itself and plays a stage on the other stage server.
  const deadStage = await bodyData(w1, 'stage');
  const beforeKill = await bodyData(w1, 'viewer');
  const listed = (await (await fetch(`${api}/api/stages`, { headers: { 'x-api-key': apiKey } })).json()) as { stages: { stageId: string; whipUrl: string }[] };
  const held = listed.stages.find((s) => s.stageId === deadStage);
  if (!held) throw new Error(`stage ${deadStage} not listed`);
  const stageServerPort = Number(new URL(held.whipUrl).port);
  process.kill(listeningPid(stageServerPort), 'SIGKILL');
  const stageKilledAt = Date.now();
  await waitFor(
    async () => (await bodyData(w1, 'viewer')) !== beforeKill && (await bodyData(w1, 'stage')) !== deadStage && (await bodyData(w1, 'state')) === 'playing',
    'watch 1 joined again after its stage server died and plays',
    40_000,
  );
  result.stageServerDeath = { ms: Date.now() - stageKilledAt, port: stageServerPort, ...(await advances(w1, 'watch 1 on the other stage server')) };

  // Stop: the page DELETEs its WHIP session.
  await bc.click('#stop');
  await waitFor(async () => (await bodyData(bc, 'state')) === 'offline', 'broadcast page: stopped', 10_000);
  result.pageErrors = errors;
  await browser.close();
  browser = undefined;

  // Ctrl-C stops all three.
  const stopAt = Date.now();
  const exited = new Promise<number | null>((r) => system!.once('exit', (code) => r(code)));
  system.kill('SIGINT');
  result.exitCode = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('timeout'), 30_000).unref())]);
  result.stopMs = Date.now() - stopAt;
  result.portsFreed = (
    await Promise.all(
      [apiPort, mediaPort, stagePort, stagePort + 1].map((p) =>
        fetch(`http://127.0.0.1:${p}/health`).then(
          () => false,
          () => true,
        ),
      ),
    )
  ).every(Boolean);
  result.ok = true;
} catch (err) {
  Object.assign(result, { ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err), output: output.slice(-4000) });
} finally {
  await browser?.close().catch(() => undefined);
  if (system && system.exitCode === null) {
    // SIGINT lets start.ts stop its apps; it exits on its own within its grace period.
    const exited = new Promise((r) => system!.once('exit', r));
    system.kill('SIGINT');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 30_000).unref())]);
    if (system.exitCode === null) system.kill('SIGKILL');
  }
  rmSync(dataDir, { recursive: true, force: true });
  console.log('RESULT ' + JSON.stringify(result));
  process.exit(0);
}
