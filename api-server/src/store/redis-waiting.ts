/**
 * Joins waiting for a seat, counted across API Servers. A join that finds no seat waits on the API Server it
 * reached, but only the scaler lease holder plans: each server reports its count (a key that expires unless
 * reported again), and the holder plans for its own waiters plus everyone else's, so a burst of joins on a follower
 * grows the pool at once instead of one stage at a time as the load threshold trips.
 */
import type { Redis } from 'ioredis';

export class RedisWaitingJoins {
  private reported = 0;

  constructor(private readonly d: { redis: Redis; prefix: string; serverId: string; ttlMs: number }) {}

  private key(id: string): string {
    return `${this.d.prefix}waiting:${id}`;
  }

  /** This server's count now (a failure is left to the next report: the key expires meanwhile). */
  async report(n: number): Promise<void> {
    if (n === 0 && this.reported === 0) return;
    if (n > 0) await this.d.redis.multi().set(this.key(this.d.serverId), String(n), 'PX', this.d.ttlMs).sadd(`${this.d.prefix}waiting_ids`, this.d.serverId).exec();
    else await this.d.redis.multi().del(this.key(this.d.serverId)).srem(`${this.d.prefix}waiting_ids`, this.d.serverId).exec();
    this.reported = n;
  }

  /** The joins waiting on the other API Servers (reports not renewed in ttlMs are gone). */
  async elsewhere(): Promise<number> {
    const ids = (await this.d.redis.smembers(`${this.d.prefix}waiting_ids`)).filter((id) => id !== this.d.serverId);
    if (!ids.length) return 0;
    const counts = await this.d.redis.mget(...ids.map((id) => this.key(id)));
    const gone = ids.filter((_, i) => counts[i] === null);
    if (gone.length) await this.d.redis.srem(`${this.d.prefix}waiting_ids`, ...gone);
    return counts.reduce((n, c) => n + (c === null ? 0 : Number(c)), 0);
  }
}
