/**
 * Grows and shrinks the stage pool. Runs planScaling on a timer and on demand, applies its actions through the
 * (paced) provider, records them, and announces them to the Media Servers in the order they happen.
 */
import { randomBytes } from 'node:crypto';
import type { StageArn } from '@stagecast/protocol';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { CREATED_AT_TAG, POOL_TAG, type StageProvider } from '../providers/provider.js';
import { LocalLease, type ScalerLease } from '../store/lease.js';
import type { Store } from '../store/store.js';
import type { EventBus } from './EventBus.js';
import { JoinRate, SeatGrowth } from './JoinRate.js';
import { planScaling, type PlanConfig } from './planning.js';
import { reconcile } from './reconcile.js';

export interface ScalingConfig extends PlanConfig {
  tickMs: number;
  joinWaitMs: number;
  reconcileIntervalMs: number;
  poolId: string;
}

export interface ScalingDeps {
  store: Store;
  provider: StageProvider;
  bus: EventBus;
  log: Logger;
  metrics: Metrics;
  config: ScalingConfig;
  /** Several API Servers: only the holder creates, deletes and reconciles (default: always held, one node). */
  lease?: ScalerLease;
  /** Several API Servers: joins waiting on the others, reported and summed (the holder plans for them too). */
  waitingJoins?: { report(n: number): Promise<void>; elsewhere(): Promise<number> };
  now?: () => number;
}

/** After taking the lease over, the provider is listed again this long after the first reconciliation. */
const TAKEOVER_RECHECK_MS = 30_000;

interface Waiter {
  attempt: () => Promise<unknown>;
  resolve: (v: unknown) => void;
  /** A seat that came after the wait timed out: given back. */
  discard: ((v: unknown) => void) | undefined;
  timer: NodeJS.Timeout;
  done: boolean;
}

export class StageAutoScalingService {
  private readonly store: Store;
  private readonly provider: StageProvider;
  private readonly bus: EventBus;
  private readonly log: Logger;
  private readonly metrics: Metrics;
  private readonly cfg: ScalingConfig;
  private readonly now: () => number;
  private readonly lease: ScalerLease;
  private readonly sharedWaiting: ScalingDeps['waitingJoins'];

  private creating = 0;
  private readonly deleting = new Set<StageArn>();
  private readonly inflight = new Set<Promise<void>>();
  private waiters: Waiter[] = [];
  private timer: NodeJS.Timeout | undefined;
  private reconcileTimer: NodeJS.Timeout | undefined;
  private running = false;
  private reconciled = false;
  private reconciling: Promise<void> | undefined;
  /** A periodic reconcile waits for the provider calls in flight; no new action starts meanwhile. */
  private reconcileWanted = false;
  /** Seats given lately (predictive spares), and when a join last ran the planner. */
  private readonly joinRate = new JoinRate();
  private lastJoinPlanAt = 0;
  /** Seats taken in the whole pool, as read by each plan: the join rate of every API Server together. */
  private readonly seatGrowth = new SeatGrowth();
  /** plan() runs one pass at a time; a call during a pass asks for one more. */
  private planning: Promise<void> | undefined;
  private planAgain = false;
  private draining: Promise<void> | undefined;
  private drainAgain = false;
  private unwatchLease: (() => void) | undefined;
  private recheckTimer: NodeJS.Timeout | undefined;

  constructor(d: ScalingDeps) {
    this.store = d.store;
    this.provider = d.provider;
    this.bus = d.bus;
    this.log = d.log.child({ component: 'scaling' });
    this.metrics = d.metrics;
    this.cfg = d.config;
    this.now = d.now ?? Date.now;
    this.lease = d.lease ?? new LocalLease();
    this.sharedWaiting = d.waitingJoins;
  }

