/**
 * Fan-out over the real network: 1 source → N sinks through the stage server (the product: Router +
 * WHIP/WHEP endpoints), each sink a real DTLS-SRTP connection in another process. Three kinds of process:
 *   A  the stage server (startApp, as `npm start` runs it) — the one whose CPU is measured, from /proc;
 *   B  the source worker: WHIP publisher of stamped synthetic H.264 30 fps + Opus 50 pps (~2.5 Mbps);
 *   C  sinks workers: up to --per-worker WHEP sinks each.
 * Reports, per N: µs of A's CPU per forwarded packet per sink, loss, latency p50/p99 (minus a direct source → sink
 * baseline = the added part), keyframe delivery to the last sink, first-frame time of sinks joining mid-GOP.
 * usage: node --import tsx bench/fanout-net.ts [--sinks=1,10,50,100,200] [--seconds=15] [--per-worker=50]
 *        [--probes=5] [--baseline=1] [--soak=0 (seconds at N=100; e.g. --soak=300)] [--live-heap-every=0 (s)]
 *        [--perf-at=N (perf record the stage server during N's window; 0 = the ingest-only window)]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateStageResponseSchema, type StageServerStatsResponse } from '@stagecast/protocol';
import { startApp, type App } from '../e2e/helpers/apps.js';
import { waitFor } from '../e2e/helpers/wait.js';
import { arg, benchDone, benchFailed, heapFromMetrics, json, list, measureFor, writeResult } from './lib/env.js';
import { HeapInspector, inspectorUrl } from './lib/inspector.js';
import { spawnWorker, track, type Worker } from './lib/ipc.js';
import { cpuMs, machineTicks, rssMB } from './lib/proc.js';
import { round, SinkPool, slope, table, type WindowResult } from './lib/sink-pool.js';
import { perfAvailable, perfRecord } from './lib/perf.js';
import { startTokenStub } from './lib/token-stub.js';

const SOURCE_WORKER = join(import.meta.dirname, 'lib', 'source-worker.ts');
const soakSeconds = Number(arg('soak', '0'));
const liveHeapEvery = Number(arg('live-heap-every', '0'));
const sinkCounts = list('sinks', soakSeconds > 0 ? '100' : '1,10,50,100,200');
const seconds = Number(arg('seconds', '15'));
const perWorker = Number(arg('per-worker', '50'));
const probes = Number(arg('probes', '5'));
const withBaseline = arg('baseline', '1') !== '0';
const SECRET = 'bench-stage-secret-0123456789';
const perfAt = arg('perf-at', '') === '' ? undefined : Number(arg('perf-at', ''));
if (perfAt !== undefined && !perfAvailable()) throw new Error('--perf-at needs Linux perf');

interface Row {
  sinks: number;
  seconds: number;
  packetsIn: number;
  packetsOut: number;
  cpuCores: number;
  usPerPacketPerSink: number;
  /** (CPU(N) − CPU(0)) / (packets in × N): the per-sink cost without the ingest. */
  marginalUsPerPacketPerSink: number;
  window?: WindowResult;
  addedLatencyP50Ms?: number;
  addedLatencyP99Ms?: number;
  firstFrameMs?: { p50: number; max: number; samples: number[]; keyframeAgeMs: number[] };
  sinksWorkersCores: number;
  machineBusyPct: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)]! : NaN;
};

async function stageStats(stage: App): Promise<{ in: number; out: number }> {
  const { body } = await json<StageServerStatsResponse>(`${stage.url}/stats`);
  const s = body.stages[0]!;
  return { in: s.packetsReceived, out: s.packetsSent };
}

/** One measuring window: A's CPU and packets from its /stats, the sinks' window, the machine's load. */
async function measure(stage: App, pool: SinkPool | undefined, ms: number, profile?: string) {
  const cpu0 = cpuMs(stage.child.pid!);
  const s0 = await stageStats(stage);
  const m0 = machineTicks();
  const sinksCpu0 = pool?.cpuMs() ?? 0;
  const t0 = performance.now();
  await pool?.windowStart();
  const perf = profile ? perfRecord(stage.child.pid!, ms / 1000) : undefined;
  await measureFor(ms);
  const window = pool ? await pool.windowEnd() : undefined;
  if (perf) {
    const text = await perf;
    const file = writeResult(`fanout-net-perf-${profile}`, { text });
    console.error(`perf profile of the stage server (${profile}) in ${file}\n${text}`);
  }
  const dt = (performance.now() - t0) / 1000;
  const cpu = cpuMs(stage.child.pid!) - cpu0;
  const s1 = await stageStats(stage);
  const m1 = machineTicks();
  return {
    dt,
    cpu,
    packetsIn: s1.in - s0.in,
    packetsOut: s1.out - s0.out,
    window,
    sinksCores: pool ? (pool.cpuMs() - sinksCpu0) / 1000 / dt : 0,
    machineBusyPct: round((100 * (m1.busy - m0.busy)) / Math.max(1, m1.total - m0.total), 1),
  };
}

