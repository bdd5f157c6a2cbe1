/**
 * Runs INSIDE a private network namespace (see e2e/whip-targets.test.ts). The real API Server with STAGE_PROVIDER=whip
 * and WHIP_TARGETS naming two independent WHIP servers — two stage-server processes, the second reached through a
 * 307 redirect that checks its Bearer token — the real Media Server, and headless Chromium broadcasting H.264 by WHIP
 * into the Media Server. Each destination is played by its own Chromium page over WHEP, which must decode frames.
 * Prints one JSON line.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StageArn } from '@stagecast/protocol';
import { startApp, type App } from '../helpers/apps.js';
import { connectionState, launchChromium, playWhep, publishWhip, stopWhip, videoStats, type TestBrowser } from '../helpers/browser.js';
import { startIvsApi } from '../helpers/ivs-api.js';
import { startRedirectChain, type RedirectChain } from '../helpers/redirect-chain.js';
import { waitFor } from '../helpers/wait.js';

const secrets = { API_SECRET_KEY: 'e2e-api-key-0123456789', MEDIA_SERVER_SECRET: 'e2e-media-secret-0123456789', STAGE_SERVER_SECRET: 'e2e-stage-secret-0123456789' };
const INGEST_TOKEN = 'e2e-obs-ingest-token-0123456789';
const dataDir = mkdtempSync(join(tmpdir(), 'sc-e2e-whip-'));
const apps: App[] = [];
let browser: TestBrowser | undefined;
let chain: RedirectChain | undefined;
const result: Record<string, unknown> = {};

type LocalStage = { stageArn: StageArn; stageId: string; whipUrl: string; whepUrl: string };

async function json(url: string, init: RequestInit = {}): Promise<{ status: number; body: any }> {
  const r = await fetch(url, { ...init, headers: { 'content-type': 'application/json', ...(init.headers as Record<string, string>) } });
  return { status: r.status, body: await r.json().catch(() => null) };
}

// The stage servers verify participant tokens against this key set (the WHIP destinations' own token authority).
const authority = await startIvsApi({ secret: secrets.MEDIA_SERVER_SECRET });
try {
  /** One independent WHIP server: its own stage-server process and one stage on it. */
  const destination = async (name: string): Promise<{ app: App; stage: LocalStage }> => {
    const app = await startApp('stage-server', { ...secrets, RTC_BIND_ADDRESS: '127.0.0.2', DATA_DIR: join(dataDir, name), API_SERVER_URL: authority.url });
    apps.push(app);
    const c = await json(`${app.url}/admin/stages`, { method: 'POST', headers: { authorization: `Bearer ${secrets.STAGE_SERVER_SECRET}` }, body: JSON.stringify({ name }) });
    if (c.status !== 201) throw new Error(`create stage on ${name}: ${c.status} ${JSON.stringify(c.body)}`);
    return { app, stage: c.body.stage as LocalStage };
  };
  const a = await destination('dest-a');
  const b = await destination('dest-b');
  const tokenA = await authority.sign(a.stage.stageArn, 'publish', a.stage.whipUrl);
  const tokenB = await authority.sign(b.stage.stageArn, 'publish', b.stage.whipUrl);
  // Destination B sits behind a redirect, as IVS's global endpoint does; it lets through only B's token.
  chain = await startRedirectChain({
    hosts: ['127.0.0.3'],
    target: (path) => (path === '/whip/b' ? b.stage.whipUrl : undefined),
    acceptToken: (t) => t === tokenB,
  });
  const targets = [
    { url: a.stage.whipUrl, token: tokenA },
    { url: `${chain.base}/whip/b`, token: tokenB },
  ];

  const api = await startApp('api-server', {
    API_SECRET_KEY: secrets.API_SECRET_KEY,
    MEDIA_SERVER_SECRET: secrets.MEDIA_SERVER_SECRET,
    DATA_DIR: join(dataDir, 'api'),
    STAGE_PROVIDER: 'whip',
    WHIP_TARGETS: JSON.stringify(targets),
  });
  apps.push(api);
  await waitFor(async () => (await fetch(`${api.url}/health`)).status < 500, 'API Server up');
  const media = await startApp('media-server', {
    MEDIA_SERVER_SECRET: secrets.MEDIA_SERVER_SECRET,
    API_SERVER_URL: api.url,
    INGEST_TOKEN,
    RTC_BIND_ADDRESS: '127.0.0.2',
  });
  apps.push(media);
  const mediaStats = async () => (await json(`${media.url}/`)).body;
  await waitFor(async () => (await mediaStats()).legs.filter((l: any) => l.state === 'connected').length === 2, 'a connected leg into each WHIP destination', 30_000);
  const stagesAtApi = await json(`${api.url}/api/media/stages`, { headers: { authorization: `Bearer ${secrets.MEDIA_SERVER_SECRET}` } });

  browser = await launchChromium();
  const viewerA = await browser.newPage();
  const viewerB = await browser.newPage();
  const publisher = await browser.newPage();
  const playA = await playWhep(viewerA, a.stage.whepUrl, await authority.sign(a.stage.stageArn, 'subscribe', a.stage.whipUrl));
  const playB = await playWhep(viewerB, b.stage.whepUrl, await authority.sign(b.stage.stageArn, 'subscribe', b.stage.whipUrl));
  if (playA.status !== 201 || playB.status !== 201) throw new Error(`WHEP POSTs: ${playA.status} ${playB.status}`);
  await waitFor(async () => (await connectionState(viewerA)) === 'connected' && (await connectionState(viewerB)) === 'connected', 'both viewers connected', 15_000);
  const pub = await publishWhip(publisher, `${media.url}/whip`, INGEST_TOKEN);
  if (pub.status !== 201) throw new Error(`WHIP POST to the Media Server: ${pub.status}`);
  await waitFor(async () => (await videoStats(viewerA)).framesDecoded >= 30 && (await videoStats(viewerB)).framesDecoded >= 30, 'each destination decodes 30 frames', 30_000);
  const decodedA = await videoStats(viewerA);
  const decodedB = await videoStats(viewerB);
  const st = await mediaStats();
  const deleteStatus = await stopWhip(publisher);

  Object.assign(result, {
    ok: true,
    stagesAtApi: stagesAtApi.body?.stages?.map((s: any) => s.stageArn),
    publish: pub,
    decodedA,
    decodedB,
    legs: st.legs.map((l: any) => ({ stageArn: l.stageArn, state: l.state, packetsSent: l.packetsSent, keyframesSent: l.keyframesSent })),
    ivs: st.ivs,
    chainPosts: chain.hits.filter((h) => h.method === 'POST').map((h) => ({ hop: h.hop, status: h.status })),
    deleteStatus,
  });
} catch (err) {
  Object.assign(result, { ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
} finally {
  await browser?.close();
  for (const app of apps.reverse()) await app.stop();
  await chain?.close();
  await authority.stop();
  rmSync(dataDir, { recursive: true, force: true });
  console.log('RESULT ' + JSON.stringify(result));
}
