/**
 * Grows and shrinks the stage pool. Runs planScaling on a timer and on demand, applies its actions through the
 * (paced) provider, records them, and announces them to the Media Servers in the order they happen.
 */
import { randomBytes } from 'node:crypto';
import type { StageArn } from '@stagecast/protocol';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { CREATED_AT_TAG, POOL_TAG, type StageProvider } from '../providers/provider.js';
import type { Store } from '../store/store.js';
import type { EventBus } from './EventBus.js';
import { JoinRate } from './JoinRate.js';
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
  now?: () => number;
}

interface Waiter {
  attempt: () => unknown;
  resolve: (v: unknown) => void;
  timer: NodeJS.Timeout;
}

export class StageAutoScalingService {
  private readonly store: Store;
  private readonly provider: StageProvider;
  private readonly bus: EventBus;
  private readonly log: Logger;
  private readonly metrics: Metrics;
  private readonly cfg: ScalingConfig;
  private readonly now: () => number;

  private creating = 0;
  private readonly deleting = new Set<StageArn>();
  private readonly inflight = new Set<Promise<void>>();
  private waiters: Waiter[] = [];
  private timer: NodeJS.Timeout | undefined;
  private reconcileTimer: NodeJS.Timeout | undefined;
  private running = false;
  private reconciled = false;
  private reconciling: Promise<void> | undefined;
  /** A periodic reconcile waits for the provider calls in flight; no new one starts meanwhile. */
  private reconcileWanted = false;
  /** Seats given lately (predictive spares), and when a join last ran the planner. */
  private readonly joinRate = new JoinRate();
  private lastJoinPlanAt = 0;

  constructor(d: ScalingDeps) {
    this.store = d.store;
    this.provider = d.provider;
    this.bus = d.bus;
    this.log = d.log.child({ component: 'scaling' });
    this.metrics = d.metrics;
    this.cfg = d.config;
    this.now = d.now ?? Date.now;
  }

