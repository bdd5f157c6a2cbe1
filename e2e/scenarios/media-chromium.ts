/**
 * Runs INSIDE a private network namespace (see e2e/media-server-chromium.test.ts): the stage server, the API Server
 * and the Media Server as real processes (helpers/system.ts), ICE bound to the namespace's 127.0.0.2 (libjuice skips
 * 127.x when gathering on its own, and Chromium never gathers on loopback). Headless Chromium publishes its fake
 * camera by WHIP to the Media Server with a token from POST /api/media/ingest-token; viewers seated by
 * POST /api/viewers/join fill stage A (a Chromium page and a node-datachannel viewer), which makes the API Server
 * create stage B while live; a second Chromium page plays stage B. Prints one `RESULT {json}` line.
 */
import type { StageArn } from '@stagecast/protocol';
import { shutdownRtc } from '@stagecast/rtc';
import { launchChromium, playWhep, publishWhip, stopWhip, videoStats, connectionState, type TestBrowser } from '../helpers/browser.js';
import { startSystem, type StagecastSystem } from '../helpers/system.js';
import { WhepViewer } from '../helpers/viewer.js';
import { waitFor } from '../helpers/wait.js';

const BIND = '127.0.0.2';
let sys: StagecastSystem | undefined;
let browser: TestBrowser | undefined;
const viewers: WhepViewer[] = [];
const result: Record<string, unknown> = {};
const t0 = Date.now();
/** ms since the start of each step, for the report (and for finding where the time goes). */
const phases: Record<string, number> = {};
const mark = (name: string) => (phases[name] = Date.now() - t0);

try {
  sys = await startSystem({ stageCapacity: 2, rtcBindAddress: BIND });
  const s = sys;
  mark('system');
  const [stageA] = await waitFor(async () => {
    const st = await s.stages();
    return st.length === 1 ? st : undefined;
  }, 'the pool has its first stage');
  await waitFor(async () => ((await s.mediaStats()).stages.connected === 1 ? true : undefined), 'leg into stage A before the broadcaster', 15_000);

  browser = await launchChromium();
  mark('stage A leg');
  const publisher = await browser.newPage();
  mark('chromium');
  const ingest = await s.ingestToken();
  const pub = await publishWhip(publisher, ingest.whipUrl, ingest.token);
  if (pub.status !== 201) throw new Error(`Chromium WHIP POST to the Media Server: ${pub.status}`);
  await s.media.waitForLog((l) => l.msg === 'publishing.started', 'the Media Server forwards Chromium’s stream', 15_000);
  mark('publishing');

  // Stage A: a Chromium viewer and a node-datachannel viewer (capacity 2), so the API Server creates stage B.
  const pageA = await browser.newPage();
  const joinA = await s.join('chromium-a');
  if (joinA.playback.type !== 'whep' || joinA.stageArn !== stageA!.stageArn) throw new Error(`first viewer seated on ${joinA.stageArn}`);
  const playA = await playWhep(pageA, joinA.playback.url, joinA.token);
  mark('viewer A');
  const known = new Set<StageArn>([stageA!.stageArn]);
  let stageB: StageArn | undefined;
  let bKeyframeAt = NaN;
  const arrival = waitFor(
    async () => {
      const st = await s.stageStats();
      const b = st.stages.find((x) => !known.has(x.stageArn));
      if (!b) return undefined;
      stageB = b.stageArn;
      if (b.keyframesReceived > 0) bKeyframeAt = Date.now();
      return b.keyframesReceived > 0 || undefined;
    },
    'stage B created and receiving a keyframe',
    20_000,
    10,
  );
  arrival.catch(() => undefined);
  const joinA2 = await s.join('ndc-a');
  if (joinA2.playback.type !== 'whep') throw new Error('playback');
  viewers.push(await WhepViewer.play({ url: joinA2.playback.url, token: joinA2.token, bindAddress: BIND, name: 'ndc-a' }));
  await arrival;
  mark('stage B keyframe');
  const bInfo = (await s.stages()).find((x) => x.stageArn === stageB)!;
  const bFirstKeyframeMs = bKeyframeAt - Date.parse(bInfo.createdAt);

  const pageB = await browser.newPage();
  const joinB = await s.join('chromium-b');
  if (joinB.playback.type !== 'whep' || joinB.stageArn !== stageB) throw new Error(`third viewer seated on ${joinB.stageArn}, not stage B ${stageB}`);
  const playB = await playWhep(pageB, joinB.playback.url, joinB.token);
  mark('viewer B');

  for (const [name, page] of [['A', pageA], ['B', pageB]] as const) {
    await waitFor(async () => (await videoStats(page)).framesDecoded >= 30 || undefined, `Chromium viewer on stage ${name} decodes 30 frames`, 30_000);
  }
  await viewers[0]!.waitForFrames(30, 15_000);
  mark('frames decoded');
  const media = await s.mediaStats();
  const statsA = await videoStats(pageA);
  const statsB = await videoStats(pageB);
  const states = { publisher: await connectionState(publisher), A: await connectionState(pageA), B: await connectionState(pageB) };

  const deleteStatus = await stopWhip(publisher);
  await waitFor(async () => ((await s.mediaStats()).publisher.online ? undefined : true), 'publisher offline after its DELETE', 5000);
  Object.assign(result, {
    ok: true,
    publish: pub,
    ingestWhipUrl: ingest.whipUrl,
    mediaWhipUrl: s.whipUrl,
    playA: playA.status,
    playB: playB.status,
    stages: { A: stageA!.stageArn, B: stageB },
    bFirstKeyframeMs,
    viewerA: statsA,
    viewerB: statsB,
    ndcA: { frames: viewers[0]!.frames, keyframes: viewers[0]!.keyframes, state: viewers[0]!.state },
    states,
    media: { legs: media.legs.map((l) => ({ stageArn: l.stageArn, state: l.state, packetsSent: l.packetsSent, keyframesSent: l.keyframesSent })), stream: media.stream, publisherOnline: media.publisher.online },
    deleteStatus,
  });
  mark('done');
} catch (err) {
  Object.assign(result, { ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  if (sys) for (const a of [sys.media, sys.api, sys.stage]) if (a) result[`${a.name}Logs`] = a.logs.slice(-25);
} finally {
  await browser?.close();
  for (const v of viewers) await v.stop();
  await sys?.stop().catch(() => undefined);
  await shutdownRtc();
  mark('cleaned up');
  result.phases = phases;
  console.log('RESULT ' + JSON.stringify(result));
}
