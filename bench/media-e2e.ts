/**
 * End to end through the Media Server: one synthetic broadcaster publishes by WHIP into the Media Server,
 * which forwards into N local stages (the real stage server, stages made by the real API Server's pool), with one
 * WHEP sink per stage. All real processes on 127.0.0.1. Per N (a fresh system each time):
 *   - baseline: the broadcaster publishes straight into one stage (no Media Server), for the ADDED latency;
 *   - steady window: Media Server CPU (/proc, every thread: SRTP, ICE, RTCP it handles) per packet per stage,
 *     broadcaster → viewer latency p50/p99, loss;
 *   - new stages while live: `stage.created` (API Server log time) → first complete keyframe at a viewer of it.
 * With `--media-servers=1,2` each N runs once per count, in one sitting: with 2, the broadcaster publishes into the
 * first Media Server (the origin), the API Server shares the stages between both, and the second pulls the broadcast
 * from the first (relay). CPU is summed over every Media Server process; legs are the stage legs of all of them.
 * usage: node --import tsx bench/media-e2e.ts [--stages=10,50,100] [--media-servers=1] [--seconds=15] [--new-stages=5] [--per-worker=50]
 */
import { join } from 'node:path';
import type { MediaServerStats, StageServerStatsResponse } from '@stagecast/protocol';
import type { App } from '../e2e/helpers/apps.js';
import { waitFor } from '../e2e/helpers/wait.js';
import { arg, benchDone, benchFailed, json, list, measureFor } from './lib/env.js';
import { spawnWorker, type Worker } from './lib/ipc.js';
import { cpuMs, machineTicks } from './lib/proc.js';
import { mergeWindow, round, SinkPool, table, type WindowResult } from './lib/sink-pool.js';
import { INGEST_TOKEN, startSystem, type System } from './lib/system.js';

const SOURCE_WORKER = join(import.meta.dirname, 'lib', 'source-worker.ts');
const stageCounts = list('stages', '10,50,100');
const mediaServerCounts = list('media-servers', '1');
const seconds = Number(arg('seconds', '15'));
const newStages = Number(arg('new-stages', '5'));
const perWorker = Number(arg('per-worker', '50'));

interface Row {
  stages: number;
  mediaServers: number;
  legs: number;
  /** Connected stage legs per Media Server, in start order. */
  legsPerServer: number[];
  /** CPU cores per Media Server over the window, in start order. */
  coresPerServer: number[];
  /** Each Media Server's ingest at the window's end (heartbeat kind, when its GET / reports it). */
  ingestPerServer: string[];
  seconds: number;
  packetsIn: number;
  legPacketsOut: number;
  mediaCores: number;
  usPerPacketPerStage: number;
  stageServerCores: number;
  window: WindowResult;
  /** With several Media Servers: the window of the viewers of each one's stages (owner at join time). */
  windowByServer: Array<{ serverId: string; sinks: number; latencyP50Ms: number; latencyP99Ms: number; latencyMaxMs: number; keyframeLastSinkP50Ms: number; ownerChanged: number }>;
  baseline: WindowResult;
  addedLatencyP50Ms: number;
  addedLatencyP99Ms: number;
  newStage: { stageFirstKeyframeP50Ms: number; stageFirstKeyframeMaxMs: number; firstFrameP50Ms: number; firstFrameMaxMs: number; legConnectedP50Ms: number; error?: string; samples: Array<{ stageFirstKeyframeMs: number; legConnectedMs: number; keyframeAfterLegUpMs: number; firstFrameMs: number; viewerConnectMs: number; keyframeAgeMs: number; lostAtStage: number }> };
  sinksWorkersCores: number;
  machineBusyPct: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)]! : NaN;
};

async function msStats(media: App): Promise<MediaServerStats> {
  return (await json<MediaServerStats>(`${media.url}/`)).body;
}

/** pino's `time` (ISO with ms here; epoch ms with pino's default). */
const logTime = (l: Record<string, unknown>) => (typeof l.time === 'number' ? l.time : Date.parse(String(l.time)));

