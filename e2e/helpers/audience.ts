/**
 * Viewers as the fault tests see them: how long each one's picture froze, and how long it took to get a first frame.
 *
 * - freezeOf(viewer, from, to): the longest stretch without a complete video frame inside [from, to] (edges
 *   included, so a viewer that never resumes freezes until `to`), the time to its first frame, frames, rejoins.
 * - WatchViewer: a WHEP viewer that behaves like the /watch page — POST /api/viewers/join, play the stage by WHEP,
 *   heartbeat every `heartbeatIntervalMs` naming the stage it plays; when the seat is gone (heartbeat 404), the peer
 *   leaves 'connected', or the stage's WHEP POST fails, it tears down and joins again after a jittered backoff
 *   (500 ms doubling to 15 s, as watch.ts). Frames of every session count toward one picture.
 *
 * API
 *   const w = await WatchViewer.start(sys, { name })         // joined and playing
 *   w.viewer · w.stageArn · w.rejoins · w.frameTimes · w.firstFrameAt · w.joins ([{ stageArn, at, why }])
 *   await w.stop()
 *   const f = freezeOf(w | whepViewer, from, to)             // { name, longestFreezeMs, firstFrameMs, frames, rejoins }
 *   formatFreezes(figures)                                    // one line per viewer, for t.diagnostic / stdout
 */
import type { ViewerJoinResponse } from '@stagecast/protocol';
import type { StagecastSystem } from './system.js';
import { WhepViewer } from './viewer.js';
import { waitFor } from './wait.js';

export interface FreezeFigures {
  name: string;
  /** The longest time without a complete frame inside the window (ms). */
  longestFreezeMs: number;
  /** When the longest freeze began (ms epoch). */
  freezeFrom: number;
  /** First frame − start of this viewer (its first WHEP POST), ms. */
  firstFrameMs: number;
  frames: number;
  rejoins: number;
}

interface FrameSource {
  readonly frameTimes: readonly number[];
  readonly firstFrameAt: number;
}

/** The longest gap in `times` (sorted ms epochs) inside [from, to], edges included, and where it began. */
export function longestGap(times: readonly number[], from: number, to: number): { ms: number; at: number } {
  let prev = from;
  let max = 0;
  let at = from;
  for (const t of times) {
    if (t <= from) continue;
    if (t > to) break;
    if (t - prev > max) {
      max = t - prev;
      at = prev;
    }
    prev = t;
  }
  if (to - prev > max) return { ms: to - prev, at: prev };
  return { ms: max, at };
}

export function freezeOf(v: WhepViewer | WatchViewer, from: number, to: number): FreezeFigures {
  const src: FrameSource = v;
  const g = longestGap(src.frameTimes, from, to);
  const startedAt = v instanceof WatchViewer ? v.startedAt : v.answeredAt;
  return {
    name: v instanceof WatchViewer ? v.name : (v.o.name ?? v.o.url),
    longestFreezeMs: Math.round(g.ms),
    freezeFrom: g.at,
    firstFrameMs: Math.round(src.firstFrameAt - startedAt),
    frames: src.frameTimes.filter((t) => t > from && t <= to).length,
    rejoins: v instanceof WatchViewer ? v.rejoins : 0,
  };
}

export function formatFreezes(fs: readonly FreezeFigures[]): string {
  return fs.map((f) => `${f.name}: longest freeze ${f.longestFreezeMs} ms, first frame after ${f.firstFrameMs} ms, ${f.frames} frames in the window, ${f.rejoins} rejoins`).join('; ');
}

export interface WatchViewerOptions {
  name: string;
  /** Viewer heartbeat interval; default: what the join answered. */
  heartbeatIntervalMs?: number;
}

export class WatchViewer implements FrameSource {
  viewer: ViewerJoinResponse | undefined;
  whep: WhepViewer | undefined;
  rejoins = 0;
  readonly joins: { stageArn: string; at: number; why: string }[] = [];
  /** Arrival times of every complete frame of every session. */
  readonly frameTimes: number[] = [];
  firstFrameAt = NaN;
  readonly startedAt = Date.now();
  private counted = 0;
  private failures = 0;
  private hb: NodeJS.Timeout | undefined;
  private poll: NodeJS.Timeout;
  private retry: NodeJS.Timeout | undefined;
  private stopped = false;
  private generation = 0;

