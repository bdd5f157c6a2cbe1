/**
 * The cost meter: participant-time per stage — every seated viewer, plus each Media Server leg connected to the
 * stage (IVS bills the publisher like any participant) — written to the store by the minute, so the bill survives
 * restarts. Reports participant-hours and the estimated bill over any window, and exports live figures to /metrics.
 */
import type { StageArn } from '@stagecast/protocol';
import { Counter, Gauge } from 'prom-client';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { Store, UsageSample } from '../store/store.js';

const HOUR_MS = 3_600_000;
const MINUTE_MS = 60_000;
const MAX_POINTS = 240;

export interface CostMeterConfig {
  pricePerParticipantHour: number;
  tickMs: number;
  maxGapMs: number;
}

export interface UsageTotals {
  viewerHours: number;
  publisherHours: number;
  participantHours: number;
  estimatedCost: number;
}

export interface CostReport {
  from: number;
  to: number;
  pricePerParticipantHour: number;
  meteredUntil: number | null;
  totals: UsageTotals & { participantMinutes: number };
  stages: Array<UsageTotals & { stageArn: StageArn }>;
  stepMinutes: number;
  series: Array<{ at: number; viewers: number; publishers: number }>;
  live: LiveUsage;
}

export interface LiveUsage {
  viewers: number;
  publishers: number;
  participants: number;
  costPerHour: number;
}

export class CostMeter {
  private readonly log: Logger;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  /** The pool as sampled at `since`: it is what is billed until the next tick. */
  private held: UsageSample[] = [];
  private since = 0;
  /** False until the meter has resumed from the store's meteredUntil (at start, after a failure, on gaining the lease). */
  private resumed = false;
  private ticking: Promise<void> | undefined;
  private readonly seconds: Counter<'kind'>;

  constructor(
    private readonly d: {
      store: Store;
      metrics: Metrics;
      log: Logger;
      config: CostMeterConfig;
      /** With several API Servers, only the scaler lease holder meters (usage would be counted once per server). */
      lease?: { readonly held: boolean };
      now?: () => number;
    },
  ) {
    this.log = d.log.child({ component: 'cost' });
    this.now = d.now ?? Date.now;
    const registers = [d.metrics.registry];
    this.seconds = new Counter({
      name: 'stagecast_participant_seconds_total',
      help: 'Participant-seconds metered by this process (kind: viewer, publisher); IVS bills them by the hour',
      labelNames: ['kind'],
      registers,
    });
    const meter = this;
    new Gauge({
      name: 'stagecast_participants',
      help: 'Participants billed right now (kind: viewer = seats taken, publisher = connected Media Server legs)',
      labelNames: ['kind'],
      registers,
      async collect() {
        const l = await meter.live().catch(() => undefined); // store away: the last values stay
        if (!l) return;
        this.set({ kind: 'viewer' }, l.viewers);
        this.set({ kind: 'publisher' }, l.publishers);
      },
    });
    new Gauge({
      name: 'stagecast_estimated_cost_per_hour',
      help: 'Estimated IVS bill per hour at the current participant count (USD, IVS_PRICE_PER_PARTICIPANT_HOUR)',
      registers,
      async collect() {
        const l = await meter.live().catch(() => undefined);
        if (l) this.set(l.costPerHour);
      },
    });
  }

  get pricePerParticipantHour(): number {
    return this.d.config.pricePerParticipantHour;
  }

