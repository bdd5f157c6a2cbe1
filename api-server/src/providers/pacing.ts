/** Pacing and retries for provider APIs: a token bucket at the provider's rate, backoff on transient errors. */
import type { StageArn } from '@stagecast/protocol';
import type { Logger } from '../logger.js';
import { TransientProviderError, type ProviderHealth, type ProviderStage, type ProviderStageSummary, type StageProvider } from './provider.js';

/** Token bucket: at most `ratePerSecond` acquisitions per second on average, bursts up to `burst`. FIFO. */
export class TokenBucket {
  private tokens: number;
  private last = performance.now();
  private readonly queue: Array<() => void> = [];
  private timer: NodeJS.Timeout | undefined;
  constructor(
    private readonly ratePerSecond: number,
    private readonly burst = Math.max(1, Math.floor(ratePerSecond)),
  ) {
    this.tokens = burst;
  }
  acquire(): Promise<void> {
    return new Promise((resolve) => {
      this.queue.push(resolve);
      this.drain();
    });
  }
  private refill(): void {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.ratePerSecond);
    this.last = now;
  }
  private drain(): void {
    this.refill();
    while (this.queue.length && this.tokens >= 1) {
      this.tokens -= 1;
      this.queue.shift()!();
    }
    if (this.queue.length && !this.timer) {
      const waitMs = Math.ceil(((1 - this.tokens) / this.ratePerSecond) * 1000);
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.drain();
      }, waitMs);
    }
  }
}

export interface RetryOptions {
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryOptions = { attempts: 5, baseDelayMs: 200, maxDelayMs: 5000 };

/**
 * A call budget shared by everything that calls one provider API: each attempt takes a token from the bucket,
 * transient failures (TransientProviderError) are retried with jittered exponential backoff, others are final.
 */
export class Pacer {
  readonly bucket: TokenBucket;
  private stopped = false;
  constructor(
    readonly ratePerSecond: number,
    private readonly log: Logger,
    private readonly retry: RetryOptions = DEFAULT_RETRY,
    /** Calls allowed back to back; 1 keeps every 1 s window at or under the rate (what IVS's TPS quotas mean). */
    burst?: number,
  ) {
    this.bucket = new TokenBucket(ratePerSecond, burst);
  }

  /** Stops retrying (shutdown): calls in flight fail at their next attempt. */
  stop(): void {
    this.stopped = true;
  }

  async call<T>(op: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      await this.bucket.acquire();
      try {
        return await fn();
      } catch (err) {
        const transient = err instanceof TransientProviderError;
        if (!transient || attempt >= this.retry.attempts || this.stopped) throw err;
        const delay = Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);
        this.log.warn({ op, attempt, delayMs: Math.round(delay), err: (err as Error).message }, 'provider.retry');
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }
}

/**
 * Pacing and retries around a StageProvider. A `selfPaced` provider (IVS) paces each of its own remote calls
 * with the same Pacer, so its calls pass straight through here.
 */
export class PacedProvider implements StageProvider {
  readonly kind: string;
  readonly maxCallsPerSecond: number;
  readonly fixedPool: boolean;
  readonly pacer: Pacer;
  constructor(
    private readonly inner: StageProvider,
    log: Logger,
    retry: RetryOptions = DEFAULT_RETRY,
    pacer?: Pacer,
  ) {
    this.kind = inner.kind;
    this.maxCallsPerSecond = inner.maxCallsPerSecond;
    this.fixedPool = inner.fixedPool === true;
    this.pacer = pacer ?? new Pacer(inner.maxCallsPerSecond, log, retry);
  }

  /** Stops retrying (shutdown): calls in flight fail at their next attempt. */
  stop(): void {
    this.pacer.stop();
  }

  private call<T>(op: string, fn: () => Promise<T>): Promise<T> {
    return this.inner.selfPaced ? fn() : this.pacer.call(op, fn);
  }

  createStage(req: { name: string; tags: Record<string, string> }): Promise<ProviderStage> {
    return this.call('createStage', () => this.inner.createStage(req));
  }
  deleteStage(arn: StageArn): Promise<void> {
    return this.call('deleteStage', () => this.inner.deleteStage(arn));
  }
  listStages(): Promise<ProviderStageSummary[]> {
    return this.call('listStages', () => this.inner.listStages());
  }
  async getStage(arn: StageArn): Promise<ProviderStage | undefined> {
    const inner = this.inner;
    if (!inner.getStage) throw new Error(`the ${inner.kind} provider cannot get one stage`);
    return this.call('getStage', () => inner.getStage!(arn));
  }
  health(): Promise<ProviderHealth> {
    return this.inner.health();
  }
}
