/**
 * The parent's view of the receivers: one or more sinks workers (at most `perWorker` sinks each), joins spread
 * over them, and measuring windows opened and closed on all of them with their results merged.
 */
import { join } from 'node:path';
import { cpuMs } from './proc.js';
import { spawnWorker, type Worker } from './ipc.js';
import { mergeSparse, percentile } from './receiver.js';
import type { JoinResult, JoinTarget } from './sinks-worker.js';

const SINKS_WORKER = join(import.meta.dirname, 'sinks-worker.ts');

export interface WindowPart {
  sinks: number;
  packets: number;
  lost: number;
  worstLost: number;
  minPackets: number;
  latency: Array<[number, number]>;
  latencyCount: number;
  latencyMaxMs: number;
  keyframes: Array<[number, [number, number]]>;
  cpuMs: number;
}

export interface WindowResult {
  sinks: number;
  packets: number;
  lost: number;
  lossPct: number;
  worstSinkLost: number;
  minPacketsPerSink: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  latencyMaxMs: number;
  latencySamples: number;
  /** Keyframes whose last packet reached every sink: delay to the LAST sink, p50 and max (ms). */
  keyframesToAll: number;
  keyframesMissed: number;
  keyframeLastSinkP50Ms: number;
  keyframeLastSinkMaxMs: number;
  /** CPU of the sinks workers (ms over the window), to see if they were the bottleneck. */
  sinksCpuMs: number;
}

export class SinkPool {
  readonly workers: Array<{ w: Worker; count: number }> = [];
  constructor(private readonly perWorker: number) {}

  get size(): number {
    return this.workers.reduce((n, x) => n + x.count, 0);
  }

  private async workerWithRoom(): Promise<{ w: Worker; count: number }> {
    const free = this.workers.find((x) => x.count < this.perWorker);
    if (free) return free;
    const w = await spawnWorker(SINKS_WORKER);
    const entry = { w, count: 0 };
    this.workers.push(entry);
    return entry;
  }

  /** A worker hosting a direct WHIP receiver (the baseline, no router); returns its WHIP endpoint URL. */
  async directReceiver(): Promise<string> {
    const w = await spawnWorker(SINKS_WORKER);
    this.workers.push({ w, count: 1 });
    return w.call<string>('whipListen');
  }

  /** Joins every target (spread over workers); throws naming the failures if any. */
  async join(targets: JoinTarget[], opts: { probe?: boolean; concurrency?: number } = {}): Promise<Array<JoinResult & { worker: number }>> {
    const batches: Array<Promise<Array<JoinResult & { worker: number }>>> = [];
    let i = 0;
    while (i < targets.length) {
      const entry = await this.workerWithRoom();
      const take = opts.probe ? targets.length - i : Math.min(this.perWorker - entry.count, targets.length - i);
      const chunk = targets.slice(i, i + take);
      i += take;
      if (!opts.probe) entry.count += chunk.length;
      const idx = this.workers.indexOf(entry);
      batches.push(
        entry.w
          .call<JoinResult[]>('join', { targets: chunk, probe: opts.probe ?? false, concurrency: opts.concurrency ?? 6 }, 180_000)
          .then((rs) => rs.map((r) => ({ ...r, worker: idx }))),
      );
    }
    const results = (await Promise.all(batches)).flat();
    const failed = results.filter((r) => !r.ok);
    if (failed.length) throw new Error(`${failed.length} of ${results.length} sinks failed to join: ${JSON.stringify(failed.slice(0, 3))}`);
    return results;
  }

  async leave(results: Array<{ id: number; worker: number }>): Promise<void> {
    await Promise.all(this.workers.map((x, i) => x.w.call('leave', { ids: results.filter((r) => r.worker === i).map((r) => r.id) })));
  }

  /** Every sink has received at least `minPackets` RTP packets. */
  async allReceiving(minPackets: number): Promise<boolean> {
    const parts = await Promise.all(this.workers.map((x) => x.w.call<{ live: number; total: number }>('live', { minPackets })));
    return parts.every((p) => p.live === p.total);
  }

  async windowStart(): Promise<void> {
    await Promise.all(this.workers.map((x) => x.w.call('windowStart')));
  }

  async windowEnd(): Promise<WindowResult> {
    return mergeWindow(await this.windowParts());
  }

  /** Each worker's share of the window, to merge with another pool's (mergeWindow). */
  windowParts(): Promise<WindowPart[]> {
    return Promise.all(this.workers.map((x) => x.w.call<WindowPart>('windowEnd')));
  }

  /** CPU (ms) of every sinks worker, from /proc. */
  cpuMs(): number {
    return this.workers.reduce((n, x) => n + cpuMs(x.w.pid), 0);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((x) => x.w.stop()));
    this.workers.length = 0;
  }
}

/** One window over the parts of every worker (of one pool or several). */
export function mergeWindow(parts: WindowPart[]): WindowResult {
  const sinks = parts.reduce((n, p) => n + p.sinks, 0);
  const packets = parts.reduce((n, p) => n + p.packets, 0);
  const lost = parts.reduce((n, p) => n + p.lost, 0);
  const lat = mergeSparse(parts.map((p) => p.latency));
  // A keyframe's delay to the last sink: the max over workers, counted only if every sink got its last packet.
  const kf = new Map<number, [number, number]>();
  for (const p of parts)
    for (const [idx, [d, c]] of p.keyframes) {
      const e = kf.get(idx);
      if (e) {
        e[0] = Math.max(e[0], d);
        e[1] += c;
      } else kf.set(idx, [d, c]);
    }
  const complete = [...kf.values()].filter(([, c]) => c >= sinks).map(([d]) => d).sort((a, b) => a - b);
  return {
    sinks,
    packets,
    lost,
    lossPct: packets + lost === 0 ? 0 : round((100 * lost) / (packets + lost), 4),
    worstSinkLost: Math.max(0, ...parts.map((p) => p.worstLost)),
    minPacketsPerSink: Math.min(...parts.map((p) => p.minPackets)),
    latencyP50Ms: percentile(lat, 50),
    latencyP99Ms: percentile(lat, 99),
    latencyMaxMs: round(Math.max(0, ...parts.map((p) => p.latencyMaxMs)), 3),
    latencySamples: parts.reduce((n, p) => n + p.latencyCount, 0),
    keyframesToAll: complete.length,
    keyframesMissed: kf.size - complete.length,
    keyframeLastSinkP50Ms: complete.length ? round(complete[Math.floor((complete.length - 1) / 2)]!, 3) : NaN,
    keyframeLastSinkMaxMs: complete.length ? round(complete[complete.length - 1]!, 3) : NaN,
    sinksCpuMs: round(parts.reduce((n, p) => n + p.cpuMs, 0), 1),
  };
}

export const round = (x: number, digits = 2): number => {
  const k = 10 ** digits;
  return Math.round(x * k) / k;
};

/** Least-squares slope of y over x. */
export function slope(points: Array<[number, number]>): number {
  const n = points.length;
  if (n < 2) return NaN;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? NaN : num / den;
}

/** A fixed-width text table. */
export function table(headers: string[], rows: Array<Array<string | number>>): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => (typeof c === 'number' ? (Number.isNaN(c) ? '-' : String(c)) : c)))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => String(r[i] ?? '').length)));
  const line = (r: Array<string | number>) => r.map((c, i) => String(c).padStart(widths[i]!)).join(' | ');
  return [line(cells[0]!), widths.map((w) => '-'.repeat(w)).join('-|-'), ...cells.slice(1).map(line)].join('\n');
}
