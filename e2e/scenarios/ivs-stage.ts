/**
 * Runs INSIDE a private network namespace (see e2e/ivs-stage.test.ts). The Media Server (a real process) is told
 * by an API Server stand-in that its stage is an Amazon IVS stage (arn:aws:ivs:…) whose WHIP URL is the first of
 * three 307 redirects over three origins, each checking the Bearer token; the last hop leads to a real stage of
 * our stage server. Chromium publishes H.264 by WHIP into the Media Server; a second Chromium page plays the stage
 * by WHEP and decodes it. Then a broadcaster with crafted High-profile + B-frame H.264 is refused: its session is
 * ended before one packet reaches the stage, and its reconnect is answered 422 with the reason. Prints one JSON line.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WHIPClient, WhipHttpError, shutdownRtc } from '@stagecast/rtc';
import type { StageArn } from '@stagecast/protocol';
import { startApp, type App } from '../helpers/apps.js';
import { connectionState, launchChromium, playWhep, publishWhip, stopWhip, videoStats, type TestBrowser } from '../helpers/browser.js';
import { CraftedH264Stream, SPS_HIGH_640x480, type SliceKind } from '../helpers/h264.js';
import { startIvsApi } from '../helpers/ivs-api.js';
import { startRedirectChain, type RedirectChain } from '../helpers/redirect-chain.js';
import { waitFor } from '../helpers/wait.js';

const secrets = { MEDIA_SERVER_SECRET: 'e2e-media-secret-0123456789', STAGE_SERVER_SECRET: 'e2e-stage-secret-0123456789' };
const INGEST_TOKEN = 'e2e-obs-ingest-token-0123456789';
const dataDir = mkdtempSync(join(tmpdir(), 'sc-e2e-ivs-'));
const apps: App[] = [];
let browser: TestBrowser | undefined;
let chain: RedirectChain | undefined;
let bad: WHIPClient | undefined;
let pump: NodeJS.Timeout | undefined;
const result: Record<string, unknown> = {};

async function json(url: string, init: RequestInit = {}): Promise<{ status: number; body: any }> {
  const r = await fetch(url, { ...init, headers: { 'content-type': 'application/json', ...(init.headers as Record<string, string>) } });
  return { status: r.status, body: await r.json().catch(() => null) };
}

const ivsApi = await startIvsApi({ secret: secrets.MEDIA_SERVER_SECRET });
try {
  const stage = await startApp('stage-server', { ...secrets, RTC_BIND_ADDRESS: '127.0.0.2', DATA_DIR: join(dataDir, 'stage'), API_SERVER_URL: ivsApi.url });
  apps.push(stage);
  const created = await json(`${stage.url}/admin/stages`, { method: 'POST', headers: { authorization: `Bearer ${secrets.STAGE_SERVER_SECRET}` }, body: JSON.stringify({ name: 'ivs-e2e' }) });
  if (created.status !== 201) throw new Error(`create stage: ${created.status} ${JSON.stringify(created.body)}`);
  const local = created.body.stage as { stageArn: StageArn; stageId: string; whipUrl: string; whepUrl: string };

  // IVS's global endpoint answers 307 (maybe more than once); a client must keep Authorization on every hop.
  chain = await startRedirectChain({
    hosts: ['127.0.0.1', '127.0.0.2', '127.0.0.3'],
    target: (path) => (path === `/ivs/${local.stageId}` ? local.whipUrl : undefined),
    acceptToken: (t) => ivsApi.issued.has(t),
  });
  const ivsArn = `arn:aws:ivs:us-east-1:123456789012:stage/${local.stageId}` as StageArn;
  ivsApi.stages.push({ ivsArn, localArn: local.stageArn, whipUrl: `${chain.base}/ivs/${local.stageId}` });

  const media = await startApp('media-server', {
    MEDIA_SERVER_SECRET: secrets.MEDIA_SERVER_SECRET,
    API_SERVER_URL: ivsApi.url,
    INGEST_TOKEN,
    RTC_BIND_ADDRESS: '127.0.0.2',
    IVS_REFUSAL_HOLD_S: '60',
  });
  apps.push(media);
  const mediaStats = async () => (await json(`${media.url}/`)).body;
  const leg = await waitFor(async () => (await mediaStats()).legs.find((l: any) => l.state === 'connected'), 'Media Server leg connected to the IVS stage', 20_000);
  const chainPosts = chain.hits.filter((h) => h.method === 'POST').map((h) => ({ hop: h.hop, status: h.status, bodyBytes: h.bodyBytes }));
  const noToken = (await fetch(`${chain.base}/ivs/${local.stageId}`, { method: 'POST', body: 'v=0' })).status;
  const wrongToken = (await fetch(`${chain.base}/ivs/${local.stageId}`, { method: 'POST', headers: { authorization: 'Bearer not-issued' }, body: 'v=0' })).status;

  browser = await launchChromium();
  const viewer = await browser.newPage();
  const publisher = await browser.newPage();
  const play = await playWhep(viewer, local.whepUrl, await ivsApi.sign(local.stageArn, 'subscribe', local.whipUrl));
  if (play.status !== 201) throw new Error(`WHEP POST: ${play.status}`);
  await waitFor(async () => (await connectionState(viewer)) === 'connected', 'viewer connected', 15_000);
  const pub = await publishWhip(publisher, `${media.url}/whip`, INGEST_TOKEN);
  if (pub.status !== 201) throw new Error(`WHIP POST to the Media Server: ${pub.status}`);
  await waitFor(async () => (await videoStats(viewer)).framesDecoded >= 30, 'viewer decodes 30 frames through the IVS-shaped path', 30_000);
  const decoded = await videoStats(viewer);
  const goodStats = await mediaStats();
  const deleteStatus = await stopWhip(publisher);
  await waitFor(async () => !(await mediaStats()).publisher.online, 'Chromium publisher offline');

  // A broadcaster IVS would disconnect: OBS-shaped offer (42e01f, no candidates), High profile and B-frames inside.
  const legBefore = (await mediaStats()).legs.find((l: any) => l.legId === leg.legId);
  bad = new WHIPClient({ url: `${media.url}/whip`, token: INGEST_TOKEN, bindAddress: '127.0.0.2', audio: false, id: 'bad' });
  await bad.start();
  if (!(await bad.connected(10_000))) throw new Error('bad broadcaster did not connect');
  const v = bad.sinkPort.video!;
  const crafted = new CraftedH264Stream({ ssrc: v.ssrc, payloadType: v.payloadType, sps: SPS_HIGH_640x480 });
  const pattern: SliceKind[] = ['I', 'P', 'B', 'B', 'P', 'B', 'B'];
  let n = 0;
  pump = setInterval(() => {
    for (const p of crafted.frame(pattern[n++ % pattern.length]!)) bad!.sinkPort.sendRtp('video', p);
  }, 33);
  const refusedLog = await media.waitForLog((l) => l.msg === 'ingest.refused', 'ingest.refused', 15_000);
  clearInterval(pump);
  await waitFor(async () => !(await mediaStats()).publisher.online, 'refused broadcaster offline');
  const afterRefusal = await mediaStats();
  const legAfter = afterRefusal.legs.find((l: any) => l.legId === leg.legId);
  await bad.stop();
  bad = undefined;

  // OBS reconnects at once with the same token: it is told why.
  let reconnect: { status: number; body: any } = { status: 0, body: null };
  try {
    await new WHIPClient({ url: `${media.url}/whip`, token: INGEST_TOKEN, bindAddress: '127.0.0.2', audio: false }).start();
    reconnect.status = 201;
  } catch (e) {
    if (!(e instanceof WhipHttpError)) throw e;
    reconnect = { status: e.status, body: JSON.parse(e.body) };
  }
  const metrics = await (await fetch(`${media.url}/metrics`)).text();
  const viewerAfter = await videoStats(viewer);

  Object.assign(result, {
    ok: true,
    chainPosts,
    noToken,
    wrongToken,
    tokensIssued: ivsApi.issued.size,
    publish: pub,
    play,
    decoded,
    deleteStatus,
    good: { stream: goodStats.stream, ivs: goodStats.ivs },
    refused: { codes: refusedLog.codes, level: refusedLog.level },
    legBefore: { legId: legBefore?.legId, state: legBefore?.state, packetsSent: legBefore?.packetsSent },
    legAfter: { legId: legAfter?.legId, state: legAfter?.state, packetsSent: legAfter?.packetsSent },
    ivsAfter: afterRefusal.ivs,
    reconnect,
    metricsLine: metrics.split('\n').filter((l) => l.startsWith('stagecast_media_ivs_refusals_total')),
    viewerAfter: { state: await connectionState(viewer), framesDecoded: viewerAfter.framesDecoded },
  });
} catch (err) {
  Object.assign(result, { ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
} finally {
  clearInterval(pump);
  await bad?.stop().catch(() => undefined);
  await browser?.close();
  for (const a of apps.reverse()) await a.stop();
  await chain?.close();
  await ivsApi.stop();
  await shutdownRtc();
  rmSync(dataDir, { recursive: true, force: true });
  console.log('RESULT ' + JSON.stringify(result));
}
