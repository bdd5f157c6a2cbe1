/**
 * Keeps every active stage owned by one live Media Server: runs planAssignments when a stage is created, when a
 * server comes, goes, drains, reports its legs or loses its WebSocket, and on a timer (handover timeouts); stores
 * each move and announces it as `stage_assigned`. Runs are serialised, so two never interleave their moves.
 */
import type { Origin, ServerId, StageArn } from '@stagecast/protocol';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { MediaServerRecord, StageWithCounts, Store } from '../store/store.js';
import { completesHandover, planAssignments, type AssignServer, type AssignStage, type Move } from './assignment.js';
import type { EventBus } from './EventBus.js';
import type { MediaServerRegistry, RegistryChange } from './MediaServerRegistry.js';

export interface StageAssignmentDeps {
  store: Store;
  bus: EventBus;
  registry: MediaServerRegistry;
  log: Logger;
  metrics: Metrics;
  heartbeatIntervalMs: number;
  now?: () => number;
}

export class StageAssignmentService {
  private readonly log: Logger;
  private readonly now: () => number;
  /** When each stage's current handover began (in memory: after a restart, a handover found restarts its clock). */
  private readonly handoverSince = new Map<StageArn, number>();
  private chain: Promise<void> = Promise.resolve();
  private queued: { rebalance: boolean; done: Promise<void> } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: Array<() => void> = [];
  private running = false;

  constructor(private readonly d: StageAssignmentDeps) {
    this.log = d.log.child({ component: 'assignment' });
    this.now = d.now ?? Date.now;
  }

  /** A handover not completed after 3 heartbeat intervals is completed anyway. */
  get handoverTimeoutMs(): number {
    return 3 * this.d.heartbeatIntervalMs;
  }

  start(): Promise<void> {
    if (this.running) return this.chain;
    this.running = true;
    this.unsubscribe.push(
      this.d.bus.subscribe((msg) => {
        if (msg.type === 'stage_created') void this.replan(false);
      }),
      this.d.registry.onChange((c: RegistryChange) => this.replan(c.kind === 'online' || c.kind === 'socket_opened')),
    );
    this.timer = setInterval(() => void this.replan(false), Math.max(25, Math.floor(this.d.heartbeatIntervalMs / 2)));
    return this.replan(false);
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    clearInterval(this.timer);
    for (const u of this.unsubscribe.splice(0)) u();
    await this.chain;
  }

  /** Resolves once every run asked for so far is applied. */
  settled(): Promise<void> {
    return this.chain;
  }

  /**
   * One more run after the current one (runs asked for meanwhile are merged into it). `rebalance`: also even out
   * the counts (a server came online).
   */
  replan(rebalance: boolean): Promise<void> {
    if (!this.running) return Promise.resolve();
    if (this.queued) {
      this.queued.rebalance ||= rebalance;
      return this.queued.done;
    }
    const q = { rebalance, done: Promise.resolve() };
    q.done = this.chain = this.chain.then(async () => {
      this.queued = undefined;
      if (!this.running) return;
      try {
        await this.run(q.rebalance);
      } catch (err) {
        this.log.error({ err: (err as Error).message }, 'assignment.failed');
      }
    });
    this.queued = q;
    return q.done;
  }

  /** The active stages with their owners, and the origin (GET /api/media/stages: what each Media Server serves). */
  async stagesForMediaServers(): Promise<{ stages: StageWithCounts[]; origin: Origin | null }> {
    const stages = (await this.d.store.listStages()).filter((st) => st.state === 'active');
    return { stages, origin: this.d.registry.origin };
  }

  /** Every known Media Server with the number of stages it owns or hands over (GET /api/media/servers, dashboard). */
  async servers(): Promise<{ server: MediaServerRecord; assignedStages: number }[]> {
    const counts = new Map<ServerId, number>();
    for (const st of await this.d.store.listStages()) {
      if (st.state !== 'active') continue;
      for (const id of new Set([st.mediaServerId, st.previousMediaServerId])) if (id !== null) counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    return (await this.d.registry.list()).map((server) => ({ server, assignedStages: counts.get(server.id) ?? 0 }));
  }

  private async run(rebalance: boolean): Promise<void> {
    const now = this.now();
    const active = (await this.d.store.listStages()).filter((st) => st.state === 'active');
    const present = new Set(active.map((st) => st.arn));
    for (const arn of this.handoverSince.keys()) if (!present.has(arn)) this.handoverSince.delete(arn);
    const stages: AssignStage[] = active.map((st) => {
      if (st.previousMediaServerId !== null && !this.handoverSince.has(st.arn)) this.handoverSince.set(st.arn, now);
      const since = this.handoverSince.get(st.arn);
      return { arn: st.arn, owner: st.mediaServerId, previous: st.previousMediaServerId, ...(since !== undefined ? { handoverSince: since } : {}) };
    });
    const records = await this.d.store.listMediaServers();
    const servers: AssignServer[] = records.map((m) => ({
      id: m.id,
      state: m.state,
      draining: m.draining === true,
      socketClosed: this.d.registry.isSocketClosed(m.id),
      ...(m.maxLegs !== undefined ? { maxLegs: m.maxLegs } : {}),
      connected: new Set(m.legs.filter((l) => l.state === 'connected').map((l) => l.stageArn)),
    }));
    const moves = planAssignments(stages, servers, now, { handoverTimeoutMs: this.handoverTimeoutMs }, { rebalance });
    for (const m of moves) await this.apply(m, stages.find((s) => s.arn === m.stageArn)!, now);
    this.updateGauge(stages, moves, records.map((r) => r.id));
  }

  private async apply(m: Move, before: AssignStage, now: number): Promise<void> {
    if (!(await this.d.store.setStageAssignment(m.stageArn, m.serverId, m.previousServerId))) return; // deleted meanwhile
    const ctx = { stageArn: m.stageArn, serverId: m.serverId, previousServerId: m.previousServerId, reason: m.reason };
    if (completesHandover(m)) {
      const since = this.handoverSince.get(m.stageArn);
      this.handoverSince.delete(m.stageArn);
      this.d.metrics.handoversCompleted.inc({ result: m.reason });
      this.log.info({ ...ctx, tookMs: since === undefined ? undefined : now - since }, 'stage.handover_completed');
    } else {
      if (m.previousServerId !== null) this.handoverSince.set(m.stageArn, now);
      else this.handoverSince.delete(m.stageArn);
      if (before.owner !== null) this.d.metrics.handovers.inc({ reason: m.reason });
      if (m.serverId === null) this.log.warn({ ...ctx, from: before.owner }, 'stage.unassigned');
      else this.log.info({ ...ctx, from: before.owner }, 'stage.assigned');
    }
    this.d.bus.publish({
      type: 'stage_assigned',
      data: { stageArn: m.stageArn, serverId: m.serverId, previousServerId: m.previousServerId, timestamp: new Date(now).toISOString() },
    });
  }

  private updateGauge(stages: AssignStage[], moves: Move[], serverIds: ServerId[]): void {
    const owner = new Map(stages.map((s) => [s.arn, s.owner]));
    for (const m of moves) owner.set(m.stageArn, m.serverId);
    const g = this.d.metrics.assignments;
    g.reset();
    for (const id of serverIds) g.set({ server: id }, 0);
    g.set({ server: 'none' }, 0);
    for (const o of owner.values()) g.inc({ server: o ?? 'none' });
  }
}