  /** Reconciles with the provider (retried on each tick until it succeeds), then keeps the pool planned. */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    await this.ensureReconciled();
    this.timer = setInterval(() => this.plan(), this.cfg.tickMs);
    this.reconcileTimer = setInterval(() => this.reconcileNow(), this.cfg.reconcileIntervalMs);
    this.plan();
  }

  /**
   * Reconciles again while running: a create that timed out at our end may still have made the stage at the
   * provider, and stages cost money. Never while provider calls are in flight, so an answer that is on its way is
   * never mistaken for an orphan: it is then deferred — plan() starts no new action and runs it once they have
   * landed, so steady scaling cannot starve it. plan() starts nothing while it runs (the two exclude each other).
   */
  reconcileNow(): Promise<void> {
    if (!this.running || !this.reconciled || this.reconciling) return Promise.resolve();
    if (this.creating > 0 || this.deleting.size > 0) {
      this.reconcileWanted = true;
      return Promise.resolve();
    }
    this.reconcileWanted = false;
    const run = reconcile(this.reconcileDeps())
      .then(() => undefined)
      .catch((err: Error) => this.log.error({ err: err.message }, 'stages.reconcile_failed'))
      .finally(() => {
        this.reconciling = undefined;
      });
    this.reconciling = run;
    // Planning was held while it ran: catch up once it is over.
    return run.then(() => this.plan());
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
    clearInterval(this.timer);
    clearInterval(this.reconcileTimer);
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.resolve(undefined);
    }
    await this.reconciling;
    while (this.inflight.size) await Promise.allSettled([...this.inflight]);
  }

  get isReconciled(): boolean {
    return this.reconciled;
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
  canGrow(): boolean {
    if (this.fixedPool) return false;
    return this.creating > 0 || this.store.listStages().length < this.cfg.maxStages;
  }

  /**
   * Tries `attempt` now; if it finds no seat, waits (up to joinWaitMs) for the pool to grow, retrying as stages
   * land or seats free up, in arrival order. Resolves undefined when no seat came in time.
   */
  waitForSeat<T>(attempt: () => T | undefined): Promise<T | undefined> {
    const got = attempt();
    if (got !== undefined || !this.running) return Promise.resolve(got);
    return new Promise<T | undefined>((resolve) => {
      const w: Waiter = {
        attempt,
        resolve: resolve as (v: unknown) => void,
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter((x) => x !== w);
          resolve(undefined);
        }, this.cfg.joinWaitMs),
      };
      this.waiters.push(w);
      this.plan();
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
    this.plan();
  }

  /** Joins per second lately (predictive spares' input; the dashboard may show it). */
  get recentJoinRate(): number {
    return this.joinRate.perSecond(this.now());
  }

  /** Seats waiting joins, oldest first, while seats are available. Call when a stage lands or a seat is freed. */
  drainWaiters(): void {
    while (this.waiters.length) {
      const w = this.waiters[0]!;
      const got = w.attempt();
      if (got === undefined) break;
      this.waiters.shift();
      clearTimeout(w.timer);
      w.resolve(got);
    }
  }

  /**
   * Runs the planner now. Synchronous: reading the pool and launching actions happen in one step. No create or
   * delete starts while a reconciliation runs (its listing would miss or mis-adopt them); it plans again when done.
   */
  plan(): void {
    if (!this.running) return;
    if (!this.reconciled) {
      void this.ensureReconciled().then(() => this.reconciled && this.plan());
      return;
    }
    this.drainWaiters();
    if (this.fixedPool || this.reconciling) return;
    if (this.reconcileWanted) {
      void this.reconcileNow();
      return;
    }
    // A stage that viewers are still moving out of (consolidation) is not empty yet: they play it until they switch.
    const movingOut = new Set(this.store.listPendingMoves().map((m) => m.from));
    const stages = this.store.listStages().map((s) => (movingOut.has(s.arn) ? { ...s, emptySince: null } : s));
    // A draining stage with no delete in flight is a delete that failed or was cut by a crash: finish it.
    for (const s of stages) if (s.state === 'draining' && !this.deleting.has(s.arn)) this.launchDelete(s.arn, 'finish drain');
    const now = this.now();
    const joinRatePerS = this.cfg.spareLeadMs ? this.joinRate.perSecond(now) : 0;
    const actions = planScaling({ stages, creating: this.creating, waitingJoins: this.waiters.length, joinRatePerS }, this.cfg, now);
    for (const a of actions) {
      if (a.type === 'create') this.launchCreate(a.reason);
      else this.launchDelete(a.stageArn, a.reason);
    }
  }

  private ensureReconciled(): Promise<void> {
    if (this.reconciled) return Promise.resolve();
    this.reconciling ??= reconcile(this.reconcileDeps())
      .then(() => {
        this.reconciled = true;
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
          this.recordFailure('create_failed', null, reason, err);
          return;
        }
        const at = this.now();
        try {
          // One synchronous step: the in-flight create becomes a stored stage, recorded and announced.
          this.creating--;
          this.store.insertStage({
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
          this.store.addScalingEvent({ at, action: 'create', stageArn: created.stageArn, reason, detail: { tookMs: at - startedAt } });
        } catch (err) {
          // Never half-recorded: a stage we cannot record is removed again (reconciliation adopts it if this fails too).
          this.recordFailure('create_failed', created.stageArn, reason, err);
          await this.provider.deleteStage(created.stageArn).catch(() => undefined);
          return;
        }
        this.metrics.scalingActions.inc({ action: 'create' });
        this.log.info({ stageArn: created.stageArn, reason, tookMs: at - startedAt }, 'stage.created');
        this.bus.publish({ type: 'stage_created', data: { stageArn: created.stageArn, timestamp: new Date(at).toISOString() } });
        this.drainWaiters();
        if (this.running && this.waiters.length) this.plan();
      })(),
    );
  }

  private launchDelete(arn: StageArn, reason: string): void {
    if (this.deleting.has(arn)) return;
    const stage = this.store.getStage(arn);
    if (!stage) return;
    this.deleting.add(arn);
    if (stage.state === 'active') {
      // Stop assigning first, then tell the Media Servers, then delete at the provider.
      this.store.setStageState(arn, 'draining');
      this.log.info({ stageArn: arn, reason }, 'stage.draining');
      this.bus.publish({ type: 'stage_deleted', data: { stageArn: arn, timestamp: new Date(this.now()).toISOString() } });
    }
    this.track(
      (async () => {
        try {
          await this.provider.deleteStage(arn);
          const released = this.store.removeStage(arn);
          this.store.addScalingEvent({ at: this.now(), action: 'delete', stageArn: arn, reason, detail: { releasedViewers: released.length } });
          this.metrics.scalingActions.inc({ action: 'delete' });
          this.log.info({ stageArn: arn, reason }, 'stage.deleted');
        } catch (err) {
          this.recordFailure('delete_failed', arn, reason, err);
        } finally {
          this.deleting.delete(arn);
        }
      })(),
    );
  }

  private recordFailure(action: 'create_failed' | 'delete_failed', arn: StageArn | null, reason: string, err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    this.metrics.scalingActions.inc({ action });
    this.log.error({ stageArn: arn ?? undefined, reason, err: message }, action === 'create_failed' ? 'stage.create_failed' : 'stage.delete_failed');
    try {
      this.store.addScalingEvent({ at: this.now(), action, stageArn: arn, reason, detail: { error: message } });
    } catch {
      // the store is closing; the log line above remains
    }
  }
}