async function runOnce(n: number, m: number): Promise<Row> {
  const sys: System = await startSystem({ minStages: n, maxStages: n + 2 * newStages + 4, mediaServers: m });
  const workers: Worker[] = [];
  const pool = new SinkPool(perWorker);
  // With several Media Servers, the viewers of the stages of the one that owns the baseline viewer's stage stay in
  // `pool`, the others go to `other`: each pool's latency is then one Media Server's (the origin's or the relay's).
  const other = new SinkPool(perWorker);
  const pools = [pool, other];
  try {
    // ---- Baseline: broadcaster → stage → viewer, no Media Server (the stage hop alone). ----
    const first = await sys.join();
    const direct = await spawnWorker(SOURCE_WORKER);
    workers.push(direct);
    const pt = await sys.publishToken(first.stageArn);
    await direct.call('publish', { url: pt.whipUrl, token: pt.token });
    await pool.join([{ url: first.playback.url, token: first.token }]);
    await waitFor(() => pool.allReceiving(300), 'baseline viewer receives media', 20_000);
    await measureFor(2000); // warm-up (JIT) before the window
    await pool.windowStart();
    await measureFor(Math.min(seconds, 10) * 1000);
    const baseline = await pool.windowEnd();
    await direct.call('unpublish');
    await direct.stop();
    console.error(`N=${n}: baseline broadcaster → stage → viewer p50 ${baseline.latencyP50Ms} ms, p99 ${baseline.latencyP99Ms} ms`);

    // ---- The Media Servers, the broadcaster (into the first: the origin), one viewer per stage. ----
    const medias: App[] = [];
    for (let i = 0; i < m; i++) {
      const a = await sys.startMedia(i);
      await a.waitForLog((l) => l.msg === 'registered', 'registered with the API Server', 20_000);
      medias.push(a);
    }
    const media = medias[0]!;
    const src = await spawnWorker(SOURCE_WORKER);
    workers.push(src);
    await src.call('publish', { url: `${media.url}/whip`, token: INGEST_TOKEN });
    const joins: Array<Awaited<ReturnType<System['join']>>> = [];
    for (let i = 1; i < n; i++) joins.push(await sys.join());
    const t0 = performance.now();
    const ownersAtJoin = m > 1 ? await sys.owners() : new Map<string, string | null>();
    const firstOwner = ownersAtJoin.get(first.stageArn) ?? null;
    const mine = joins.filter((j) => m === 1 || ownersAtJoin.get(j.stageArn) === firstOwner);
    const theirs = joins.filter((j) => !mine.includes(j));
    await pool.join(mine.map((j) => ({ url: j.playback.url, token: j.token })));
    if (theirs.length) await other.join(theirs.map((j) => ({ url: j.playback.url, token: j.token })));
    console.error(`N=${n}: ${joins.length} viewers joined in ${Math.round(performance.now() - t0)} ms`);
    // Every active stage (the N, and the spare the pool may have made once they were full) has its leg.
    let legState = '';
    await waitFor(
      async () => {
        const [sts, active] = await Promise.all([Promise.all(medias.map(msStats)), sys.activeStages()]);
        const connected = sts.reduce((k, st) => k + st.stages.connected, 0);
        const expected = sts.reduce((k, st) => k + st.stages.expected, 0);
        legState = `${sts.map((st) => st.stages.connected).join('+')} legs connected, ${expected} expected, ${active.length} active stages, ${sts.reduce((k, st) => k + st.errors.legFailures, 0)} leg failures`;
        // Each stage has exactly one leg (no handover under way), and with several servers each has some.
        return connected === active.length && expected === active.length && active.length >= n && (m === 1 || sts.every((st) => st.stages.connected > 0));
      },
      'a connected leg into every stage',
      180_000,
      250,
    ).catch((e: Error) => {
      throw new Error(`${e.message} (${legState})`);
    });
    await waitFor(async () => (await Promise.all(pools.map((p) => p.allReceiving(300)))).every(Boolean), `all ${n} viewers receive media`, 60_000, 200);

    // ---- Steady window. ----
    const pids = medias.map((a) => a.child.pid!);
    const sts0 = await Promise.all(medias.map(msStats));
    const st0 = sts0[0]!;
    const cs0 = pids.map(cpuMs);
    const sc0 = cpuMs(sys.stage.child.pid!);
    const sk0 = pool.cpuMs() + other.cpuMs();
    const m0 = machineTicks();
    const w0 = performance.now();
    await Promise.all(pools.map((p) => p.windowStart()));
    await measureFor(seconds * 1000);
    const [partsMine, partsTheirs] = await Promise.all(pools.map((p) => p.windowParts()));
    const window = mergeWindow([...partsMine!, ...partsTheirs!]);
    const ownersAtEnd = m > 1 ? await sys.owners() : new Map<string, string | null>();
    const byServer = (parts: typeof partsMine, js: typeof joins, serverId: string) => {
      const w = mergeWindow(parts!);
      const ownerChanged = js.filter((j) => ownersAtEnd.get(j.stageArn) !== ownersAtJoin.get(j.stageArn)).length;
      return { serverId, sinks: w.sinks, latencyP50Ms: w.latencyP50Ms, latencyP99Ms: w.latencyP99Ms, latencyMaxMs: w.latencyMaxMs, keyframeLastSinkP50Ms: w.keyframeLastSinkP50Ms, ownerChanged };
    };
    const otherOwner = theirs.length ? String(ownersAtJoin.get(theirs[0]!.stageArn)) : '-';
    const windowByServer = m > 1 ? [byServer(partsMine, mine, String(firstOwner)), ...(theirs.length ? [byServer(partsTheirs, theirs, otherOwner)] : [])] : [];
    const dt = (performance.now() - w0) / 1000;
    const cpus = pids.map((p, i) => cpuMs(p) - cs0[i]!);
    const cpu = cpus.reduce((a, b) => a + b, 0);
    const stageCpu = cpuMs(sys.stage.child.pid!) - sc0;
    const sinksCpu = pool.cpuMs() + other.cpuMs() - sk0;
    const m1 = machineTicks();
    const sts1 = await Promise.all(medias.map(msStats));
    const st1 = sts1[0]!;
    const legsPerServer = sts1.map((st) => st.stages.connected);
    const legs = legsPerServer.reduce((a, b) => a + b, 0);
    // The broadcast's packets, as the origin received them from the broadcaster.
    const packetsIn = st1.publisher.packetsReceived - st0.publisher.packetsReceived;
    const sent = (ss: MediaServerStats[]) => ss.reduce((k, s) => k + s.legs.reduce((j, l) => j + l.packetsSent, 0), 0);
    const ingestPerServer = sts1.map((st) => String((st as { ingest?: unknown }).ingest ?? '-'));

    // ---- Stages created while live: stage.created → the leg connected → the first keyframe at that stage. ----
    // Times come from the apps' own logs (API Server: stage.created; stage server: publisher.connected and
    // publisher.first_keyframe), so they do not depend on when the bench looks. (An earlier version timed the first
    // /stats poll showing a keyframe, and sometimes measured a spare stage created a second before the poll began.)
    const seen = new Set(sys.api.logs.filter((l) => l.msg === 'stage.created').map((l) => String(l.stageArn)));
    const samples: Row['newStage']['samples'] = [];
    let newStageError: string | undefined;
    try {
    for (let k = 0; k < newStages; k++) {
      await measureFor(200 + Math.random() * 1800); // a random point of the broadcaster's 2-s GOP
      // Every stage holds one viewer and the pool keeps a spare: this join takes the spare (or waits for a new
      // stage), and the pool creates a stage now, while live. The first stage created after the join is measured.
      const joinedAt = Date.now();
      let v = await sys.join();
      const created = await sys.api.waitForLog(
        (l) => l.msg === 'stage.created' && !seen.has(String(l.stageArn)) && logTime(l) >= joinedAt - 5,
        'a stage created for this join',
        30_000,
      );
      for (const l of sys.api.logs) if (l.msg === 'stage.created') seen.add(String(l.stageArn));
      const createdArn = String(created.stageArn);
      const createdAt = logTime(created);
      const ofStage = (msg: string) => (l: Record<string, unknown>) => l.msg === msg && l.stageArn === createdArn;
      const legUp = await sys.stage.waitForLog(ofStage('publisher.connected'), 'the leg connected at the new stage', 10_000);
      const keyframe = await sys.stage.waitForLog(ofStage('publisher.first_keyframe'), 'the first keyframe at the new stage', 10_000);
      // A viewer on the new stage (the only one with a seat once the join above took the spare): its first frame,
      // timed from its WHEP POST.
      if (v.stageArn !== createdArn) {
        v = await sys.join();
        if (v.stageArn !== createdArn) throw new Error(`joined ${v.stageArn}, expected the new ${createdArn}`);
      }
      const [r] = await pool.join([{ url: v.playback.url, token: v.token }], { probe: true });
      const lostAtStage = (await json<StageServerStatsResponse>(`${sys.stage.url}/stats`)).body.stages.find((s) => s.stageArn === createdArn)?.packetsLost ?? NaN;
      samples.push({
        stageFirstKeyframeMs: round(logTime(keyframe) - createdAt, 1),
        legConnectedMs: round(logTime(legUp) - createdAt, 1),
        keyframeAfterLegUpMs: Number(keyframe.sinceConnectedMs ?? NaN),
        firstFrameMs: round(r!.firstKeyframeMs ?? NaN, 1),
        viewerConnectMs: round(r!.connectMs ?? NaN, 1),
        keyframeAgeMs: round(r!.firstKeyframeAgeMs ?? NaN, 1),
        lostAtStage,
      });
    }
    } catch (err) {
      // Keep the steady window's row; say why the new-stage part stopped, with the API Server's scaling logs.
      const scaling = sys.api.logs.filter((l) => l.component === 'scaling' || Number(l.level) >= 40).slice(-6);
      newStageError = `${err instanceof Error ? err.message : String(err)}; last scaling/warn logs: ${JSON.stringify(scaling)}`;
      console.error(`N=${n}: new stages: ${newStageError}`);
    }
    const ff = samples.map((s) => s.firstFrameMs);
    return {
      stages: n,
      mediaServers: m,
      legs,
      legsPerServer,
      coresPerServer: cpus.map((c) => round(c / 1000 / dt, 3)),
      ingestPerServer,
      seconds: round(dt, 1),
      packetsIn,
      legPacketsOut: sent(sts1) - sent(sts0),
      mediaCores: round(cpu / 1000 / dt, 3),
      usPerPacketPerStage: round((cpu * 1000) / Math.max(1, packetsIn * legs), 2),
      stageServerCores: round(stageCpu / 1000 / dt, 3),
      window,
      windowByServer,
      baseline,
      addedLatencyP50Ms: round(window.latencyP50Ms - baseline.latencyP50Ms, 3),
      addedLatencyP99Ms: round(window.latencyP99Ms - baseline.latencyP99Ms, 3),
      newStage: {
        stageFirstKeyframeP50Ms: median(samples.map((s) => s.stageFirstKeyframeMs)),
        stageFirstKeyframeMaxMs: samples.length ? Math.max(...samples.map((s) => s.stageFirstKeyframeMs)) : NaN,
        firstFrameP50Ms: median(ff), firstFrameMaxMs: ff.length ? Math.max(...ff) : NaN, legConnectedP50Ms: median(samples.map((s) => s.legConnectedMs)), samples, ...(newStageError ? { error: newStageError } : {}) },
      sinksWorkersCores: round(sinksCpu / 1000 / dt, 2),
      machineBusyPct: round((100 * (m1.busy - m0.busy)) / Math.max(1, m1.total - m0.total), 1),
    };
  } finally {
    await pool.close().catch(() => undefined);
    await other.close().catch(() => undefined);
    for (const w of workers) await w.stop().catch(() => undefined);
    await sys.stop();
  }
}

