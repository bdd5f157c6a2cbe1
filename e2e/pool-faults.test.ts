/**
 * Faults in a pool of Media Servers and stage servers, with real processes and a live broadcast: an OBS-shaped
 * broadcaster publishing through the API Server's WHIP front door (POST /whip → 307 → a Media Server), and viewers
 * that behave like the /watch page (helpers/audience.ts: join, WHEP, heartbeat; join again when the seat is gone or
 * the peer drops). Each test starts its own system, breaks one process, and prints every viewer's longest freeze
 * (the longest time without a complete video frame around the fault) and the time to recover.
 *
 *   1. kill -9 a Media Server that is not the origin: its stages are published by another within 2 heartbeat intervals
 *   2. kill -9 the origin: the broadcaster reconnects through the front door (307 to the survivor), every stage resumes
 *   3. SIGTERM a Media Server (drain): its legs move make-before-break, no viewer freezes
 *   4. kill -9 a stage server: its stages are recreated on the other, and the viewers join again by themselves
 *
 * The viewers are node-datachannel WHEP peers that rejoin through the API as /watch does, not Chromium pages: a
 * browser per viewer does not fit this suite's time and the 2-core machine, and what is proved here is the servers'
 * behaviour (e2e/web-pages.test.ts has a real /watch page rejoin after its stage server is killed).
 */
import assert from 'node:assert/strict';
import { cpus, loadavg } from 'node:os';
import { after, describe, test, type TestContext } from 'node:test';
import { shutdownRtc } from '@stagecast/rtc';
import type { StagesResponse } from '@stagecast/protocol';
import { freezeOf, formatFreezes, WatchViewer, type FreezeFigures } from './helpers/audience.js';
import { ReconnectingBroadcaster } from './helpers/obs.js';
import { startSystem, type StagecastSystem, type SystemOptions } from './helpers/system.js';
import { waitFor } from './helpers/wait.js';

/** Media Server heartbeats: the bound of test 1 is two of them. */
const HEARTBEAT_MS = 1000;
/** Frames that count as "playing again" after a fault: one second at 30 fps. */
const RESUMED_FRAMES = 30;

interface Pool {
  sys: StagecastSystem;
  live: ReconnectingBroadcaster;
  viewers: WatchViewer[];
}

const pools: Pool[] = [];

/** Starts a system, the broadcaster and the viewers; the pool goes into `mine` at once, so a failed start still dumps logs. */
async function startPool(mine: Pool[], o: SystemOptions & { viewers: number }): Promise<Pool> {
  const sys = await startSystem({
    heartbeatIntervalMs: HEARTBEAT_MS,
    viewerHeartbeatIntervalMs: 1000,
    scaleDownCooldownS: 3600,
    ...o,
    // Consolidation would move viewers between stages while the test watches them.
    env: { ...o.env, api: { CONSOLIDATION_ENABLED: 'false', ...o.env?.api } },
  });
  const pool: Pool = { sys, live: undefined as unknown as ReconnectingBroadcaster, viewers: [] };
  pools.push(pool);
  mine.push(pool);
  const { token } = await sys.ingestToken();
  pool.live = await ReconnectingBroadcaster.start({ url: sys.frontDoorUrl, token, keyframeIntervalMs: 2000, silenceMs: 2000 });
  for (let i = 0; i < o.viewers; i++) pool.viewers.push(await WatchViewer.start(sys, { name: `viewer-${i + 1}` }, 20_000));
  return pool;
}

/**
 * Every active stage has exactly one owner, no handover under way, and every owner's legs are connected; with
 * `origin`, the API Server also names the Media Server that holds the broadcaster.
 */
async function settled(sys: StagecastSystem, mediaServers: number[], origin = true): Promise<StagesResponse | undefined> {
  const ms = await sys.mediaStages();
  const active = ms.stages.filter((s) => s.state !== 'draining');
  if ((origin && !ms.origin) || active.some((s) => !s.mediaServerId || s.previousMediaServerId)) return undefined;
  let connected = 0;
  for (const i of mediaServers) connected += (await sys.mediaStats(i)).stages.connected;
  return connected === active.length ? ms : undefined;
}