  /** Resumes from where the store says metering stopped, then meters every tickMs. */
  async start(): Promise<void> {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tickQuietly(), this.d.config.tickMs);
    await this.tickQuietly();
  }

  /** Meters up to now and stops. */
  async stop(): Promise<void> {
    if (!this.timer) return;
    clearInterval(this.timer);
    this.timer = undefined;
    await this.ticking;
    try {
      if (this.resumed) await this.tick();
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'cost.final_tick_failed');
    }
  }

  private async tickQuietly(): Promise<void> {
    if (this.ticking) return;
    this.ticking = this.tick()
      .catch((err: Error) => {
        // The store is away (Redis): resume from its meteredUntil when it answers again.
        this.resumed = false;
        this.log.warn({ err: err.message }, 'cost.tick_failed');
      })
      .finally(() => {
        this.ticking = undefined;
      });
    await this.ticking;
  }

  /**
   * Bills the interval since the last tick with the pool held during it, then samples the pool again. The first
   * tick (and the first after the lease came back, or after the store failed) resumes from the store's meteredUntil.
   */
  async tick(): Promise<void> {
    if (this.d.lease && !this.d.lease.held) {
      this.resumed = false;
      return;
    }
    const now = this.now();
    if (!this.resumed) {
      const until = await this.d.store.usageMeteredUntil();
      this.held = await this.sample();
      if (until !== undefined && until < now) {
        const gap = now - until;
        if (gap <= this.d.config.maxGapMs) await this.accrue(until, now);
        else this.log.warn({ gapMs: gap, from: new Date(until).toISOString() }, 'cost.gap_not_metered');
      }
      this.since = now;
      this.resumed = true;
      return;
    }
    if (now > this.since) await this.accrue(this.since, now);
    this.since = now;
    this.held = await this.sample();
  }

  private async accrue(from: number, to: number): Promise<void> {
    await this.d.store.accrueUsage(from, to, this.held);
    const secs = (to - from) / 1000;
    let v = 0;
    let p = 0;
    for (const s of this.held) {
      v += s.viewers;
      p += s.publishers;
    }
    if (v) this.seconds.inc({ kind: 'viewer' }, v * secs);
    if (p) this.seconds.inc({ kind: 'publisher' }, p * secs);
  }

  /** Participants per stage now: seats taken, and legs in state connected reported by online Media Servers. */
  async sample(): Promise<UsageSample[]> {
    const legs = new Map<StageArn, number>();
    for (const m of await this.d.store.listMediaServers()) {
      if (m.state !== 'online') continue;
      for (const l of m.legs) if (l.state === 'connected') legs.set(l.stageArn, (legs.get(l.stageArn) ?? 0) + 1);
    }
    return (await this.d.store.listStages()).map((s) => ({ stageArn: s.arn, viewers: s.viewers, publishers: legs.get(s.arn) ?? 0 }));
  }

  async live(): Promise<LiveUsage> {
    let viewers = 0;
    let publishers = 0;
    for (const s of await this.sample()) {
      viewers += s.viewers;
      publishers += s.publishers;
    }
    const participants = viewers + publishers;
    return { viewers, publishers, participants, costPerHour: participants * this.d.config.pricePerParticipantHour };
  }

  /** Participant-hours and the estimated bill over [from, to), by stage and as a series. */
  async report(from: number, to: number, stepMinutes?: number): Promise<CostReport> {
    const price = this.d.config.pricePerParticipantHour;
    const buckets = await this.d.store.listUsage(from, to);
    const step = stepMinutes ?? Math.max(1, Math.ceil((to - from) / MINUTE_MS / MAX_POINTS));
    const stepMs = step * MINUTE_MS;
    const totals = (viewerMs: number, publisherMs: number): UsageTotals => {
      const participantHours = (viewerMs + publisherMs) / HOUR_MS;
      return { viewerHours: viewerMs / HOUR_MS, publisherHours: publisherMs / HOUR_MS, participantHours, estimatedCost: participantHours * price };
    };
    const perStage = new Map<StageArn, { v: number; p: number }>();
    const perStep = new Map<number, { v: number; p: number }>();
    let v = 0;
    let p = 0;
    const origin = Math.floor(from / MINUTE_MS) * MINUTE_MS;
    for (const b of buckets) {
      v += b.viewerMs;
      p += b.publisherMs;
      const s = perStage.get(b.stageArn) ?? { v: 0, p: 0 };
      s.v += b.viewerMs;
      s.p += b.publisherMs;
      perStage.set(b.stageArn, s);
      const at = origin + Math.floor((b.minute - origin) / stepMs) * stepMs;
      const t = perStep.get(at) ?? { v: 0, p: 0 };
      t.v += b.viewerMs;
      t.p += b.publisherMs;
      perStep.set(at, t);
    }
    const until = await this.d.store.usageMeteredUntil();
    return {
      from,
      to,
      pricePerParticipantHour: price,
      meteredUntil: until ?? null,
      totals: { ...totals(v, p), participantMinutes: (v + p) / MINUTE_MS },
      stages: [...perStage]
        .map(([stageArn, s]) => ({ stageArn, ...totals(s.v, s.p) }))
        .sort((a, b) => b.participantHours - a.participantHours || (a.stageArn < b.stageArn ? -1 : 1)),
      stepMinutes: step,
      series: [...perStep].sort((a, b) => a[0] - b[0]).map(([at, t]) => ({ at, viewers: t.v / stepMs, publishers: t.p / stepMs })),
      live: await this.live(),
    };
  }
}
