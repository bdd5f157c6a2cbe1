/**
 * Tells the API Server about real viewer connections (so `viewerCount` counts connections, not join calls).
 * Events are queued (bounded: the oldest are dropped first), sent in batches, retried with jittered exponential
 * backoff while the API Server is away, and flushed on stop. Nothing here throws to the caller.
 */
import type { Logger } from 'pino';
import {
  ParticipantEventsRequestSchema,
  type ParticipantEvent,
  type ParticipantId,
  type StageArn,
} from '@stagecast/protocol';
import type { z } from 'zod';

export interface ParticipantReporterOptions {
  url: string;
  secret: string;
  logger: Logger;
  /** How long events wait to be batched with others. */
  flushDelayMs?: number;
  /** Events per POST (the API accepts up to 1,000). */
  batchSize?: number;
  /** Queue bound; beyond it the oldest events are dropped and counted. */
  maxQueue?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  requestTimeoutMs?: number;
  /** How long stop() keeps trying to deliver what is queued. */
  stopTimeoutMs?: number;
}

export interface ParticipantReporterStats {
  queued: number;
  sent: number;
  dropped: number;
  failedAttempts: number;
  /** Consecutive failed attempts (0 when the last one worked). */
  failureStreak: number;
}

type EventInput = z.input<typeof ParticipantEventsRequestSchema>['events'][number];

export class ParticipantReporter {
  private readonly queue: ParticipantEvent[] = [];
  private timer: NodeJS.Timeout | undefined;
  private inflight: Promise<void> | undefined;
  private running = false;
  private backoffMs: number;
  private readonly o: Required<Omit<ParticipantReporterOptions, 'logger'>> & { logger: Logger };
  private counters = { sent: 0, dropped: 0, failedAttempts: 0, failureStreak: 0 };

  constructor(opts: ParticipantReporterOptions) {
    this.o = {
      flushDelayMs: 200,
      batchSize: 500,
      maxQueue: 10_000,
      initialBackoffMs: 500,
      maxBackoffMs: 30_000,
      requestTimeoutMs: 5_000,
      stopTimeoutMs: 3_000,
      ...opts,
      logger: opts.logger.child({ component: 'participant-reporter' }),
    };
    this.backoffMs = this.o.initialBackoffMs;
  }

  start(): void {
    this.running = true;
    if (this.queue.length > 0) this.schedule(this.o.flushDelayMs);
  }

  joined(stageArn: StageArn, participantId: ParticipantId, kind: ParticipantEvent['kind'] = 'subscriber'): void {
    this.push({ stageArn, participantId, kind, type: 'joined', timestamp: new Date().toISOString() });
  }

  left(stageArn: StageArn, participantId: ParticipantId, kind: ParticipantEvent['kind'] = 'subscriber'): void {
    this.push({ stageArn, participantId, kind, type: 'left', timestamp: new Date().toISOString() });
  }

  stats(): ParticipantReporterStats {
    return { queued: this.queue.length, ...this.counters };
  }

  /** Stops the timer and tries, for at most stopTimeoutMs, to deliver everything queued. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.clearTimer();
    const deadline = Date.now() + this.o.stopTimeoutMs;
    if (this.inflight) await this.inflight;
    while (this.queue.length > 0 && Date.now() < deadline) {
      const ok = await this.sendBatch(Math.max(1, Math.min(this.o.requestTimeoutMs, deadline - Date.now())));
      if (!ok) break;
    }
    if (this.queue.length > 0) {
      this.o.logger.warn({ undelivered: this.queue.length }, 'participant_events.undelivered');
    }
  }

  private push(e: EventInput): void {
    this.queue.push(e as ParticipantEvent);
    if (this.queue.length > this.o.maxQueue) {
      const n = this.queue.length - this.o.maxQueue;
      this.queue.splice(0, n);
      this.counters.dropped += n;
      this.o.logger.warn({ dropped: n, maxQueue: this.o.maxQueue }, 'participant_events.dropped');
    }
    if (this.running && !this.timer && !this.inflight) this.schedule(this.o.flushDelayMs);
  }

  private schedule(ms: number): void {
    this.clearTimer();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.inflight = this.flushLoop().finally(() => {
        this.inflight = undefined;
      });
    }, ms);
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private async flushLoop(): Promise<void> {
    while (this.running && this.queue.length > 0) {
      const ok = await this.sendBatch(this.o.requestTimeoutMs);
      if (!ok) {
        const jittered = this.backoffMs * (0.5 + Math.random() * 0.5);
        this.backoffMs = Math.min(this.backoffMs * 2, this.o.maxBackoffMs);
        if (this.running) this.schedule(jittered);
        return;
      }
    }
  }

  /** Sends the head of the queue. true = delivered (or dropped as undeliverable), false = retry later. */
  private async sendBatch(timeoutMs: number): Promise<boolean> {
    const batch = this.queue.slice(0, this.o.batchSize);
    if (batch.length === 0) return true;
    let status = 0;
    try {
      const res = await fetch(this.o.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${this.o.secret}` },
        body: JSON.stringify({ events: batch }),
        signal: AbortSignal.timeout(timeoutMs),
      });
      status = res.status;
      await res.arrayBuffer().catch(() => undefined);
    } catch (e) {
      this.failed(batch.length, (e as Error).name === 'TimeoutError' ? 'timeout' : 'unreachable');
      return false;
    }
    if (status >= 200 && status < 300) {
      this.remove(batch);
      this.counters.sent += batch.length;
      this.counters.failureStreak = 0;
      this.backoffMs = this.o.initialBackoffMs;
      this.o.logger.debug({ events: batch.length }, 'participant_events.sent');
      return true;
    }
    if (status === 400 || status === 404 || status === 413 || status === 422) {
      // The API Server will never accept this batch: retrying it would block every later event.
      this.remove(batch);
      this.counters.dropped += batch.length;
      this.o.logger.error({ status, events: batch.length }, 'participant_events.rejected');
      return true;
    }
    this.failed(batch.length, `http ${status}`);
    return false;
  }

  private remove(batch: ParticipantEvent[]): void {
    // Drops from the queue may have happened meanwhile; remove exactly the batch's events that are still at the head.
    let n = 0;
    while (n < batch.length && this.queue[n] === batch[n]) n++;
    if (n === batch.length) this.queue.splice(0, n);
    else for (const e of batch) {
      const i = this.queue.indexOf(e);
      if (i >= 0) this.queue.splice(i, 1);
    }
  }

  private failed(events: number, reason: string): void {
    this.counters.failedAttempts++;
    this.counters.failureStreak++;
    // Log the first failure and then every tenth, not every retry.
    if (this.counters.failureStreak === 1 || this.counters.failureStreak % 10 === 0) {
      this.o.logger.warn({ reason, events, streak: this.counters.failureStreak }, 'participant_events.retry');
    }
  }
}