/** Media Server `puller` gets the broadcast over the relay from `origin` (and `origin` from the broadcaster). */
async function relaying(sys: StagecastSystem, origin: number, puller: number): Promise<boolean> {
  const [o, p] = await Promise.all([sys.mediaStats(origin), sys.mediaStats(puller)]);
  return o.ingest === 'broadcaster' && p.ingest === 'relay' && p.relay?.pull.state === 'pulling' && p.relay.pull.origin === sys.mediaIds[origin];
}

const ownerOf = (ms: StagesResponse, stageArn: string | undefined) => ms.stages.find((s) => s.stageArn === stageArn)?.mediaServerId;

/**
 * Waits until every viewer has played smoothly for a second (no gap over 150 ms): the DTLS handshakes of a starting
 * pool load this 2-core machine for a while, and a freeze measured then would be the start's, not the fault's.
 */
async function steady(viewers: WatchViewer[], timeoutMs = 20_000): Promise<void> {
  await waitFor(
    () => {
      const now = Date.now();
      return viewers.every((v) => freezeOf(v, now - 1000, now).longestFreezeMs <= 150);
    },
    'every viewer plays smoothly for a second',
    timeoutMs,
    100,
  );
}

/** Freezes are measured from this long before the fault. */
const BEFORE_MS = 500;

const framesAfter = (v: WatchViewer, t: number) => v.frameTimes.filter((x) => x > t).length;

/**
 * Waits until every viewer has played RESUMED_FRAMES frames after `t`, then RESUMED_FRAMES more (a late freeze after
 * a brief recovery would show inside the window); returns the window's end.
 */
async function allResumed(viewers: WatchViewer[], t: number, timeoutMs: number): Promise<number> {
  await waitFor(() => viewers.every((v) => framesAfter(v, t) >= RESUMED_FRAMES), `every viewer plays ${RESUMED_FRAMES} frames after the fault`, timeoutMs, 50);
  const resumed = Date.now();
  await waitFor(() => viewers.every((v) => framesAfter(v, resumed) >= RESUMED_FRAMES), `every viewer plays ${RESUMED_FRAMES} more frames`, 10_000, 50);
  return Date.now();
}

/** When the viewer played again after its longest freeze, relative to the fault (ms). */
const resumedAfter = (f: FreezeFigures, faultAt: number) => Math.max(0, Math.round(f.freezeFrom + f.longestFreezeMs - faultAt));

function report(t: TestContext, what: string, figures: FreezeFigures[], extra: string, p: Pool, faultAt: number, end: number): void {
  const longest = Math.max(...figures.map((f) => f.longestFreezeMs));
  // The broadcaster runs in this process: a long gap in its own sending means this process stalled (CPU), which
  // viewers would show as a freeze that no server caused.
  const sendGap = Math.round(p.live.maxSendGapMs(faultAt - BEFORE_MS, end));
  const starts = figures.map((f) => `${f.name} ${Math.round(f.freezeFrom - faultAt)}`).join(', ');
  const line = `${what}: viewers' longest freeze ${longest} ms; ${extra}; each longest freeze began (ms from the fault): ${starts}; broadcaster's longest send gap ${sendGap} ms; load average ${loadavg()[0]!.toFixed(1)} on ${cpus().length} cores; per viewer: ${formatFreezes(figures)}`;
  t.diagnostic(line);
  console.log(`# ${line}`);
}

function dumpLogs(sys: StagecastSystem): void {
  for (const a of [sys.api, ...sys.medias, ...sys.stageServers]) {
    if (!a) continue;
    console.log(`---- ${a.name} (last 40 lines)`);
    for (const l of a.logs.slice(-40)) console.log(JSON.stringify(l));
  }
}

async function stopPool(p: Pool): Promise<void> {
  await p.live?.stop();
  for (const v of p.viewers) await v.stop();
  await p.sys.stop().catch(() => undefined);
}

