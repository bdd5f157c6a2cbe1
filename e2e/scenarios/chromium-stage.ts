/**
 * Runs INSIDE a private network namespace (see e2e/chromium-stage.test.ts). The real API Server and stage server,
 * started as the README's apps; headless Chromium publishes its fake camera as H.264 by WHIP into a stage, and a
 * second Chromium page plays that stage by WHEP with a viewer token from POST /api/viewers/join. Prints one JSON line.
 */
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApp, ROOT, type App } from '../helpers/apps.js';
import { launchChromium, playWhep, publishWhip, stopWhip, videoStats, connectionState, type TestBrowser } from '../helpers/browser.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';

const secrets = { API_SECRET_KEY: 'e2e-api-key-0123456789', MEDIA_SERVER_SECRET: 'e2e-media-secret-0123456789', STAGE_SERVER_SECRET: 'e2e-stage-secret-0123456789' };
const dataDir = mkdtempSync(join(tmpdir(), 'sc-e2e-'));
const apps: App[] = [];
let browser: TestBrowser | undefined;
const result: Record<string, unknown> = {};

async function json(url: string, init: RequestInit = {}): Promise<{ status: number; body: any }> {
  const r = await fetch(url, { ...init, headers: { 'content-type': 'application/json', ...(init.headers as Record<string, string>) } });
  return { status: r.status, body: await r.json().catch(() => null) };
}

try {
  const [apiPort, stagePort] = [await freePort(), await freePort()];
  // Bound to the namespace's 127.0.0.2: libjuice skips 127.x addresses when it gathers on its own, and the WHIP
  // answer must carry every candidate (a client that sends none, as OBS does, could not connect otherwise).
  const stage = await startApp('stage-server', { ...secrets, RTC_BIND_ADDRESS: '127.0.0.2', PORT: String(stagePort), DATA_DIR: join(dataDir, 'stage'), API_SERVER_URL: `http://127.0.0.1:${apiPort}` });
  apps.push(stage);
  const api = await startApp('api-server', {
    ...secrets,
    PORT: String(apiPort),
    DATA_DIR: join(dataDir, 'api'),
    STAGE_SERVER_URL: stage.url,
    STAGE_CAPACITY: '5',
  });
  apps.push(api);
  await waitFor(async () => (await fetch(`${api.url}/ready`)).ok, 'API Server ready');
  const join1 = await json(`${api.url}/api/viewers/join`, { method: 'POST', headers: { 'x-api-key': secrets.API_SECRET_KEY }, body: '{}' });
  if (join1.status !== 201) throw new Error(`join: ${join1.status} ${JSON.stringify(join1.body)}`);
  const pubTok = await json(`${api.url}/api/media/token`, {
    method: 'POST',
    headers: { authorization: `Bearer ${secrets.MEDIA_SERVER_SECRET}` },
    body: JSON.stringify({ stageArn: join1.body.stageArn }),
  });
  if (pubTok.status !== 200) throw new Error(`token: ${pubTok.status} ${JSON.stringify(pubTok.body)}`);

  browser = await launchChromium();
  const publisher = await browser.newPage();
  const viewer = await browser.newPage();
  // The viewer connects first: it must stay connected and get media as soon as the publisher arrives.
  const play = await playWhep(viewer, join1.body.playback.url, join1.body.token);
  await waitFor(async () => (await connectionState(viewer)) === 'connected', 'viewer connected before any publisher', 15_000);
  const pub = await publishWhip(publisher, pubTok.body.whipUrl, pubTok.body.token);
  if (pub.status !== 201) throw new Error(`WHIP POST: ${pub.status}`);
  const publishedAt = Date.now();
  await waitFor(async () => (await videoStats(viewer)).framesDecoded >= 30, 'viewer decodes 30 frames', 20_000);
  const firstFrameFromPublishMs = Date.now() - publishedAt;
  const stats = await videoStats(viewer);
  const stageStats = await json(`${stage.url}/stats`);
  const artifacts = join(ROOT, 'test-artifacts');
  mkdirSync(artifacts, { recursive: true });
  await viewer.screenshot({ path: join(artifacts, 'chromium-whep-viewer.png') });

  // A second viewer who joins while live gets its first frame from the cached keyframe, without waiting.
  const viewer2 = await browser.newPage();
  const join2 = await json(`${api.url}/api/viewers/join`, { method: 'POST', headers: { 'x-api-key': secrets.API_SECRET_KEY }, body: '{}' });
  const play2 = await playWhep(viewer2, join2.body.playback.url, join2.body.token);
  await waitFor(async () => (await videoStats(viewer2)).framesDecoded >= 1 && (await videoStats(viewer2)).firstFrameMs !== null, 'late viewer first frame', 15_000);
  const late = await videoStats(viewer2);

  const deleteStatus = await stopWhip(publisher);
  Object.assign(result, {
    ok: true,
    publish: pub,
    play,
    play2Status: play2.status,
    viewer: stats,
    lateViewer: late,
    firstFrameAfterPublishMs: firstFrameFromPublishMs,
    stageStats: stageStats.body,
    deleteStatus,
  });
} catch (err) {
  Object.assign(result, { ok: false, error: err instanceof Error ? err.stack ?? err.message : String(err) });
} finally {
  await browser?.close();
  for (const a of apps.reverse()) await a.stop();
  rmSync(dataDir, { recursive: true, force: true });
  console.log('RESULT ' + JSON.stringify(result));
}
