/**
 * Two Media Servers as real processes with the real API Server and stage server: the API Server gives each a stage;
 * the broadcaster publishes to the first, so the second pulls the broadcast from it (the relay) and its stage plays.
 * Then the second gets SIGTERM: it drains — its stage moves to the first make-before-break — and exits, while a
 * viewer of that stage plays on. Prints the viewer's longest gap during the drain.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { MEDIA_ROUTES, StagesResponseSchema, type StagesResponse } from '@stagecast/protocol';
import { shutdownRtc } from '@stagecast/rtc';
import { startApp, type App } from './helpers/apps.js';
import { Broadcaster } from './helpers/broadcaster.js';
import { freePort } from './helpers/ports.js';
import { SECRETS, startSystem, type StagecastSystem } from './helpers/system.js';
import { WhepViewer } from './helpers/viewer.js';
import { waitFor } from './helpers/wait.js';

after(() => shutdownRtc());

async function mediaStages(sys: StagecastSystem): Promise<StagesResponse> {
  const r = await fetch(`${sys.apiUrl}/api/media/stages`, { headers: { authorization: `Bearer ${SECRETS.MEDIA_SERVER_SECRET}` } });
  return StagesResponseSchema.parse(await r.json());
}

test('relay and drain across two Media Server processes: the stage of the server without the broadcaster plays through the relay, and keeps playing while SIGTERM moves it to the other', { timeout: 120_000 }, async (t) => {
  const sys = await startSystem({ minStages: 2, maxStages: 2, stageCapacity: 2, heartbeatIntervalMs: 500 });
  let ms2: App | undefined;
  let bc: Broadcaster | undefined;
  const viewers: WhepViewer[] = [];
  try {
    const port2 = await freePort();
    ms2 = await startApp('media-server', {
      MEDIA_SERVER_SECRET: SECRETS.MEDIA_SERVER_SECRET,
      PORT: String(port2),
      API_SERVER_URL: sys.apiUrl,
      SERVER_ID: 'e2e-media-2',
      RTC_BIND_ADDRESS: '127.0.0.1',
      DRAIN_TIMEOUT_MS: '10000',
    });
    await ms2.waitForLog((l) => l.msg === 'registered', 'second Media Server registered');
    // Two stages, two servers: the API Server balances them one each.
    const owned = await waitFor(async () => {
      const s = await mediaStages(sys);
      const owners = s.stages.map((x) => x.mediaServerId);
      return s.stages.length === 2 && owners.includes('e2e-media-1' as never) && owners.includes('e2e-media-2' as never) && s.stages.every((x) => !x.previousMediaServerId) ? s : undefined;
    }, 'one stage per Media Server', 20_000);
    const stage2 = owned.stages.find((x) => x.mediaServerId === 'e2e-media-2')!;

    const ingest = await sys.ingestToken();
    bc = await Broadcaster.publish({ url: sys.whipUrl, token: ingest.token });
    await waitFor(async () => ((await mediaStages(sys)).origin?.serverId === 'e2e-media-1' ? true : undefined), 'the first Media Server is the origin', 10_000);
    const stats2 = async () => (await fetch(`${ms2!.url}/`)).json() as Promise<{ ingest?: string; relay?: { pull: { state: string; origin?: string } } }>;
    await waitFor(async () => {
      const s = await stats2();
      return s.ingest === 'relay' && s.relay?.pull.origin === 'e2e-media-1' ? true : undefined;
    }, 'the second Media Server pulls from the origin', 15_000);

    // A viewer of the second server's stage (seats fill stage by stage: join until one lands there).
    let v2: WhepViewer | undefined;
    for (let i = 0; i < 4 && !v2; i++) {
      const j = await sys.join(`relay-viewer-${i}`);
      assert.equal(j.playback.type, 'whep');
      const v = await WhepViewer.play({ url: (j.playback as { url: string }).url, token: j.token });
      viewers.push(v);
      if (j.stageArn === stage2.stageArn) v2 = v;
    }
    assert.ok(v2, "a viewer on the second server's stage");
    await v2.waitForFrames(60, 15_000);

    // SIGTERM the second Media Server: it drains, its stage moves to the first, the viewer plays on.
    const t0 = Date.now();
    const code = await ms2.stop();
    const t1 = Date.now();
    assert.equal(code, 0, `clean exit: ${ms2.stderr()}`);
    assert.ok(ms2.logs.some((l) => l.msg === 'drain.completed'), `drained before stopping: ${JSON.stringify(ms2.logs.filter((l) => String(l.msg).startsWith('drain')))}`);
    const after = await mediaStages(sys);
    assert.equal(after.stages.find((x) => x.stageArn === stage2.stageArn)?.mediaServerId, 'e2e-media-1');
    await v2.waitForFrames(30, 10_000, Date.now());
    const gap = v2.maxGapMs(t0 - 500, Date.now());
    t.diagnostic(`drain took ${t1 - t0} ms; the viewer's longest gap during it: ${gap} ms`);
    assert.ok(gap < 1500, `no freeze across the drain (longest gap ${gap} ms)`);
    const hb = await fetch(`${sys.mediaUrl}${MEDIA_ROUTES.relay}`, { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: 'v=0\r\n' });
    assert.equal(hb.status, 401, 'the relay endpoint needs the secret');
  } finally {
    for (const v of viewers) await v.stop().catch(() => undefined);
    await bc?.stop().catch(() => undefined);
    await ms2?.kill9().catch(() => undefined);
    await sys.stop();
  }
});