const withPool = (fn: (t: TestContext, mine: Pool[]) => Promise<void>) => async (t: TestContext) => {
  const mine: Pool[] = [];
  try {
    await fn(t, mine);
  } catch (err) {
    for (const p of mine) dumpLogs(p.sys);
    throw err;
  } finally {
    for (const p of mine) await stopPool(p);
  }
};

describe('a pool of Media Servers and stage servers survives the loss of any one process, with a live broadcast', { timeout: 240_000 }, () => {
  after(async () => {
    for (const p of pools) await stopPool(p);
    await shutdownRtc();
  });

  test('kill -9 a Media Server that is not the origin: another publishes its stages within 2 heartbeat intervals; the origin\'s viewers do not notice', { timeout: 75_000 }, withPool(async (t, mine) => {
    const p = await startPool(mine, { mediaServers: 2, stageCapacity: 1, minStages: 4, maxStages: 8, viewers: 4 });
    const { sys, viewers } = p;
    const before = await waitFor(() => settled(sys, [0, 1]), 'every stage owned, legs connected, origin known', 20_000, 100);
    const origin = before.origin!.serverId;
    const victim = sys.mediaIds.findIndex((id) => id !== origin);
    const victimId = sys.mediaIds[victim]!;
    const survivor = 1 - victim;
    await waitFor(() => relaying(sys, survivor, victim), `${victimId} pulls the broadcast from the origin`, 10_000, 100);
    const hit = viewers.filter((v) => ownerOf(before, v.stageArn) === victimId);
    const spared = viewers.filter((v) => ownerOf(before, v.stageArn) !== victimId);
    assert.ok(hit.length > 0, `some viewer watches a stage of ${victimId}: owners ${JSON.stringify(before.stages.map((s) => s.mediaServerId))}`);

    await steady(viewers);
    const faultAt = Date.now();
    await sys.medias[victim]!.kill9();
    const end = await allResumed(viewers, faultAt, 20_000);
    const after = await waitFor(() => settled(sys, [survivor]), `the stages of ${victimId} owned by ${sys.mediaIds[survivor]}`, 10_000, 100);
    for (const v of hit) assert.equal(ownerOf(after, v.stageArn), sys.mediaIds[survivor], `${v.name}'s stage moved to the survivor`);

    const hitF = hit.map((v) => freezeOf(v, faultAt - BEFORE_MS, end));
    const sparedF = spared.map((v) => freezeOf(v, faultAt - BEFORE_MS, end));
    report(t, `kill -9 ${victimId} (not the origin)`, [...hitF, ...sparedF], `its ${hit.length} viewer(s) played again ${hitF.map((f) => resumedAfter(f, faultAt)).join(', ')} ms after the kill (bound ${2 * HEARTBEAT_MS} ms); broadcaster sessions ${p.live.sessions.length}`, p, faultAt, end);
    for (const f of hitF) assert.ok(f.longestFreezeMs <= 2 * HEARTBEAT_MS, `${f.name} froze ${f.longestFreezeMs} ms > 2 heartbeat intervals (${2 * HEARTBEAT_MS} ms)`);
    for (const f of sparedF) assert.ok(f.longestFreezeMs <= 500, `${f.name} (on the origin) froze ${f.longestFreezeMs} ms`);
    for (const v of viewers) assert.equal(v.rejoins, 0, `${v.name} kept its seat and its stage`);
    assert.equal(p.live.sessions.length, 1, 'the broadcaster was not disturbed');
  }));

  test('kill -9 the origin: the broadcaster reconnects through the front door (307 to the other Media Server) and every stage resumes', { timeout: 75_000 }, withPool(async (t, mine) => {
    const p = await startPool(mine, { mediaServers: 2, stageCapacity: 1, minStages: 4, maxStages: 8, viewers: 4 });
    const { sys, viewers, live } = p;
    const before = await waitFor(() => settled(sys, [0, 1]), 'every stage owned, legs connected, origin known', 20_000, 100);
    const origin = sys.mediaIds.indexOf(before.origin!.serverId);
    assert.ok(origin >= 0, `the origin ${before.origin!.serverId} is one of ours`);
    assert.equal(live.sessions[0]!.url, `${sys.mediaUrls[origin]}/whip`, 'the broadcaster was sent to the origin');
    assert.equal(live.current!.redirects[0]?.status, 307, 'through the front door');
    const survivor = 1 - origin;
    await waitFor(() => relaying(sys, origin, survivor), `${sys.mediaIds[survivor]} pulls the broadcast from the origin`, 10_000, 100);

    await steady(viewers);
    const faultAt = Date.now();
    await sys.medias[origin]!.kill9();
    const b = await live.waitForSession(2, 20_000);
    const reconnectedAt = live.lastRecoveredAt;
    assert.equal(b.url, `${sys.mediaUrls[survivor]}/whip`, 'the reconnect POST to the front door landed on the live Media Server');
    assert.equal(b.redirects[0]?.status, 307);
    const end = await allResumed(viewers, faultAt, 25_000);
    const after = await waitFor(async () => {
      const ms = await settled(sys, [survivor]);
      return ms?.origin?.serverId === sys.mediaIds[survivor] ? ms : undefined;
    }, 'the survivor is the origin and owns every stage', 10_000, 100);
    for (const v of viewers) assert.equal(ownerOf(after, v.stageArn), sys.mediaIds[survivor]);
    const st = await sys.mediaStats(survivor);
    assert.equal(st.ingest, 'broadcaster', 'the survivor takes the broadcast from the broadcaster itself');
    assert.equal(st.relay?.pull.state, 'idle', 'and no longer pulls a relay');

    const fs = viewers.map((v) => freezeOf(v, faultAt - BEFORE_MS, end));
    report(
      t,
      `kill -9 the origin ${sys.mediaIds[origin]}`,
      fs,
      `the broadcaster noticed after ${Math.round(live.lastLostAt - faultAt)} ms (${live.sessions[0]!.why}) and was publishing into ${sys.mediaIds[survivor]} ${Math.round(reconnectedAt - faultAt)} ms after the kill; viewers played again ${fs.map((f) => resumedAfter(f, faultAt)).join(', ')} ms after the kill`,
      p,
      faultAt,
      end,
    );
    for (const f of fs) assert.ok(resumedAfter(f, faultAt) <= 15_000, `${f.name} played again within 15 s of the kill`);
    for (const v of viewers) assert.equal(v.rejoins, 0, `${v.name} kept its seat and its stage`);
  }));

  test('SIGTERM a Media Server: it drains, its legs move make-before-break, no viewer freezes, it exits 0', { timeout: 75_000 }, withPool(async (t, mine) => {
    const p = await startPool(mine, { mediaServers: 2, stageCapacity: 1, minStages: 4, maxStages: 8, viewers: 4 });
    const { sys, viewers } = p;
    const before = await waitFor(() => settled(sys, [0, 1]), 'every stage owned, legs connected, origin known', 20_000, 100);
    const origin = before.origin!.serverId;
    const victim = sys.mediaIds.findIndex((id) => id !== origin);
    const victimId = sys.mediaIds[victim]!;
    const survivor = 1 - victim;
    const moved = viewers.filter((v) => ownerOf(before, v.stageArn) === victimId);
    assert.ok(moved.length > 0, `some viewer watches a stage of ${victimId}`);

    await steady(viewers);
    const faultAt = Date.now();
    const code = await sys.medias[victim]!.sigterm();
    const exitedAt = Date.now();
    assert.equal(code, 0, `the drained Media Server exits 0: ${sys.medias[victim]!.stderr()}`);
    assert.ok(sys.medias[victim]!.logs.some((l) => l.msg === 'drain.completed'), 'it drained (every stage moved) before stopping');
    const after = await waitFor(() => settled(sys, [survivor]), `the stages of ${victimId} owned by ${sys.mediaIds[survivor]}`, 10_000, 100);
    for (const v of moved) assert.equal(ownerOf(after, v.stageArn), sys.mediaIds[survivor]);
    const end = await allResumed(viewers, faultAt, 10_000);
    // Make-before-break at the stage server: the survivor's leg took each moved stage's publisher slot from a live one.
    const atStage = (await sys.stageStats()).stages;
    const handovers = moved.map((v) => atStage.find((s) => s.stageArn === v.stageArn)?.publisherHandovers ?? 0);
    for (const [i, v] of moved.entries()) assert.ok(handovers[i]! >= 1, `${v.name}'s stage took its new publisher from a live one (publisherHandovers ${handovers[i]})`);

    const fs = viewers.map((v) => freezeOf(v, faultAt - BEFORE_MS, end));
    report(t, `SIGTERM ${victimId} (drain)`, fs, `it exited ${exitedAt - faultAt} ms after SIGTERM; ${moved.length} viewer(s) had their stage's leg moved (publisher handovers at the stage server: ${handovers.join(', ')}); broadcaster sessions ${p.live.sessions.length}`, p, faultAt, end);
    // 30 fps is a frame every 33 ms; 300 ms is what this machine's scheduling adds at worst without a real stall.
    for (const f of fs) assert.ok(f.longestFreezeMs <= 300, `${f.name} froze ${f.longestFreezeMs} ms during the drain`);
    for (const v of viewers) assert.equal(v.rejoins, 0, `${v.name} kept its seat`);
  }));

  test('kill -9 a stage server: its stages are recreated on the other, and the viewers join again by themselves and play', { timeout: 75_000 }, withPool(async (t, mine) => {
    const p = await startPool(mine, {
      mediaServers: 1,
      stageServers: 2,
      // One viewer per stage, and stages spread over both stage servers: viewers on both sides of the fault.
      stageCapacity: 1,
      minStages: 4,
      maxStages: 8,
      viewers: 4,
      env: { api: { STAGE_SERVER_HEALTH_INTERVAL_MS: '500' } },
    });
    const { sys, viewers } = p;
    await waitFor(() => settled(sys, [0], false), 'every stage has its leg', 20_000, 100);
    const serverOf = (v: WatchViewer) => {
      const pb = v.viewer?.playback;
      const url = pb && pb.type === 'whep' ? pb.url : '';
      return sys.stageServers.findIndex((s) => url.startsWith(`${s.url}/`));
    };
    const victim = serverOf(viewers[0]!);
    assert.ok(victim >= 0, 'the viewer plays from one of our stage servers');
    const survivor = 1 - victim;
    const hit = viewers.filter((v) => serverOf(v) === victim);
    const spared = viewers.filter((v) => serverOf(v) !== victim);
    assert.ok(spared.length > 0, `viewers on both stage servers: ${viewers.map(serverOf).join(', ')}`);

    await steady(viewers);
    const faultAt = Date.now();
    await sys.stageServers[victim]!.kill9();
    const end = await allResumed(viewers, faultAt, 40_000);
    for (const v of hit) {
      assert.ok(v.rejoins >= 1, `${v.name} joined again (${JSON.stringify(v.joins)})`);
      assert.equal(serverOf(v), survivor, `${v.name} now plays from the live stage server`);
    }
    const stages = await sys.stages();
    const onVictim = stages.filter((s) => s.whipUrl.startsWith(`${sys.stageServers[victim]!.url}/`));
    assert.equal(onVictim.length, 0, 'no stage of the dead stage server is left in the pool');

    const hitF = hit.map((v) => freezeOf(v, faultAt - BEFORE_MS, end));
    const sparedF = spared.map((v) => freezeOf(v, faultAt - BEFORE_MS, end));
    report(
      t,
      `kill -9 stage server ${victim + 1} of 2`,
      [...hitF, ...sparedF],
      `its ${hit.length} viewer(s) played again ${hitF.map((f) => resumedAfter(f, faultAt)).join(', ')} ms after the kill (rejoin reasons ${hit.map((v) => v.joins.slice(1).map((j) => j.why).join('/')).join(', ')}); active stages now ${stages.filter((s) => s.state === 'active').length}`,
      p,
      faultAt,
      end,
    );
    for (const f of hitF) assert.ok(resumedAfter(f, faultAt) <= 20_000, `${f.name} played again within 20 s`);
    for (const f of sparedF) assert.ok(f.longestFreezeMs <= 500, `${f.name} (on the live stage server) froze ${f.longestFreezeMs} ms`);
  }));
});
