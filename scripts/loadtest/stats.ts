/**
 * stagecast-loadtest's figures as pure functions: samples in, a summary out. The runner (run.ts) measures; this file
 * decides what the numbers mean, so each definition lives in one place and is unit-tested (stats.test.ts).
 */

/** Nearest-rank percentile (p in 0..100) of an ascending array; NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export function latencySummary(samples: readonly number[]): LatencySummary {
  const s = [...samples].sort((a, b) => a - b);
  const r = (x: number) => (Number.isFinite(x) ? Math.round(x * 10) / 10 : NaN);
  return {
    count: s.length,
    p50: r(percentile(s, 50)),
    p90: r(percentile(s, 90)),
    p99: r(percentile(s, 99)),
    max: r(s.length ? s[s.length - 1]! : NaN),
    mean: r(s.length ? s.reduce((a, b) => a + b, 0) / s.length : NaN),
  };
}

/** One answered (or failed) join, as the runner saw it. Times are ms epoch (wall clock, one machine). */
export interface JoinSample {
  api: string;
  /** When the request was sent (its scheduled time: a late send counts against the server, not hidden). */
  sentAt: number;
  /** When the answer was read. */
  answeredAt: number;
  /** HTTP status; 0 = no answer (network error or timeout). */
  status: number;
  stageArn?: string;
}

/** One reading of the operator view (GET /api/stages). */
export interface PoolSample {
  at: number;
  stages: Array<{ stageArn: string; state: 'active' | 'draining'; capacity: number; viewers: number; createdAt: number }>;
}

/** The pool at one instant, reduced to what the summary needs. */
export interface PoolShape {
  stages: number;
  active: number;
  /** Active stages with no seat taken: the warm spares a join can land on without a create. */
  emptyActive: number;
  seats: number;
  capacity: number;
  /** Max over stages of seats − capacity (0 when no stage holds more than it may). */
  overfill: number;
}

export function poolShape(p: PoolSample): PoolShape {
  let emptyActive = 0;
  let active = 0;
  let seats = 0;
  let capacity = 0;
  let overfill = 0;
  for (const s of p.stages) {
    seats += s.viewers;
    capacity += s.capacity;
    overfill = Math.max(overfill, s.viewers - s.capacity);
    if (s.state !== 'active') continue;
    active++;
    if (s.viewers === 0) emptyActive++;
  }
  return { stages: p.stages.length, active, emptyActive, seats, capacity, overfill };
}

/**
 * Pool catch-up, defined on the operator-view polls:
 * - the pool is "caught up" at a poll when it holds at least `spares` empty active stages — every seated viewer has
 *   its stage and a whole spare stage (or more) waits for the next joins;
 * - `catchUpMs`: from the last join answered to the first caught-up poll at or after it (0 when the pool never fell
 *   behind at the end; null when it never caught up before the run ended);
 * - `shortMs`: while joins were being sent, the total time the pool was not caught up (each poll that found it
 *   short counts until the next poll): how long a storm ran ahead of the pool.
 */
export function poolCatchUp(
  polls: readonly PoolSample[],
  window: { firstSentAt: number; lastSentAt: number; lastAnsweredAt: number },
  spares: number,
): { catchUpMs: number | null; shortMs: number } {
  const sorted = [...polls].sort((a, b) => a.at - b.at);
  const ok = (p: PoolSample) => poolShape(p).emptyActive >= spares;
  let shortMs = 0;
  for (let i = 0; i < sorted.length; i++) {
    const p = sorted[i]!;
    if (p.at < window.firstSentAt || p.at > window.lastSentAt || ok(p)) continue;
    const next = Math.min(sorted[i + 1]?.at ?? window.lastSentAt, window.lastSentAt);
    shortMs += Math.max(0, next - p.at);
  }
  // Already caught up at the last poll before the last answer: the pool never fell behind at the end.
  const before = sorted.filter((p) => p.at < window.lastAnsweredAt).at(-1);
  if (before && ok(before)) return { catchUpMs: 0, shortMs };
  const after = sorted.find((p) => p.at >= window.lastAnsweredAt && ok(p));
  const catchUpMs = after ? after.at - window.lastAnsweredAt : null;
  return { catchUpMs, shortMs };
}

/**
 * Joins answered on a stage that did not exist yet when the join was sent (its createdAt, from the provider, is
 * later than the send): the client's estimate of "this viewer waited for a stage to be created". Only an estimate:
 * a join queued on the server may find a stage that landed meanwhile without waiting for it, and a join that waited
 * may be seated on an older stage whose seat was freed. The server's own count (stagecast_joins_total
 * {result="waited"}: the join found no seat at once and waited for the pool to grow) is the exact figure.
 */
export function joinsOnNewerStages(joins: readonly JoinSample[], createdAt: ReadonlyMap<string, number>): number {
  let n = 0;
  for (const j of joins) {
    if (!j.stageArn) continue;
    const c = createdAt.get(j.stageArn);
    if (c !== undefined && c > j.sentAt) n++;
  }
  return n;
}

