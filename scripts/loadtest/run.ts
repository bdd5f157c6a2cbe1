/**
 * The load itself: simulated viewers join at a fixed rate (open loop: each join is sent at its scheduled time,
 * whatever the answers before it did, so a slow server shows as latency rather than as a lower rate), round-robin over
 * the API Servers, heartbeat at the interval their join answer gives, and leave after --hold. Alongside, the operator
 * view (GET /api/stages) is polled to follow the pool, and M real WHEP viewers may watch and count frames.
 * Everything is bounded by `timeoutMs`: the run always ends by itself.
 */
import { setMaxListeners } from 'node:events';
import { ScalingEventsResponseSchema, StageListResponseSchema, ViewerJoinResponseSchema } from '@stagecast/protocol';
import { closeAgents, request } from './http.js';
import { latencySummary, poolShape, progressLine, promCounter, summarize, type JoinSample, type LoadtestSummary, type PoolSample, type WhepSummary } from './stats.js';
import type { FrameCountingViewer } from './whep-viewer.js';

export interface RunOptions {
  apis: string[];
  /** x-api-key for joins, heartbeats and leaves (the operator's key, or the viewer key). */
  apiKey: string;
  /** x-api-key for the operator view (GET /api/stages); the same as apiKey when not given. */
  operatorKey: string;
  /** Authorization: Bearer for GET /metrics, when the API Server sets METRICS_TOKEN. */
  metricsToken?: string;
  viewers: number;
  ratePerSecond: number;
  holdMs: number;
  leave: boolean;
  whep: number;
  /** Empty active stages the pool should hold to count as caught up. */
  spares: number;
  pollMs: number;
  timeoutMs: number;
  /** How long one request may take before it counts as a network error. */
  requestTimeoutMs: number;
  /** Progress output: a bar on a TTY, a line a second otherwise, nothing when null. */
  progress: NodeJS.WriteStream | null;
}

type Counts = { ok: number; errors: Record<string, number> };
const bump = (c: Counts, status: number) => {
  if (status >= 200 && status < 300) c.ok++;
  else {
    const k = status === 0 ? 'network' : String(status);
    c.errors[k] = (c.errors[k] ?? 0) + 1;
  }
};

