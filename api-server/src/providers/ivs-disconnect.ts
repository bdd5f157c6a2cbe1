/**
 * On IVS a seat's token keeps working until it expires (up to VIEWER_TOKEN_TTL_SECONDS), so a viewer whose seat was
 * released (leave) or expired (missed heartbeats) would keep watching — and count against the stage's 1,000 — while
 * its seat went to someone else. IVS's DisconnectParticipant ends that connection.
 *
 * - DisconnectParticipant has its own quota, 5 TPS, not adjustable: calls go through their own Pacer at that rate
 *   (retried when throttled), one at a time, from a queue. A burst of releases (a page closed by thousands) drains at
 *   5 per second instead of being throttled; the queue is bounded (the oldest are dropped and counted: their tokens
 *   still expire) and a viewer queued twice is disconnected once.
 * - The participant id: for self-signed tokens it is ours (the viewer id); for tokens from CreateParticipantToken IVS
 *   assigns it, so the join remembers it (in memory: after a restart the viewer id is tried, which IVS then does not
 *   know — logged, and the token expires at its TTL).
 * - A participant IVS no longer knows (it left first) is a success.
 */
import { DisconnectParticipantCommand, type IVSRealTimeClient } from '@aws-sdk/client-ivs-realtime';
import type { StageArn, ViewerId } from '@stagecast/protocol';
import type { Logger } from '../logger.js';
import { classifyIvsError, isIvsNotFound } from './ivs.js';
import type { Pacer } from './pacing.js';

/** DisconnectParticipant's own rate quota (TPS, not adjustable). */
export const IVS_DISCONNECT_TPS = 5;

/** What ViewerService tells about seats (no IVS inside it): a seat given with its token's participant, a seat ended. */
export interface SeatObserver {
  seated(viewerId: ViewerId, stageArn: StageArn, participantId: string): void;
  released(viewerId: ViewerId, stageArn: StageArn, why: 'left' | 'expired'): void;
  stop?(): void;
}

export interface IvsDisconnectStats {
  queued: number;
  disconnected: number;
  alreadyGone: number;
  failed: number;
  dropped: number;
}

interface Pending {
  viewerId: ViewerId;
  stageArn: StageArn;
  why: 'left' | 'expired';
}

export class IvsParticipantDisconnector implements SeatObserver {
  private readonly log: Logger;
  private readonly queue = new Map<ViewerId, Pending>();
  /** viewerId → the participant id IVS knows it by (API-issued tokens), while the seat lasts. */
  private readonly participants = new Map<ViewerId, string>();
  private draining: Promise<void> | undefined;
  private stopped = false;
  private readonly counts: Omit<IvsDisconnectStats, 'queued'> = { disconnected: 0, alreadyGone: 0, failed: 0, dropped: 0 };

  constructor(
    private readonly client: Pick<IVSRealTimeClient, 'send'>,
    private readonly o: { pacer: Pacer; log: Logger; maxQueue?: number },
  ) {
    this.log = o.log.child({ component: 'ivs-disconnect' });
  }

  seated(viewerId: ViewerId, _stageArn: StageArn, participantId: string): void {
    if (participantId !== viewerId) this.participants.set(viewerId, participantId);
  }

  released(viewerId: ViewerId, stageArn: StageArn, why: 'left' | 'expired'): void {
    if (this.stopped) return;
    this.queue.delete(viewerId); // re-queued at the back: the newest reason wins
    this.queue.set(viewerId, { viewerId, stageArn, why });
    const max = this.o.maxQueue ?? 10_000;
    while (this.queue.size > max) {
      const oldest = this.queue.keys().next().value!;
      this.queue.delete(oldest);
      this.participants.delete(oldest);
      this.counts.dropped++;
      if (this.counts.dropped === 1 || this.counts.dropped % 1000 === 0) this.log.warn({ dropped: this.counts.dropped, maxQueue: max }, 'ivs.disconnect_queue_full');
    }
    this.draining ??= this.drain().finally(() => (this.draining = undefined));
  }

  stats(): IvsDisconnectStats {
    return { queued: this.queue.size, ...this.counts };
  }

  /** Resolves when the queue is empty (tests; shutdown does not wait: tokens expire anyway). */
  async idle(): Promise<void> {
    while (this.draining) await this.draining;
  }

  /** Drops what is queued and makes no more calls. Idempotent. */
  stop(): void {
    this.stopped = true;
    this.queue.clear();
    this.participants.clear();
  }

  private async drain(): Promise<void> {
    while (!this.stopped && this.queue.size > 0) {
      const next = this.queue.values().next().value!;
      this.queue.delete(next.viewerId);
      const participantId = this.participants.get(next.viewerId) ?? next.viewerId;
      this.participants.delete(next.viewerId);
      await this.disconnect(next, participantId);
    }
  }

  private async disconnect(p: Pending, participantId: string): Promise<void> {
    const reason = p.why === 'left' ? 'viewer left' : 'seat expired (no heartbeat)';
    try {
      const gone = await this.o.pacer.call('DisconnectParticipant', async () => {
        try {
          await this.client.send(new DisconnectParticipantCommand({ stageArn: p.stageArn, participantId, reason }));
          return false;
        } catch (err) {
          if (isIvsNotFound(err)) return true;
          throw classifyIvsError('DisconnectParticipant', err);
        }
      });
      if (gone) this.counts.alreadyGone++;
      else this.counts.disconnected++;
      this.log.info({ viewerId: p.viewerId, stageArn: p.stageArn, why: p.why, alreadyGone: gone }, 'viewer.disconnected_at_ivs');
    } catch (err) {
      this.counts.failed++;
      this.log.warn({ viewerId: p.viewerId, stageArn: p.stageArn, err: (err as Error).message }, 'ivs.disconnect_failed');
    }
  }
}