  private constructor(
    private readonly sys: StagecastSystem,
    readonly o: WatchViewerOptions,
  ) {
    // Frames of the current session are copied into one timeline (the WhepViewer keeps its own).
    this.poll = setInterval(() => this.collect(), 20);
  }

  get name(): string {
    return this.o.name;
  }

  get stageArn(): string | undefined {
    return this.viewer?.stageArn;
  }

  static async start(sys: StagecastSystem, o: WatchViewerOptions, timeoutMs = 15_000): Promise<WatchViewer> {
    const w = new WatchViewer(sys, o);
    void w.begin('start');
    try {
      await waitFor(() => w.whep && w.frameTimes.length > 0, `${o.name} playing`, timeoutMs);
    } catch (err) {
      await w.stop();
      throw err;
    }
    return w;
  }

  private collect(): void {
    const v = this.whep;
    if (!v) return;
    for (; this.counted < v.frameTimes.length; this.counted++) {
      const t = v.frameTimes[this.counted]!;
      this.frameTimes.push(t);
      if (this.firstFrameAt !== this.firstFrameAt) this.firstFrameAt = t;
    }
    // The peer's state callback belongs to the WhepViewer (node-datachannel keeps one per event): poll it.
    if (!this.stopped && v.leftConnected()) void this.rejoin(`peer ${v.state}`, this.generation);
  }

  private async begin(why: string): Promise<void> {
    const gen = ++this.generation;
    let viewer: ViewerJoinResponse;
    try {
      viewer = await this.sys.join(this.o.name);
    } catch {
      return this.rejoin('join failed', gen);
    }
    if (gen !== this.generation || this.stopped) {
      await this.sys.leave(viewer.viewerId).catch(() => undefined);
      return;
    }
    this.viewer = viewer;
    this.joins.push({ stageArn: viewer.stageArn, at: Date.now(), why });
    const every = this.o.heartbeatIntervalMs ?? viewer.heartbeatIntervalMs;
    this.hb = setInterval(() => void this.heartbeat(viewer, gen), every);
    try {
      if (viewer.playback.type !== 'whep') throw new Error(`playback ${viewer.playback.type}, not WHEP`);
      const v = await WhepViewer.play({ url: viewer.playback.url, token: viewer.token, name: `${this.o.name}#${this.joins.length}` });
      if (gen !== this.generation || this.stopped) {
        await v.stop();
        return;
      }
      this.whep = v;
      this.counted = 0;
      this.failures = 0;
    } catch {
      return this.rejoin('play failed', gen);
    }
  }

  private async heartbeat(viewer: ViewerJoinResponse, gen: number): Promise<void> {
    try {
      const r = await this.sys.heartbeat(viewer.viewerId, viewer.stageArn);
      if (gen !== this.generation) return;
      if (r.status === 404) return this.rejoin('seat lost', gen);
      // Consolidation's `move` is not followed (the fault tests turn it off): a different seat means join again.
      if (r.status === 200 && (r.body as { stageArn?: string }).stageArn !== viewer.stageArn) return this.rejoin('moved', gen);
    } catch {
      /* the API Server did not answer: try again at the next beat */
    }
  }

  private async rejoin(why: string, gen: number): Promise<void> {
    if (this.stopped || gen !== this.generation) return;
    this.generation++;
    this.failures++;
    clearInterval(this.hb);
    this.collect();
    const old = this.whep;
    const oldViewer = this.viewer;
    this.whep = undefined;
    void old?.stop();
    if (oldViewer) void this.sys.leave(oldViewer.viewerId).catch(() => undefined);
    const delay = Math.min(15_000, 500 * 2 ** Math.min(this.failures - 1, 5)) * (0.75 + Math.random() * 0.5);
    const next = this.generation;
    clearTimeout(this.retry);
    this.retry = setTimeout(() => {
      if (next !== this.generation || this.stopped) return;
      this.rejoins++;
      void this.begin(why);
    }, delay);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.generation++;
    clearInterval(this.hb);
    clearInterval(this.poll);
    clearTimeout(this.retry);
    this.collect();
    await this.whep?.stop();
    if (this.viewer) await this.sys.leave(this.viewer.viewerId).catch(() => undefined);
  }
}