/** A Prometheus text exposition's counter value for one label set; 0 when absent. */
export function promCounter(text: string, name: string, labels: Record<string, string>): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{') && line !== name && !line.startsWith(name + ' ')) continue;
    const m = /^([^{\s]+)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1]!, x[2]!]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) total += Number(m[4]);
  }
  return total;
}

export interface WhepSummary {
  viewers: number;
  connected: number;
  frames: number;
  /** Frames per viewer, in start order (0 for one that never connected). */
  perViewer: number[];
  errors: string[];
}

export interface LoadtestSummary {
  tool: 'stagecast-loadtest';
  startedAt: string;
  config: { apis: string[]; viewers: number; ratePerSecond: number; holdS: number; leave: boolean; whep: number; spares: number };
  joins: {
    sent: number;
    ok: number;
    errors: Record<string, number>;
    /** Answered joins per second, from the first send to the last answer. */
    perSecond: number;
    /** Send to answer, every answered join (any status). */
    latencyMs: LatencySummary;
    perApi: Array<{ api: string; ok: number; latencyMs: LatencySummary }>;
  };
  heartbeats: { ok: number; errors: Record<string, number> };
  leaves: { ok: number; errors: Record<string, number> };
  stages: { before: number; after: number; created: number; peak: number; createMs: LatencySummary };
  pool: { catchUpMs: number | null; shortMs: number; overfill: number; polls: number };
  /** Joins that waited for a stage to be created: the server's count (null if /metrics could not be read) and the client's estimate. */
  waitedForStage: { server: number | null; clientEstimate: number };
  whep: WhepSummary;
  durationMs: number;
  /** This tool's own CPU use over the run, % of one core (near 100: the client is the limit, not the server). */
  clientCpuPercent: number;
  /** CPU the API Servers used during the run, summed, and per answered join (every request of the run included). */
  serverCpu: { seconds: number | null; msPerJoin: number | null };
  /** True when the run hit its overall time limit (--timeout) and was cut short. */
  timedOut: boolean;
}

export interface SummaryInput {
  startedAt: number;
  endedAt: number;
  config: LoadtestSummary['config'];
  joins: readonly JoinSample[];
  heartbeats: { ok: number; errors: Record<string, number> };
  leaves: { ok: number; errors: Record<string, number> };
  polls: readonly PoolSample[];
  /** The operator view before the first join. */
  before: PoolSample;
  /** This tool's own CPU use over the run, % of one core: near 100 the client, not the server, is the limit. */
  clientCpuPercent: number;
  /** How long each create of the run took (scaling events); empty when unknown. */
  createMs: readonly number[];
  /** Summed over the API Servers: stagecast_joins_total{result="waited"} after minus before; null when unreadable. */
  serverWaited: number | null;
  /** CPU seconds the API Servers used during the run (process_cpu_seconds_total), summed; null when unreadable. */
  serverCpuS: number | null;
  whep: WhepSummary;
  timedOut: boolean;
}

export function summarize(i: SummaryInput): LoadtestSummary {
  const ok = i.joins.filter((j) => j.status === 201);
  const errors: Record<string, number> = {};
  for (const j of i.joins) if (j.status !== 201) errors[j.status === 0 ? 'network' : String(j.status)] = (errors[j.status === 0 ? 'network' : String(j.status)] ?? 0) + 1;
  const answered = i.joins.filter((j) => j.status !== 0);
  const firstSentAt = Math.min(...i.joins.map((j) => j.sentAt));
  const lastSentAt = Math.max(...i.joins.map((j) => j.sentAt));
  const lastAnsweredAt = Math.max(...i.joins.map((j) => j.answeredAt));
  const spanS = i.joins.length ? Math.max(0.001, (lastAnsweredAt - firstSentAt) / 1000) : 1;
  const apis = [...new Set(i.joins.map((j) => j.api))];
  const all = [i.before, ...i.polls];
  const beforeArns = new Set(i.before.stages.map((s) => s.stageArn));
  const createdAt = new Map<string, number>();
  for (const p of all) for (const s of p.stages) createdAt.set(s.stageArn, s.createdAt);
  const last = i.polls.length ? i.polls.reduce((a, b) => (b.at > a.at ? b : a)) : i.before;
  const catchUp = i.joins.length ? poolCatchUp(i.polls, { firstSentAt, lastSentAt, lastAnsweredAt }, i.config.spares) : { catchUpMs: null, shortMs: 0 };
  return {
    tool: 'stagecast-loadtest',
    startedAt: new Date(i.startedAt).toISOString(),
    config: i.config,
    joins: {
      sent: i.joins.length,
      ok: ok.length,
      errors,
      perSecond: Math.round((ok.length / spanS) * 10) / 10,
      latencyMs: latencySummary(answered.map((j) => j.answeredAt - j.sentAt)),
      perApi: apis.map((api) => {
        const mine = answered.filter((j) => j.api === api);
        return { api, ok: mine.filter((j) => j.status === 201).length, latencyMs: latencySummary(mine.map((j) => j.answeredAt - j.sentAt)) };
      }),
    },
    heartbeats: i.heartbeats,
    leaves: i.leaves,
    stages: {
      before: i.before.stages.length,
      after: last.stages.length,
      created: [...createdAt.keys()].filter((a) => !beforeArns.has(a)).length,
      peak: Math.max(...all.map((p) => p.stages.length)),
      createMs: latencySummary(i.createMs),
    },
    pool: { ...catchUp, overfill: Math.max(0, ...all.map((p) => poolShape(p).overfill)), polls: i.polls.length },
    waitedForStage: { server: i.serverWaited, clientEstimate: joinsOnNewerStages(ok, createdAt) },
    whep: i.whep,
    durationMs: i.endedAt - i.startedAt,
    clientCpuPercent: i.clientCpuPercent,
    serverCpu: { seconds: i.serverCpuS, msPerJoin: i.serverCpuS === null || !ok.length ? null : Math.round((i.serverCpuS * 1000 * 100) / ok.length) / 100 },
    timedOut: i.timedOut,
  };
}