const dataDir = mkdtempSync(join(tmpdir(), 'sc-bench-fanout-'));
const stub = await startTokenStub();
let stage: App | undefined;
const workers: Worker[] = [];
const pools: SinkPool[] = [];
const result: Record<string, unknown> = { bench: 'fanout-net', node: process.version, seconds, perWorker, startedAt: new Date().toISOString() };
try {
  // ---- Baseline: source → direct WHIP receiver, no router (one SRTP hop), for the ADDED latency. ----
  let baseline: WindowResult | undefined;
  if (withBaseline) {
    const pool = new SinkPool(1);
    pools.push(pool);
    const url = await pool.directReceiver();
    const src = await spawnWorker(SOURCE_WORKER);
    workers.push(src);
    await src.call('publish', { url });
    await waitFor(() => pool.allReceiving(300), 'baseline receiver gets media', 15_000);
    await measureFor(2000); // warm-up (JIT) before the window
    await pool.windowStart();
    await measureFor(seconds * 1000);
    baseline = await pool.windowEnd();
    await src.stop();
    await pool.close();
    result.baseline = baseline;
    console.error(`baseline (direct, 1 hop): p50 ${baseline.latencyP50Ms} ms, p99 ${baseline.latencyP99Ms} ms, lost ${baseline.lost}`);
  }

  // ---- The stage server (process A), one stage, the source publishing into it. ----
  const server = await startApp('stage-server', {
    STAGE_SERVER_SECRET: SECRET,
    DATA_DIR: join(dataDir, 'stage'),
    API_SERVER_URL: stub.url,
    RTC_BIND_ADDRESS: '127.0.0.1',
    // JIT-compiled JavaScript gets symbols in perf's samples.
    ...(perfAt !== undefined ? { NODE_OPTIONS: '--perf-basic-prof-only-functions' } : {}),
    // The soak reads the live heap (after a full GC) through the inspector, on loopback only.
  }, soakSeconds > 0 ? ['--inspect=127.0.0.1:0'] : []);
  stage = server;
  track(server.child);
  const created = await json(`${stage.url}/admin/stages`, { method: 'POST', headers: { authorization: `Bearer ${SECRET}` }, body: JSON.stringify({ name: 'bench' }) });
  const st = CreateStageResponseSchema.parse(created.body).stage;
  // The server with its stage but no publisher: what A costs doing nothing (timers, native threads).
  const idleCpu0 = cpuMs(stage.child.pid!);
  const idleT0 = performance.now();
  await measureFor(5000);
  result.serverIdleCores = round((cpuMs(stage.child.pid!) - idleCpu0) / (performance.now() - idleT0), 4);
  const src = await spawnWorker(SOURCE_WORKER);
  workers.push(src);
  await src.call('publish', { url: st.whipUrl, token: await stub.token(st.stageArn, 'publish') });
  await waitFor(async () => (await stageStats(stage!)).in > 300, 'stage receives the source', 15_000);

  const pool = new SinkPool(perWorker);
  pools.push(pool);
  const rows: Row[] = [];
  // N = 0 first: the ingest alone (decrypt, parse, cache), subtracted for the marginal per-sink cost.
  const idle = await measure(stage, undefined, Math.min(seconds, 10) * 1000, perfAt === 0 ? 'ingest' : undefined);
  const idleCoresPerPacket = idle.cpu / Math.max(1, idle.packetsIn);
  result.ingestOnly = { cpuCores: round(idle.cpu / 1000 / idle.dt, 4), packetsIn: idle.packetsIn, usPerPacket: round((idle.cpu * 1000) / Math.max(1, idle.packetsIn), 2) };

  result.rows = rows;
  for (const n of sinkCounts) {
    try {
      await step(n);
    } catch (err) {
      // A machine that cannot host N sinks (joins time out) ends the ramp; the rows so far are kept.
      result.stoppedAt = { sinks: n, error: err instanceof Error ? err.message : String(err) };
      console.error(`N=${n}: stopped: ${String(err)}`);
      break;
    }
  }

  async function step(n: number): Promise<void> {
    const add = n - pool.size;
    if (add > 0) {
      const targets = await Promise.all(Array.from({ length: add }, async () => ({ url: st.whepUrl, token: await stub.token(st.stageArn, 'subscribe') })));
      const t0 = performance.now();
      await pool.join(targets);
      console.error(`N=${n}: ${add} sinks joined in ${Math.round(performance.now() - t0)} ms`);
    }
    await waitFor(() => pool.allReceiving(300), `all ${n} sinks receive media`, 60_000, 200);
    const m = await measure(server, pool, seconds * 1000, perfAt === n ? `n${n}` : undefined);
    const w = m.window!;
    const row: Row = {
      sinks: n,
      seconds: round(m.dt, 1),
      packetsIn: m.packetsIn,
      packetsOut: m.packetsOut,
      cpuCores: round(m.cpu / 1000 / m.dt, 3),
      usPerPacketPerSink: round((m.cpu * 1000) / Math.max(1, m.packetsIn * n), 2),
      marginalUsPerPacketPerSink: round(((m.cpu - idleCoresPerPacket * m.packetsIn) * 1000) / Math.max(1, m.packetsIn * n), 2),
      window: w,
      ...(baseline ? { addedLatencyP50Ms: round(w.latencyP50Ms - baseline.latencyP50Ms, 3), addedLatencyP99Ms: round(w.latencyP99Ms - baseline.latencyP99Ms, 3) } : {}),
      sinksWorkersCores: round(m.sinksCores, 2),
      machineBusyPct: m.machineBusyPct,
    };
    // Sinks joining mid-GOP: POST → first complete keyframe (SPS/PPS + every IDR fragment), one at a time.
    const ff: number[] = [];
    const ages: number[] = [];
    for (let k = 0; k < probes; k++) {
      await measureFor(200 + Math.random() * 1800); // a random point of the 2-s GOP
      const [r] = await pool.join([{ url: st.whepUrl, token: await stub.token(st.stageArn, 'subscribe') }], { probe: true });
      if (r!.firstKeyframeMs !== undefined) ff.push(round(r!.firstKeyframeMs, 1));
      if (r!.firstKeyframeAgeMs !== undefined) ages.push(round(r!.firstKeyframeAgeMs, 1));
      await pool.leave([r!]);
    }
    if (probes > 0) row.firstFrameMs = { p50: median(ff), max: Math.max(...ff), samples: ff, keyframeAgeMs: ages };
    rows.push(row);
    console.error(`N=${n}: ${row.usPerPacketPerSink} µs/pkt/sink, p99 ${w.latencyP99Ms} ms, lost ${w.lost}, first frame p50 ${row.firstFrameMs?.p50} ms, sinks workers ${row.sinksWorkersCores} cores, machine ${row.machineBusyPct} %`);
  }

  // ---- Soak (opt-in): memory of A at the largest N, sampled every 10 s. ----
  if (soakSeconds > 0 && !result.stoppedAt) {
    // Every 10 s: RSS and the heap as prom-client sees it (garbage included). At both ends (and every
    // --live-heap-every seconds if set): the live heap after a full GC, through the inspector — the one that tells a
    // leak from garbage no major GC took yet. A forced full GC stalls the server for a second or more under this load,
    // so sampling it during the window shows in the soak's latency.
    const samples: Array<{ t: number; rssMB: number; heapMB: number; liveHeapMB?: number }> = [];
    const inspector = await HeapInspector.connect(await inspectorUrl(stage.stderr));
    const liveFirst = round(await inspector.liveHeapMB(), 3); // also clears the warm-up's garbage
    const t0 = performance.now();
    await pool.windowStart();
    const cpu0 = cpuMs(stage.child.pid!);
    const sample = async (live: boolean) => {
      const s: (typeof samples)[number] = { t: round((performance.now() - t0) / 1000, 1), rssMB: round(rssMB(stage!.child.pid!), 2), heapMB: round(await heapFromMetrics(`${stage!.url}/metrics`), 2) };
      if (live) s.liveHeapMB = round(await inspector.liveHeapMB(), 3);
      samples.push(s);
    };
    const every = Math.round(liveHeapEvery / 10);
    for (let i = 0; (performance.now() - t0) / 1000 < soakSeconds; i++) {
      await sample(every > 0 && i > 0 && i % every === 0);
      await measureFor(10_000);
    }
    await sample(false);
    const w = await pool.windowEnd();
    samples[0]!.liveHeapMB = liveFirst;
    samples.at(-1)!.liveHeapMB = round(await inspector.liveHeapMB(), 3);
    inspector.close();
    const half = samples.filter((s) => s.t >= soakSeconds / 2);
    const live = samples.filter((s) => s.liveHeapMB !== undefined);
    const liveHalf = live.filter((s) => s.t >= soakSeconds / 2);
    result.soak = {
      sinks: pool.size,
      seconds: soakSeconds,
      cpuCores: round((cpuMs(stage.child.pid!) - cpu0) / 1000 / ((performance.now() - t0) / 1000), 3),
      rssSlopeMBPerMin: round(slope(samples.map((s) => [s.t / 60, s.rssMB])), 3),
      heapSlopeMBPerMin: round(slope(samples.map((s) => [s.t / 60, s.heapMB])), 3),
      rssSlopeSecondHalfMBPerMin: round(slope(half.map((s) => [s.t / 60, s.rssMB])), 3),
      heapSlopeSecondHalfMBPerMin: round(slope(half.map((s) => [s.t / 60, s.heapMB])), 3),
      liveHeapFirstMB: live[0]?.liveHeapMB,
      liveHeapLastMB: live.at(-1)?.liveHeapMB,
      liveHeapSlopeMBPerMin: round(slope(live.map((s) => [s.t / 60, s.liveHeapMB!])), 4),
      liveHeapSlopeSecondHalfMBPerMin: round(slope(liveHalf.map((s) => [s.t / 60, s.liveHeapMB!])), 4),
      lost: w.lost,
      lossPct: w.lossPct,
      latencyP50Ms: w.latencyP50Ms,
      latencyP99Ms: w.latencyP99Ms,
      samples,
    };
  }

  console.log(
    table(
      ['sinks', 'µs/pkt/sink', 'marginal µs', 'A cores', 'pkts in', 'lost', 'lat p50', 'lat p99', 'added p50', 'added p99', 'KF→last p50', 'KF→last max', '1st frame p50', '1st frame max', 'sinks cores', 'machine %'],
      rows.map((r) => [
        r.sinks,
        r.usPerPacketPerSink,
        r.marginalUsPerPacketPerSink,
        r.cpuCores,
        r.packetsIn,
        r.window?.lost ?? '-',
        r.window?.latencyP50Ms ?? '-',
        r.window?.latencyP99Ms ?? '-',
        r.addedLatencyP50Ms ?? '-',
        r.addedLatencyP99Ms ?? '-',
        r.window?.keyframeLastSinkP50Ms ?? '-',
        r.window?.keyframeLastSinkMaxMs ?? '-',
        r.firstFrameMs?.p50 ?? '-',
        r.firstFrameMs?.max ?? '-',
        r.sinksWorkersCores,
        r.machineBusyPct,
      ]),
    ),
  );
  if (baseline) console.log(`baseline, source → receiver direct (1 SRTP hop): p50 ${baseline.latencyP50Ms} ms, p99 ${baseline.latencyP99Ms} ms; latency columns are ms, ingest alone ${JSON.stringify(result.ingestOnly)}, server idle (no publisher) ${result.serverIdleCores} cores`);
  if (result.soak) {
    const s = result.soak as Record<string, number>;
    console.log(`soak ${s.seconds} s at N=${s.sinks}: RSS slope ${s.rssSlopeMBPerMin} MB/min (2nd half ${s.rssSlopeSecondHalfMBPerMin}), heap slope ${s.heapSlopeMBPerMin} MB/min (2nd half ${s.heapSlopeSecondHalfMBPerMin}), live heap after GC ${s.liveHeapFirstMB} → ${s.liveHeapLastMB} MB (slope ${s.liveHeapSlopeMBPerMin} MB/min, 2nd half ${s.liveHeapSlopeSecondHalfMBPerMin}), lost ${s.lost}, p99 ${s.latencyP99Ms} ms`);
  }
  result.ok = true;
} catch (err) {
  benchFailed(result, err);
} finally {
  for (const p of pools) await p.close().catch(() => undefined);
  for (const w of workers) await w.stop().catch(() => undefined);
  await stage?.stop().catch(() => undefined);
  await stub.close();
  rmSync(dataDir, { recursive: true, force: true });
  benchDone(soakSeconds > 0 ? 'fanout-net-soak' : 'fanout-net', result);
}
