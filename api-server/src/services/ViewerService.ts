/** Viewers: a seat on the fullest stage with room (or a wait for a new stage), a SUBSCRIBE token, heartbeats. */
import { randomBytes } from 'node:crypto';
import { timerTask } from '@stagecast/service';
import {
  CapacityExceeded,
  Conflict,
  NotFound,
  Unavailable,
  type ParticipantEvent,
  type ParticipantId,
  type Playback,
  type StageArn,
  type StageId,
  type ViewerId,
} from '@stagecast/protocol';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { Store, StageWithCounts } from '../store/store.js';
import type { SeatObserver } from '../providers/ivs-disconnect.js';
import type { StageTokenIssuer } from '../providers/token-issuer.js';
import { SUBSCRIBE_GRANT } from '../tokens.js';
import type { StageAutoScalingService } from './StageAutoScalingService.js';

export interface ViewerConfig {
  viewerTokenTtlSeconds: number;
  viewerHeartbeatIntervalMs: number;
  /** Set when viewers cannot join Stagecast stages (STAGE_PROVIDER=whip): every join is refused with it (409). */
  joinRefusal?: string;
}

export interface JoinResult {
  viewerId: ViewerId;
  stageArn: StageArn;
  stageId: StageId;
  token: string;
  playback: Playback;
  expiresAt: Date;
  heartbeatIntervalMs: number;
}

export class ViewerService {
  private readonly log: Logger;
  private sweeper: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  /** Joins refused with 503 since start (every stage full and MAX_STAGES reached, or no seat in time). */
  private capacityRefusals = 0;
  /**
   * The stage the seat policy chose last. The next join tries it first (reserveSeat's one-stage form, which reads
   * that stage's seats only) and asks the policy again only when it is full or gone: choosing among every stage reads
   * every seat of the pool, a cost that grows with the audience, paid once per stage instead of once per join. The
   * store still checks room in the same transaction, so a stale hint can never overfill; packing holds because the
   * hint was the fullest stage with room when chosen.
   */
  private seatHint: StageArn | undefined;

  constructor(
    private readonly d: {
      store: Store;
      issuer: StageTokenIssuer;
      /** Checks our accounting against the provider's own (IVS: IvsViewerReconciler); runs while the service does. */
      reconciler?: { start(): void; stop(): void };
      /** Told of every seat given and ended (IVS: a released seat's connection is ended at IVS, whose tokens outlive seats). */
      seats?: SeatObserver;
      scaling: StageAutoScalingService;
      metrics: Metrics;
      log: Logger;
      config: ViewerConfig;
      /** Called when a moved viewer confirms it plays its new stage (a metric). */
      onMoveConfirmed?: () => void;
      now?: () => number;
    },
  ) {
    this.log = d.log.child({ component: 'viewers' });
    this.now = d.now ?? Date.now;
  }