export async function runLoadtest(o: RunOptions): Promise<LoadtestSummary> {
  const stop = new AbortController();
  // Every waiting viewer listens on the run's one abort signal.
  setMaxListeners(0, stop.signal);
  const startedAt = Date.now();
  const cpuStart = process.cpuUsage();
  const deadline = setTimeout(() => stop.abort(), o.timeoutMs);
  const timedOut = () => stop.signal.aborted;
  const req = (method: string, url: string, o2: { key?: string; body?: string; headers?: Record<string, string> } = {}) =>
    request(method, url, {
      headers: { ...(o2.key ? { 'x-api-key': o2.key } : {}), ...o2.headers },
      ...(o2.body !== undefined ? { body: o2.body } : {}),
      timeoutMs: o.requestTimeoutMs,
      signal: stop.signal,
    });

  const readPool = async (): Promise<PoolSample> => {
    const res = await req('GET', `${o.apis[0]}/api/stages`, { key: o.operatorKey });
    if (res.status !== 200) throw new Error(`GET /api/stages answered ${res.status}: ${res.text.slice(0, 200)}`);
    const { stages } = StageListResponseSchema.parse(JSON.parse(res.text));
    return { at: Date.now(), stages: stages.map((s) => ({ stageArn: s.stageArn, state: s.state, capacity: s.capacity, viewers: s.viewers, createdAt: Date.parse(s.createdAt) })) };
  };
  /** Summed over the API Servers: joins that waited for a stage, and CPU seconds used; null when unreadable. */
  const readMetrics = async (): Promise<{ waited: number; cpuS: number } | null> => {
    try {
      let waited = 0;
      let cpuS = 0;
      for (const api of o.apis) {
        const res = await req('GET', `${api}/metrics`, o.metricsToken ? { headers: { authorization: `Bearer ${o.metricsToken}` } } : {});
        if (res.status !== 200) return null;
        waited += promCounter(res.text, 'stagecast_joins_total', { result: 'waited' });
        cpuS += promCounter(res.text, 'stagecast_api_process_cpu_seconds_total', {});
      }
      return { waited, cpuS };
    } catch {
      return null;
    }
  };
  /** How long each create of the run took at the provider (scaling events' detail.tookMs); empty if unreadable. */
  const readCreateTimes = async (): Promise<number[]> => {
    try {
      const res = await req('GET', `${o.apis[0]}/api/scaling/events?limit=1000`, { key: o.operatorKey });
      if (res.status !== 200) return [];
      const { events } = ScalingEventsResponseSchema.parse(JSON.parse(res.text));
      return events
        .filter((e) => e.action === 'create' && Date.parse(e.at) >= startedAt)
        .map((e) => (e.detail as { tookMs?: unknown } | undefined)?.tookMs)
        .filter((x): x is number => typeof x === 'number');
    } catch {
      return [];
    }
  };

  const before = await readPool();
  const metricsBefore = await readMetrics();
  const polls: PoolSample[] = [];
  const joins: JoinSample[] = [];
  const heartbeats: Counts = { ok: 0, errors: {} };
  const leaves: Counts = { ok: 0, errors: {} };
  const pending = new Set<Promise<unknown>>();
  const track = <T>(p: Promise<T>) => {
    pending.add(p);
    void p.finally(() => pending.delete(p)).catch(() => undefined);
    return p;
  };

  // ---- the operator view, polled while the run lasts
  let polling = true;
  let lastShape = poolShape(before);
  const poller = (async () => {
    while (polling && !timedOut()) {
      const t = Date.now();
      try {
        const p = await readPool();
        polls.push(p);
        lastShape = poolShape(p);
      } catch {
        // a missed poll leaves a gap; the next one reads the pool again
      }
      await sleep(Math.max(0, o.pollMs - (Date.now() - t)), stop.signal);
    }
  })();

  // ---- one simulated viewer: join, heartbeat every interval until its hold ends, leave
  const viewer = async (i: number, sentAt: number) => {
    const api = o.apis[i % o.apis.length]!;
    const sample: JoinSample = { api, sentAt, answeredAt: 0, status: 0 };
    joins.push(sample);
    let joined;
    try {
      const res = await req('POST', `${api}/api/viewers/join`, { key: o.apiKey, body: JSON.stringify({ userId: `loadtest-${i}` }) });
      sample.answeredAt = Date.now();
      sample.status = res.status;
      if (res.status !== 201) return;
      joined = ViewerJoinResponseSchema.parse(JSON.parse(res.text));
      sample.stageArn = joined.stageArn;
    } catch {
      sample.answeredAt = Date.now();
      return;
    }
    const leaveAt = sample.answeredAt + o.holdMs;
    while (!timedOut()) {
      const next = Date.now() + joined.heartbeatIntervalMs;
      if (next >= leaveAt) break;
      await sleep(next - Date.now(), stop.signal);
      if (timedOut()) break;
      try {
        const res = await req('POST', `${api}/api/viewers/${joined.viewerId}/heartbeat`, { key: o.apiKey, body: '{}' });
        bump(heartbeats, res.status);
      } catch {
        bump(heartbeats, 0);
      }
    }
    await sleep(leaveAt - Date.now(), stop.signal);
    if (!o.leave || timedOut()) return;
    try {
      const res = await req('DELETE', `${api}/api/viewers/${joined.viewerId}`, { key: o.apiKey });
      bump(leaves, res.status);
    } catch {
      bump(leaves, 0);
    }
  };

  // ---- real WHEP viewers: join through the API, play the stage, count frames until the hold ends
  const whep: WhepSummary = { viewers: o.whep, connected: 0, frames: 0, perViewer: [], errors: [] };
  const players: FrameCountingViewer[] = [];
  const whepRun = Promise.all(
    Array.from({ length: o.whep }, async (_, i) => {
      const api = o.apis[i % o.apis.length]!;
      try {
        const res = await req('POST', `${api}/api/viewers/join`, { key: o.apiKey, body: JSON.stringify({ userId: `loadtest-whep-${i}` }) });
        if (res.status !== 201) throw new Error(`join answered ${res.status}`);
        const j = ViewerJoinResponseSchema.parse(JSON.parse(res.text));
        if (j.playback.type !== 'whep') throw new Error(`playback is ${j.playback.type}, not WHEP`);
        // Loaded only when asked for: node-datachannel's native threads are started by the first peer.
        const { FrameCountingViewer } = await import('./whep-viewer.js');
        const v = new FrameCountingViewer(j.playback.url, j.token, `loadtest-whep-${i}`);
        players[i] = v;
        await v.play(10_000);
        const hold = (async () => {
          const until = Date.now() + Math.max(o.holdMs, (o.viewers / o.ratePerSecond) * 1000);
          while (!timedOut() && Date.now() < until) {
            await sleep(Math.min(j.heartbeatIntervalMs, until - Date.now()), stop.signal);
            if (Date.now() < until) await req('POST', `${api}/api/viewers/${j.viewerId}/heartbeat`, { key: o.apiKey, body: '{}' }).catch(() => undefined);
          }
        })();
        await hold;
        await v.stop();
        if (o.leave) await req('DELETE', `${api}/api/viewers/${j.viewerId}`, { key: o.apiKey }).catch(() => undefined);
      } catch (err) {
        whep.errors.push(`viewer ${i}: ${(err as Error).message}`);
      }
    }),
  );

  // ---- progress
  const tty = o.progress?.isTTY === true;
  let lastLine = 0;
  const showProgress = (final = false) => {
    if (!o.progress) return;
    const now = Date.now();
    if (!final && now - lastLine < (tty ? 200 : 1000)) return;
    lastLine = now;
    const lat = joins.filter((j) => j.status !== 0).map((j) => j.answeredAt - j.sentAt);
    const line = progressLine(
      {
        sent: joins.length,
        ok: joins.filter((j) => j.status === 201).length,
        target: o.viewers,
        errors: joins.filter((j) => j.answeredAt && j.status !== 201).length,
        stages: lastShape.stages,
        p99: latencySummary(lat.slice(-2000)).p99,
        elapsedS: (now - startedAt) / 1000,
      },
      tty ? 30 : 0,
    );
    o.progress.write(tty ? `\r\x1b[2K${line}` : `${line}\n`);
  };

  // ---- the schedule: join i is due at t0 + i / rate; a late tick sends every join that is due
  const t0 = Date.now();
  let sent = 0;
  while (sent < o.viewers && !timedOut()) {
    const due = Math.min(o.viewers, Math.floor(((Date.now() - t0) * o.ratePerSecond) / 1000) + 1);
    while (sent < due) {
      track(viewer(sent, t0 + Math.round((sent * 1000) / o.ratePerSecond)));
      sent++;
    }
    showProgress();
    if (sent < o.viewers) await sleep(Math.max(1, t0 + (sent * 1000) / o.ratePerSecond - Date.now()), stop.signal);
  }
  while (pending.size && !timedOut()) {
    showProgress();
    await Promise.race([sleep(tty ? 200 : 1000, stop.signal), Promise.allSettled([...pending])]);
  }
  await Promise.race([whepRun, sleep(o.timeoutMs, stop.signal)]);
  // One more poll after the last leave, so `after` shows the pool as the run left it.
  polling = false;
  await poller;
  if (!timedOut()) {
    try {
      polls.push(await readPool());
    } catch {
      // the summary uses the last poll that worked
    }
  }
  showProgress(true);
  if (o.progress && tty) o.progress.write('\n');
  const metricsAfter = await readMetrics();
  const createMs = await readCreateTimes();
  clearTimeout(deadline);
  closeAgents();
  for (const v of players) await v?.stop();
  if (o.whep > 0) await (await import('@stagecast/rtc')).shutdownRtc();
  whep.perViewer = Array.from({ length: o.whep }, (_, i) => players[i]?.frames ?? 0);
  whep.connected = players.filter((p) => p?.connected).length;
  whep.frames = whep.perViewer.reduce((a, b) => a + b, 0);
  return summarize({
    startedAt,
    endedAt: Date.now(),
    config: { apis: o.apis, viewers: o.viewers, ratePerSecond: o.ratePerSecond, holdS: o.holdMs / 1000, leave: o.leave, whep: o.whep, spares: o.spares },
    joins,
    heartbeats,
    leaves,
    polls,
    before,
    createMs,
    clientCpuPercent: Math.round(((process.cpuUsage(cpuStart).user + process.cpuUsage(cpuStart).system) / 10 / Math.max(1, Date.now() - startedAt)) * 10) / 10,
    serverWaited: metricsBefore && metricsAfter ? metricsAfter.waited - metricsBefore.waited : null,
    serverCpuS: metricsBefore && metricsAfter ? Math.round((metricsAfter.cpuS - metricsBefore.cpuS) * 100) / 100 : null,
    whep,
    timedOut: timedOut(),
  });
}

/** A sleep that ends early when `signal` aborts (never rejects). */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0 || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