const result: Record<string, unknown> = { bench: 'media-e2e', node: process.version, seconds, newStages, mediaServers: mediaServerCounts, startedAt: new Date().toISOString() };
const rows: Row[] = [];
try {
  for (const n of stageCounts) for (const m of mediaServerCounts) {
    const row = await runOnce(n, m);
    rows.push(row);
    console.error(
      `N=${n}, ${m} Media Server(s) (legs ${row.legsPerServer.join('+')}, cores ${row.coresPerServer.join('+')}${row.windowByServer.map((w) => `; viewers of ${w.serverId}'s ${w.sinks} stages: p50 ${w.latencyP50Ms} p99 ${w.latencyP99Ms} max ${w.latencyMaxMs} ms, keyframe to last sink p50 ${w.keyframeLastSinkP50Ms} ms${w.ownerChanged ? `, ${w.ownerChanged} stages changed owner during the run` : ''}`).join('')}): ${row.usPerPacketPerStage} µs/pkt/stage (${row.legs} legs), e2e p50 ${row.window.latencyP50Ms} p99 ${row.window.latencyP99Ms} ms, lost ${row.window.lost}, new stage: keyframe at the stage p50 ${row.newStage.stageFirstKeyframeP50Ms} ms after stage.created, its viewer's first frame p50 ${row.newStage.firstFrameP50Ms} ms after its POST`,
    );
  }
  result.rows = rows;
  // 2 Media Servers against 1 at the same N: the relay may add at most 10 % CPU per packet per leg, and the p99
  // added latency should fall to at most 0.6× (the legs' sends spread over two processes).
  const comparison = stageCounts.flatMap((n) => {
    const one = rows.find((r) => r.stages === n && r.mediaServers === 1);
    const two = rows.find((r) => r.stages === n && r.mediaServers === 2);
    if (!one || !two) return [];
    const cpuRatio = round(two.usPerPacketPerStage / one.usPerPacketPerStage, 3);
    const p99Ratio = round(two.addedLatencyP99Ms / one.addedLatencyP99Ms, 3);
    return [{ stages: n, cpuRatio, cpuGoalMet: cpuRatio <= 1.1, p99Ratio, latencyGoalMet: p99Ratio <= 0.6 }];
  });
  result.comparison = comparison;
  result.ok = true;
  console.log(
    table(
      ['stages', 'MS', 'legs', 'legs per MS', 'µs/pkt/leg (all MS)', 'MS cores', 'pkts in', 'lost', 'e2e p50', 'e2e p99', 'direct p50', 'direct p99', 'added p50', 'added p99', 'new stage: KF p50 ms', 'max', 'leg up p50', 'its viewer 1st frame p50', 'max', 'stage srv cores', 'sinks cores', 'machine %'],
      rows.map((r) => [
        r.stages,
        r.mediaServers,
        r.legs,
        r.legsPerServer.join('+'),
        r.usPerPacketPerStage,
        r.mediaCores,
        r.packetsIn,
        r.window.lost,
        r.window.latencyP50Ms,
        r.window.latencyP99Ms,
        r.baseline.latencyP50Ms,
        r.baseline.latencyP99Ms,
        r.addedLatencyP50Ms,
        r.addedLatencyP99Ms,
        r.newStage.stageFirstKeyframeP50Ms,
        r.newStage.stageFirstKeyframeMaxMs,
        r.newStage.legConnectedP50Ms,
        r.newStage.firstFrameP50Ms,
        r.newStage.firstFrameMaxMs,
        r.stageServerCores,
        r.sinksWorkersCores,
        r.machineBusyPct,
      ]),
    ),
  );
  if (comparison.length)
    console.log(
      table(
        ['stages', 'CPU/pkt/leg 2 MS ÷ 1 MS', 'goal ≤ 1.10', 'added p99 2 MS ÷ 1 MS', 'goal ≤ 0.60'],
        comparison.map((c) => [c.stages, c.cpuRatio, c.cpuGoalMet ? 'met' : 'missed', c.p99Ratio, c.latencyGoalMet ? 'met' : 'missed']),
      ),
    );
} catch (err) {
  result.rows = rows;
  benchFailed(result, err);
} finally {
  benchDone('media-e2e', result);
}