  start(): void {
    if (this.sweeper) return;
    this.sweeper = setInterval(() => void this.sweepQuietly(), Math.max(50, Math.floor(this.d.config.viewerHeartbeatIntervalMs / 2)));
    this.d.reconciler?.start();
  }
  stop(): void {
    this.d.reconciler?.stop();
    this.d.seats?.stop?.();
    clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  async join(userId?: string): Promise<JoinResult> {
    const { store, scaling, metrics } = this.d;
    if (this.d.config.joinRefusal) {
      metrics.joins.inc({ result: 'refused' });
      throw new Conflict(this.d.config.joinRefusal);
    }
    const viewerId = `v_${randomBytes(12).toString('base64url')}` as ViewerId;
    const attempt = async (): Promise<StageWithCounts | undefined> => {
      const seat = { id: viewerId, userId: userId ?? null, now: this.now() };
      const hint = this.seatHint;
      const onHint = hint ? await store.reserveSeat(seat, { stageArn: hint }) : undefined;
      if (onHint) return onHint;
      const picked = await store.reserveSeat(seat);
      this.seatHint = picked?.arn;
      return picked;
    };
    let stage: StageWithCounts | undefined;
    try {
      stage = await attempt();
    } catch (err) {
      // The shared store is unreachable (Redis away): 503 + Retry-After. A seat taken whose answer was lost is never
      // heartbeated, and expires.
      if (err instanceof Unavailable) metrics.joins.inc({ result: 'unavailable' });
      throw err;
    }
    let waited = false;
    if (!stage) {
      if (!(await scaling.canGrow())) {
        metrics.joins.inc({ result: 'capacity_exceeded' });
        this.capacityRefusals++;
        throw new CapacityExceeded('every stage is full and the pool is at MAX_STAGES', 10);
      }
      waited = true;
      // A seat that lands after the wait timed out is given back (nobody holds it).
      stage = await scaling.waitForSeat(attempt, (late) => void this.releaseQuietly(viewerId, late.arn));
      if (!stage) {
        metrics.joins.inc({ result: 'capacity_exceeded' });
        this.capacityRefusals++;
        this.log.warn({ waitingJoins: scaling.waitingJoins }, 'viewer.join_timeout');
        throw new CapacityExceeded('no seat became available in time', 5);
      }
    }
    scaling.noteJoin();
    try {
      // The participant id is the viewer id, so the stage's reports (and IVS's ListParticipants) map back to a seat.
      const signed = await this.d.issuer.issue({
        stage,
        participantId: viewerId as string as ParticipantId,
        grant: SUBSCRIBE_GRANT,
        ...(userId !== undefined ? { label: userId } : {}),
        ttlSeconds: this.d.config.viewerTokenTtlSeconds,
        nowMs: this.now(),
      });
      this.d.seats?.seated(viewerId, stage.arn, signed.participantId);
      metrics.joins.inc({ result: waited ? 'waited' : 'seated' });
      // A join storm is thousands a second: only a join that had to wait for a stage is logged at info
      // (stagecast_joins_total counts them all).
      this.log[waited ? 'info' : 'debug']({ viewerId, stageArn: stage.arn, viewers: stage.viewers, waited }, 'viewer.joined');
      return {
        viewerId,
        stageArn: stage.arn,
        stageId: stage.id,
        token: signed.token,
        playback: stage.playback,
        expiresAt: signed.expiresAt,
        heartbeatIntervalMs: this.d.config.viewerHeartbeatIntervalMs,
      };
    } catch (err) {
      await this.releaseQuietly(viewerId, stage.arn);
      metrics.joins.inc({ result: 'error' });
      throw err;
    }
  }

  /** Gives back a seat nobody holds; a store that fails here leaves it to the sweep (3 heartbeat intervals). */
  private async releaseQuietly(viewerId: ViewerId, stageArn: StageArn): Promise<void> {
    try {
      await this.d.store.releaseViewer(viewerId, this.now());
    } catch (err) {
      this.log.warn({ viewerId, stageArn, err: (err as Error).message }, 'viewer.release_failed');
    }
  }

  get refusedForCapacity(): number {
    return this.capacityRefusals;
  }

  /**
   * Keeps the seat. While consolidation has moved it, the answer carries the new stage and a token for it, until the
   * viewer names that stage as the one it plays (`playingStageArn`): then the move is done.
   */
  async heartbeat(id: ViewerId, playingStageArn?: StageArn): Promise<{ stageArn: StageArn; move?: Omit<JoinResult, 'viewerId' | 'heartbeatIntervalMs'> }> {
    const v = await this.d.store.touchViewer(id, this.now());
    if (!v) throw new NotFound('unknown viewer (released or never joined): join again');
    if (v.movedFrom === null) return { stageArn: v.stageArn };
    if (playingStageArn === v.stageArn) {
      if (await this.d.store.completeMove(id)) {
        this.d.onMoveConfirmed?.();
        this.log.info({ viewerId: id, from: v.movedFrom, stageArn: v.stageArn, tookMs: this.now() - (v.movedAt ?? this.now()) }, 'viewer.moved');
      }
      return { stageArn: v.stageArn };
    }
    const stage = await this.d.store.getStage(v.stageArn);
    if (!stage) throw new NotFound('unknown viewer (released or never joined): join again');
    const signed = await this.d.issuer.issue({
      stage,
      participantId: id as string as ParticipantId,
      grant: SUBSCRIBE_GRANT,
      ...(v.userId !== null ? { label: v.userId } : {}),
      ttlSeconds: this.d.config.viewerTokenTtlSeconds,
      nowMs: this.now(),
    });
    return { stageArn: v.stageArn, move: { stageArn: stage.arn, stageId: stage.id, token: signed.token, playback: stage.playback, expiresAt: signed.expiresAt } };
  }

  async leave(id: ViewerId): Promise<void> {
    const seat = this.d.seats ? await this.d.store.getViewer(id) : undefined;
    if (!(await this.d.store.releaseViewer(id, this.now()))) throw new NotFound('unknown viewer');
    if (seat) this.d.seats?.released(id, seat.stageArn, 'left');
    this.log.debug({ viewerId: id }, 'viewer.left');
    void this.d.scaling.drainWaiters();
  }

  /** Real connections reported by the stage server (participantId = viewerId for subscribers). */
  async applyParticipantEvents(events: ParticipantEvent[]): Promise<{ applied: number }> {
    let applied = 0;
    for (const e of events) {
      if (e.kind !== 'subscriber') {
        this.log.info({ stageArn: e.stageArn, participantId: e.participantId, type: e.type }, 'stage.publisher_event');
        continue;
      }
      if (await this.d.store.setViewerConnected(e.participantId as string as ViewerId, e.stageArn, e.type === 'joined')) applied++;
    }
    return { applied };
  }

  /** The timer's sweep: a store that fails (Redis away) is tried again on the next tick. */
  private readonly sweepQuietly = timerTask(
    () => this.sweep(),
    (err) => this.log.warn({ err: err.message }, 'viewer.sweep_failed'),
  );

  /** Releases viewers silent for 3 heartbeat intervals. */
  async sweep(): Promise<number> {
    const now = this.now();
    const released = await this.d.store.releaseStaleViewers(now - 3 * this.d.config.viewerHeartbeatIntervalMs, now);
    for (const v of released) {
      this.log.info({ viewerId: v.id, stageArn: v.stageArn }, 'viewer.expired');
      this.d.seats?.released(v.id, v.stageArn, 'expired');
    }
    if (released.length) void this.d.scaling.drainWaiters();
    return released.length;
  }
}