  /**
   * Reconciles with the provider (retried on each tick until it succeeds), then keeps the pool planned. With several
   * API Servers only the scaler lease holder reconciles, creates and deletes; every one seats its own waiting joins.
   */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.unwatchLease = this.lease.onChange((held) => {
      // A new holder reconciles first: the previous one may have died between a create and its record. A create
      // it had in flight may even land at the provider after that first listing: a second one follows a while
      // later (TAKEOVER_RECHECK_MS, or the periodic interval if shorter), so such a stage is adopted, not leaked.
      this.reconciled = false;
      this.log.info({ held }, held ? 'scaler.lease_acquired' : 'scaler.lease_lost');
      clearTimeout(this.recheckTimer);
      if (!held) return;
      this.recheckTimer = setTimeout(() => void this.reconcileNow(), Math.min(TAKEOVER_RECHECK_MS, this.cfg.reconcileIntervalMs));
      void this.plan();
    });
    if (this.lease.held) await this.ensureReconciled();
    this.timer = setInterval(() => void this.plan(), this.cfg.tickMs);
    this.reconcileTimer = setInterval(() => void this.reconcileNow(), this.cfg.reconcileIntervalMs);
    void this.plan();
  }

  /**
   * Reconciles again while running: a create that timed out at our end may still have made the stage at the
   * provider, and stages cost money. Never while provider calls are in flight, so an answer that is on its way is
   * never mistaken for an orphan: it is then deferred — plan() starts no new action and runs it once they have
   * landed, so steady scaling cannot starve it. A planning pass launches nothing while it runs.
   */
  reconcileNow(): Promise<void> {
    if (!this.running || !this.reconciled || !this.lease.held || this.reconciling) return Promise.resolve();
    if (this.creating > 0 || this.deleting.size > 0) {
      this.reconcileWanted = true;
      return Promise.resolve();
    }
    this.reconcileWanted = false;
    // Planning was held while it ran: catch up once it is over.
    return this.runReconcile().then(() => this.plan());
  }

  private reconcileDeps() {
    return {
      store: this.store,
      provider: this.provider,
      bus: this.bus,
      log: this.log,
      metrics: this.metrics,
      capacity: this.cfg.capacity,
      now: this.now,
    };
  }

  /** Stops planning, refuses waiting joins, and waits for provider calls in flight to be recorded. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.unwatchLease?.();
    clearTimeout(this.recheckTimer);
    clearInterval(this.timer);
    clearInterval(this.reconcileTimer);
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.done = true;
      w.resolve(undefined);
    }
    await this.planning;
    await this.reconciling;
    while (this.inflight.size) await Promise.allSettled([...this.inflight]);
  }

  /** Whether this API Server runs the pool (holds the scaler lease; always so on one node). */
  get isLeader(): boolean {
    return this.lease.held;
  }
  /** Reconciled with the provider — the lease holder's job: another API Server counts as reconciled. */
  get isReconciled(): boolean {
    return this.reconciled || !this.lease.held;
  }
  get waitingJoins(): number {
    return this.waiters.length;
  }
  get creatingCount(): number {
    return this.creating;
  }

  /** A fixed pool (STAGE_PROVIDER=whip) is only reconciled: its stages are adopted, never created or deleted. */
  get fixedPool(): boolean {
    return this.provider.fixedPool === true;
  }

  /** Whether the pool may still grow (a join with no seat is worth waiting for). */
  async canGrow(): Promise<boolean> {
    if (this.fixedPool) return false;
    return this.creating > 0 || (await this.store.listStages()).length < this.cfg.maxStages;
  }

  /**
   * Tries `attempt` now; if it finds no seat, waits (up to joinWaitMs) for the pool to grow, retrying as stages
   * land or seats free up, in arrival order. Resolves undefined when no seat came in time; a seat found by a retry
   * that was on its way when the wait ended goes to `discard`.
   */
  async waitForSeat<T>(attempt: () => Promise<T | undefined>, discard?: (late: T) => void): Promise<T | undefined> {
    const got = await attempt();
    if (got !== undefined || !this.running) return got;
    return new Promise<T | undefined>((resolve) => {
      const w: Waiter = {
        attempt,
        resolve: resolve as (v: unknown) => void,
        discard: discard as ((v: unknown) => void) | undefined,
        done: false,
        timer: setTimeout(() => {
          w.done = true;
          this.waiters = this.waiters.filter((x) => x !== w);
          resolve(undefined);
        }, this.cfg.joinWaitMs),
      };
      this.waiters.push(w);
      void this.plan();
    });
  }

  /**
   * A viewer was seated. With predictive spares on, the planner runs at most every 100 ms during a storm (the
   * 1 s tick is too slow when a stage fills in 50 ms), so creates start while seats are still free.
   */
  noteJoin(): void {
    const now = this.now();
    this.joinRate.note(now);
    if (!this.cfg.spareLeadMs || now - this.lastJoinPlanAt < 100) return;
    this.lastJoinPlanAt = now;
    void this.plan();
  }

  /** Joins per second lately (predictive spares' input; the dashboard may show it). */
  get recentJoinRate(): number {
    return this.joinRate.perSecond(this.now());
  }

  /**
   * Seats waiting joins, oldest first, while seats are available. Call when a stage lands or a seat is freed. One
   * pass at a time (a call meanwhile asks for another); a failing store ends the pass (the next tick retries).
   */
  drainWaiters(): Promise<void> {
    if (this.draining) {
      this.drainAgain = true;
      return this.draining;
    }
    const run = (async () => {
      do {
        this.drainAgain = false;
        while (this.waiters.length) {
          const w = this.waiters[0]!;
          let got: unknown;
          try {
            got = await w.attempt();
          } catch (err) {
            this.log.warn({ err: (err as Error).message }, 'scaling.seat_attempt_failed');
            return;
          }
          if (got === undefined) break;
          if (w.done) {
            w.discard?.(got);
            continue;
          }
          w.done = true;
          this.waiters = this.waiters.filter((x) => x !== w);
          clearTimeout(w.timer);
          w.resolve(got);
        }
      } while (this.drainAgain && this.waiters.length);
    })().finally(() => {
      this.draining = undefined;
    });
    this.draining = run;
    return run;
  }

  /**
   * Runs the planner now (one pass at a time: a call during a pass runs one more after it). No create or delete
   * starts while a reconciliation runs (its listing would miss or mis-adopt them). Never rejects: a store or provider
   * that fails is logged and the next tick tries again.
   */
  plan(): Promise<void> {
    if (!this.running) return Promise.resolve();
    if (this.planning) {
      this.planAgain = true;
      return this.planning;
    }
    const run = (async () => {
      do {
        this.planAgain = false;
        try {
          await this.planOnce();
        } catch (err) {
          this.log.warn({ err: (err as Error).message }, 'scaling.plan_failed');
        }
      } while (this.planAgain && this.running);
    })().finally(() => {
      this.planning = undefined;
    });
    this.planning = run;
    return run;
  }

  private async planOnce(): Promise<void> {
    await this.drainWaiters();
    await this.sharedWaiting?.report(this.waiters.length).catch(() => undefined);
    if (!this.running || !this.lease.held) return;
    if (!this.reconciled) {
      // Never while provider calls are in flight (after the lease came back, ours may still be).
      if (this.creating === 0 && this.deleting.size === 0) void this.ensureReconciled().then(() => (this.reconciled ? this.plan() : undefined));
      return;
    }
    if (this.fixedPool || this.reconciling) return;
    if (this.reconcileWanted) {
      void this.reconcileNow(); // deferred until the calls in flight have landed: no new action before it
      return;
    }
    // Read `creating` before the pool: a create that lands meanwhile is then counted twice (a create less now,
    // planned on the next pass), never not at all (a stage too many).
    const creating = this.creating;
    const waitingElsewhere = this.sharedWaiting ? await this.sharedWaiting.elsewhere().catch(() => 0) : 0;
    // A stage that viewers are still moving out of (consolidation) is not empty yet: they play it until they switch.
    const movingOut = new Set((await this.store.listPendingMoves()).map((m) => m.from));
    const stages = (await this.store.listStages()).map((s) => (movingOut.has(s.arn) ? { ...s, emptySince: null } : s));
    if (!this.running || !this.lease.held || this.reconciling || this.reconcileWanted) return;
    // A draining stage with no delete in flight is a delete that failed or was cut by a crash: finish it.
    for (const s of stages) if (s.state === 'draining' && !this.deleting.has(s.arn)) this.launchDelete(s.arn, 'finish drain');
    const now = this.now();
    // Our own joins, or the pool's seat growth (every API Server's joins), whichever is higher.
    const growth = this.seatGrowth.note(now, stages.reduce((n, s) => n + s.viewers, 0));
    const joinRatePerS = this.cfg.spareLeadMs ? Math.max(this.joinRate.perSecond(now), growth) : 0;
    this.metrics.joinRate.set(Math.round(joinRatePerS * 10) / 10);
    const actions = planScaling({ stages, creating, waitingJoins: this.waiters.length + waitingElsewhere, joinRatePerS }, this.cfg, now);
    for (const a of actions) {
      if (a.type === 'create') this.launchCreate(a.reason);
      else this.launchDelete(a.stageArn, a.reason);
    }
  }

  private runReconcile(): Promise<void> {
    const run = reconcile(this.reconcileDeps())
      .then(() => undefined)
      .catch((err: Error) => this.log.error({ err: err.message }, 'stages.reconcile_failed'))
      .finally(() => {
        this.reconciling = undefined;
      });
    this.reconciling = run;
    return run;
  }

  private ensureReconciled(): Promise<void> {
    if (this.reconciled) return Promise.resolve();
    this.reconciling ??= reconcile(this.reconcileDeps())
      .then(() => {
        this.reconciled = this.lease.held;
      })
      .catch((err: Error) => {
        this.log.error({ err: err.message }, 'stages.reconcile_failed');
      })
      .finally(() => {
        this.reconciling = undefined;
      });
    return this.reconciling;
  }

  private track(p: Promise<void>): void {
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  private launchCreate(reason: string): void {
    this.creating++;
    const startedAt = this.now();
    const name = `sc-${this.cfg.poolId.replace(/[^A-Za-z0-9_-]/g, '_')}-${startedAt.toString(36)}-${randomBytes(4).toString('hex')}`;
    const tags = { [POOL_TAG]: this.cfg.poolId, [CREATED_AT_TAG]: new Date(startedAt).toISOString() };
    this.log.info({ name, reason }, 'stage.creating');
    this.track(
      (async () => {
        let created;
        try {
          created = await this.provider.createStage({ name, tags });
        } catch (err) {
          this.creating--;
          await this.recordFailure('create_failed', null, reason, err);
          return;
        }
        const at = this.now();
        try {
          // The in-flight create becomes a stored stage, recorded and announced; it stays counted as in flight
          // until it is stored (counted twice for a moment rather than not at all).
          await this.store.insertStage({
            arn: created.stageArn,
            id: created.stageId,
            name: created.name,
            capacity: this.cfg.capacity,
            state: 'active',
            whipUrl: created.whipUrl,
            playback: created.playback,
            tags: created.tags,
            createdAt: created.createdAt,
            emptySince: at,
            endpointsAt: at,
          });
          this.creating--;
        } catch (err) {
          this.creating--;
          // Never half-recorded: a stage we cannot record is removed again (reconciliation adopts it if this fails too).
          await this.recordFailure('create_failed', created.stageArn, reason, err);
          await this.provider.deleteStage(created.stageArn).catch(() => undefined);
          return;
        }
        await this.store
          .addScalingEvent({ at, action: 'create', stageArn: created.stageArn, reason, detail: { tookMs: at - startedAt } })
          .catch((err: Error) => this.log.warn({ stageArn: created.stageArn, err: err.message }, 'scaling.event_not_recorded'));
        this.metrics.scalingActions.inc({ action: 'create' });
        this.log.info({ stageArn: created.stageArn, reason, tookMs: at - startedAt }, 'stage.created');
        this.bus.publish({ type: 'stage_created', data: { stageArn: created.stageArn, timestamp: new Date(at).toISOString() } });
        await this.drainWaiters();
        if (this.running && this.waiters.length) void this.plan();
      })(),
    );
  }

  private launchDelete(arn: StageArn, reason: string): void {
    if (this.deleting.has(arn)) return;
    this.deleting.add(arn);
    this.track(
      (async () => {
        try {
          const stage = await this.store.getStage(arn);
          if (!stage) return;
          if (stage.state === 'active') {
            // Stop assigning first, then tell the Media Servers, then delete at the provider.
            await this.store.setStageState(arn, 'draining');
            this.log.info({ stageArn: arn, reason }, 'stage.draining');
            this.bus.publish({ type: 'stage_deleted', data: { stageArn: arn, timestamp: new Date(this.now()).toISOString() } });
          }
          await this.provider.deleteStage(arn);
          const released = await this.store.removeStage(arn);
          await this.store.addScalingEvent({ at: this.now(), action: 'delete', stageArn: arn, reason, detail: { releasedViewers: released.length } });
          this.metrics.scalingActions.inc({ action: 'delete' });
          this.log.info({ stageArn: arn, reason }, 'stage.deleted');
        } catch (err) {
          await this.recordFailure('delete_failed', arn, reason, err);
        } finally {
          this.deleting.delete(arn);
        }
      })(),
    );
  }

  private async recordFailure(action: 'create_failed' | 'delete_failed', arn: StageArn | null, reason: string, err: unknown): Promise<void> {
    const message = err instanceof Error ? err.message : String(err);
    this.metrics.scalingActions.inc({ action });
    this.log.error({ stageArn: arn ?? undefined, reason, err: message }, action === 'create_failed' ? 'stage.create_failed' : 'stage.delete_failed');
    try {
      await this.store.addScalingEvent({ at: this.now(), action, stageArn: arn, reason, detail: { error: message } });
    } catch {
      // the store is closing or away; the log line above remains
    }
  }
}
