/**
 * Applies planConsolidation on a timer: moves the chosen seats in the store (each viewer learns it in its heartbeat
 * answer, with a token for the new stage), records a `consolidate` scaling event per emptied stage, and forgets moves
 * that were never confirmed. The emptied stages are deleted by StageAutoScalingService once no move out of them is
 * pending and SCALE_DOWN_COOLDOWN has passed (or kept as the spare, as planScaling decides).
 */
import type { StageArn } from '@stagecast/protocol';
import { Counter } from 'prom-client';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { Store } from '../store/store.js';
import { planConsolidation, type ConsolidationConfig, type ConsolidationPlan } from './consolidation.js';
import type { StageAutoScalingService } from './StageAutoScalingService.js';

export interface ConsolidationServiceConfig extends ConsolidationConfig {
  enabled: boolean;
  intervalMs: number;
  moveTimeoutMs: number;
}

export class ConsolidationService {
  private readonly log: Logger;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private readonly moved: Counter<'result'>;

  constructor(
    private readonly d: {
      store: Store;
      scaling: StageAutoScalingService;
      metrics: Metrics;
      log: Logger;
      config: ConsolidationServiceConfig;
      now?: () => number;
    },
  ) {
    this.log = d.log.child({ component: 'consolidation' });
    this.now = d.now ?? Date.now;
    this.moved = new Counter({
      name: 'stagecast_consolidation_moves_total',
      help: 'Viewers moved by consolidation (result: moved = told; switched = confirmed on the new stage; expired = never confirmed)',
      labelNames: ['result'],
      registers: [d.metrics.registry],
    });
  }

  get enabled(): boolean {
    return this.d.config.enabled && !this.d.scaling.fixedPool;
  }

  start(): void {
    if (this.timer || !this.enabled) return;
    this.timer = setInterval(() => void this.runQuietly(), this.d.config.intervalMs);
  }
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The viewer confirmed it plays its new stage. */
  switched(): void {
    this.moved.inc({ result: 'switched' });
  }

  private async runQuietly(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      await this.run();
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'consolidation.run_failed');
    } finally {
      this.running = false;
    }
  }

  /**
   * One pass: expire stale moves, plan, apply. Only the scaler lease holder runs it (two passes at once would move
   * the same seats twice). The pool may change between plan and moves (joins on any API Server): each move is
   * checked again in the store (room on an active target) and moves fewer seats when it must.
   */
  async run(): Promise<ConsolidationPlan | undefined> {
    const { store, scaling, config } = this.d;
    if (!this.enabled || !scaling.isLeader || !scaling.isReconciled) return undefined;
    const now = this.now();
    const expired = await store.expireMoves(now - config.moveTimeoutMs);
    for (const m of expired) this.log.warn({ viewerId: m.viewerId, from: m.from, to: m.to }, 'viewer.move_expired');
    if (expired.length) this.moved.inc({ result: 'expired' }, expired.length);

    const moving = new Map<StageArn, number>();
    for (const m of await store.listPendingMoves()) {
      moving.set(m.from, (moving.get(m.from) ?? 0) + 1);
      moving.set(m.to, (moving.get(m.to) ?? 0) + 1);
    }
    const stages = (await store.listStages()).map((s) => ({ ...s, moving: moving.get(s.arn) ?? 0 }));
    const plan = planConsolidation({ stages, creating: scaling.creatingCount, waitingJoins: scaling.waitingJoins }, config);
    if (!plan.moves.length) return plan;

    const byFrom = new Map<StageArn, { to: StageArn; viewers: number }[]>();
    for (const b of plan.moves) {
      const done = await store.moveViewers(b.from, b.to, b.count, now);
      if (done.length) byFrom.set(b.from, [...(byFrom.get(b.from) ?? []), { to: b.to, viewers: done.length }]);
      this.moved.inc({ result: 'moved' }, done.length);
    }
    for (const [from, to] of byFrom) {
      const viewers = to.reduce((n, t) => n + t.viewers, 0);
      const reason = `sparse: ${viewers} viewer(s) moved to ${to.length} fuller stage(s)`;
      await store.addScalingEvent({ at: now, action: 'consolidate', stageArn: from, reason, detail: { moves: to, keptBefore: plan.keptBefore, keptAfter: plan.keptAfter } });
      this.log.info({ stageArn: from, viewers, to: to.map((t) => t.to) }, 'stage.consolidated');
    }
    return plan;
  }
}
