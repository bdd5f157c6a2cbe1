/**
 * The scaler lease on Redis: `SET key <holder id> NX PX <leaseMs>` takes it, a compare-and-set script renews it
 * (only while the key still holds our id), another releases it on stop. Every API Server tries every leaseMs/3:
 * when the holder dies its key expires within one lease period and another takes it at its next try, so the pool
 * has a scaler again within 2 lease periods. Any failure to renew (Redis away, key gone or taken) drops the lease
 * at once: better no scaler for a moment than two.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '../logger.js';
import type { ScalerLease } from './lease.js';

const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`;
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

export class RedisLease implements ScalerLease {
  readonly holderId = `${process.pid}-${randomBytes(6).toString('hex')}`;
  private _held = false;
  /** Until when our hold is sure by our own clock: 2/3 of a lease after the try that took or renewed it began. */
  private validUntil = 0;
  private timer: NodeJS.Timeout | undefined;
  private trying: Promise<void> | undefined;
  private readonly listeners = new Set<(held: boolean) => void>();
  private readonly log: Logger;

  constructor(
    private readonly d: { redis: Redis; key: string; leaseMs: number; log: Logger },
  ) {
    this.log = d.log.child({ component: 'lease' });
  }

  get held(): boolean {
    return this._held && Date.now() < this.validUntil;
  }

  onChange(fn: (held: boolean) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  async start(): Promise<void> {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), Math.max(100, Math.floor(this.d.leaseMs / 3)));
    await this.tick();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.trying;
    if (!this._held) return;
    this.set(false);
    await this.d.redis.eval(RELEASE, 1, this.d.key, this.holderId).catch(() => undefined);
  }

  /** One try: renew what we hold, or take what nobody holds. */
  tick(): Promise<void> {
    this.trying ??= (async () => {
      const began = Date.now();
      try {
        if (this.held) {
          const ok = (await this.bounded(this.d.redis.eval(RENEW, 1, this.d.key, this.holderId, String(this.d.leaseMs)))) === 1;
          if (ok) this.validUntil = began + Math.floor((this.d.leaseMs * 2) / 3);
          else this.set(false);
        } else {
          // A hold that lapsed by our clock (renewals too slow) is given up before anyone else could take it.
          if (this._held) this.set(false);
          const ok = (await this.bounded(this.d.redis.set(this.d.key, this.holderId, 'PX', this.d.leaseMs, 'NX'))) === 'OK';
          if (ok) {
            this.validUntil = began + Math.floor((this.d.leaseMs * 2) / 3);
            this.set(true);
          }
        }
      } catch (err) {
        if (this._held) this.log.warn({ err: (err as Error).message }, 'scaler.lease_renew_failed');
        this.set(false);
      }
    })().finally(() => {
      this.trying = undefined;
    });
    return this.trying;
  }

  /** A try never outlasts a third of the lease (the store's own command timeout may be longer). */
  private bounded<T>(p: Promise<T>): Promise<T> {
    let t: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      t = setTimeout(() => reject(new Error('lease command timed out')), Math.max(100, Math.floor(this.d.leaseMs / 3)));
    });
    return Promise.race([p, timeout]).finally(() => clearTimeout(t));
  }

  private set(held: boolean): void {
    if (held === this._held) return;
    this._held = held;
    for (const fn of this.listeners) fn(held);
  }
}