const f = (x: number | null, unit = '') => (x === null || Number.isNaN(x) ? '—' : `${x}${unit}`);
const counts = (r: Record<string, number>) => Object.entries(r).map(([k, v]) => `${k}: ${v}`).join(', ') || 'none';

/** The human summary: one aligned two-column table. */
export function summaryTable(s: LoadtestSummary): string {
  const l = s.joins.latencyMs;
  const rows: Array<[string, string]> = [
    ['API Servers', s.config.apis.join(', ')],
    ['viewers (target rate)', `${s.config.viewers} (${s.config.ratePerSecond}/s), hold ${s.config.holdS} s${s.config.leave ? ', then leave' : ''}`],
    ['joins ok / sent', `${s.joins.ok} / ${s.joins.sent}`],
    ['join errors', counts(s.joins.errors)],
    ['joins per second', f(s.joins.perSecond)],
    ['join latency p50 / p90 / p99 / max', `${f(l.p50)} / ${f(l.p90)} / ${f(l.p99)} / ${f(l.max)} ms`],
    ...s.joins.perApi.filter(() => s.joins.perApi.length > 1).map((a): [string, string] => [`  ${a.api}`, `${a.ok} ok, p50 ${f(a.latencyMs.p50)} ms, p99 ${f(a.latencyMs.p99)} ms`]),
    ['stages before / created / after (peak)', `${s.stages.before} / ${s.stages.created} / ${s.stages.after} (${s.stages.peak})`],
    ['stage create time p50 / max', `${f(s.stages.createMs.p50)} / ${f(s.stages.createMs.max)} ms`],
    ['pool catch-up after the last join', f(s.pool.catchUpMs, ' ms')],
    ['pool short of spares during the storm', `${s.pool.shortMs} ms (spares wanted: ${s.config.spares})`],
    ['overfill (max seats − capacity)', String(s.pool.overfill)],
    ['joins that waited for a new stage', `${f(s.waitedForStage.server)} (server) · ${s.waitedForStage.clientEstimate} (client estimate)`],
    ['heartbeats ok / errors', `${s.heartbeats.ok} / ${counts(s.heartbeats.errors)}`],
    ['leaves ok / errors', `${s.leaves.ok} / ${counts(s.leaves.errors)}`],
    ['WHEP viewers connected / frames', `${s.whep.connected}/${s.whep.viewers} / ${s.whep.frames}`],
    ['API Server CPU (per join, all requests)', `${f(s.serverCpu.seconds, ' s')} (${f(s.serverCpu.msPerJoin, ' ms')})`],
    ['duration (client CPU)', `${(s.durationMs / 1000).toFixed(1)} s${s.timedOut ? ' (cut at --timeout)' : ''} (${s.clientCpuPercent} % of a core)`],
  ];
  const w = Math.max(...rows.map((r) => r[0].length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n');
}

/** One progress line: a bar when `width` > 0 (a TTY), else plain text. */
export function progressLine(p: { sent: number; ok: number; target: number; errors: number; stages: number; p99: number; elapsedS: number }, width: number): string {
  const frac = p.target ? Math.min(1, p.sent / p.target) : 1;
  const text = `${p.ok}/${p.target} joined  ${p.errors} errors  ${(p.ok / Math.max(0.001, p.elapsedS)).toFixed(0)}/s  p99 ${Number.isNaN(p.p99) ? '—' : Math.round(p.p99)} ms  ${p.stages} stages  ${p.elapsedS.toFixed(1)} s`;
  if (width <= 0) return text;
  const filled = Math.round(frac * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${text}`;
}
