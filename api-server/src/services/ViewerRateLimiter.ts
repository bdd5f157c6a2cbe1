/**
 * The viewer key is public (it is in every /watch link), so joins and heartbeats made with it are rate-limited per
 * client address: a script must not be able to take seats until the pool reaches MAX_STAGES, which IVS bills.
 * One token bucket per address and kind; the operator's key is never limited. Plain data in, a verdict out: the
 * edge decides which address a request comes from (trusted proxies) and maps a refusal to 429 + Retry-After.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import type { Metrics } from '../metrics.js';

export type LimitedKind = 'join' | 'heartbeat';

export interface RateLimit {
  /** Tokens added per minute; 0 = no limit. */
  perMinute: number;
  /** Bucket size: requests allowed back to back. */
  burst: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** Per-key token buckets. A full bucket carries no information, so idle keys are forgotten (memory stays bounded). */
export class KeyedTokenBuckets {
  private readonly buckets = new Map<string, Bucket>();
  private readonly ratePerMs: number;

  constructor(
    private readonly limit: RateLimit,
    private readonly maxKeys = 100_000,
  ) {
    this.ratePerMs = limit.perMinute / 60_000;
  }

  get enabled(): boolean {
    return this.limit.perMinute > 0;
  }

  /** Takes one token for `key`: undefined when allowed, else the seconds until one is available. */
  take(key: string, now: number): number | undefined {
    if (!this.enabled) return undefined;
    let b = this.buckets.get(key);
    if (b) {
      b.tokens = Math.min(this.limit.burst, b.tokens + (now - b.at) * this.ratePerMs);
      b.at = now;
      // Most recently used last: the first keys are the ones to evict.
      this.buckets.delete(key);
      this.buckets.set(key, b);
    } else {
      b = { tokens: this.limit.burst, at: now };
      this.buckets.set(key, b);
      if (this.buckets.size > this.maxKeys) this.buckets.delete(this.buckets.keys().next().value!);
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return undefined;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / this.ratePerMs / 1000));
  }

  /** Forgets every bucket that has refilled since (it would behave as a new one). */
  sweep(now: number): void {
    const fullAfterMs = this.limit.burst / this.ratePerMs;
    for (const [k, b] of this.buckets) if (now - b.at >= fullAfterMs) this.buckets.delete(k);
  }

  get size(): number {
    return this.buckets.size;
  }
}

/**
 * The bucket key of a client address: an IPv4 address as it is (also when written IPv4-mapped, ::ffff:a.b.c.d);
 * an IPv6 address by its /64 — one subscriber usually holds a whole /64 and could otherwise take a fresh address
 * for every request.
 */
export function clientKey(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return mapped[1]!;
  if (!isIPv6(ip)) return ip;
  const [head = '', tail = ''] = ip.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = ip.includes('::') ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => (parseInt(g, 16) || 0).toString(16))
    .join(':')}::/64`;
}

export interface RateLimitedCounts {
  joins: number;
  heartbeats: number;
}

/** A matcher for a list of IPs and CIDRs; an IPv4-mapped IPv6 address matches as its IPv4 address. */
export function addressMatcher(list: readonly string[]): (ip: string) => boolean {
  if (!list.length) return () => false;
  const bl = new BlockList();
  for (const entry of list) {
    const [ip = '', bits] = entry.split('/');
    const type = isIPv4(ip) ? 'ipv4' : 'ipv6';
    if (bits === undefined) bl.addAddress(ip, type);
    else bl.addSubnet(ip, Number(bits), type);
  }
  return (ip) => {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
    const a = mapped ? mapped[1]! : ip;
    if (isIPv4(a)) return bl.check(a, 'ipv4');
    return isIPv6(a) && bl.check(a, 'ipv6');
  };
}

export class ViewerRateLimiter {
  private readonly limiters: Record<LimitedKind, KeyedTokenBuckets>;
  private readonly exempt: (ip: string) => boolean;
  private readonly refused: RateLimitedCounts = { joins: 0, heartbeats: 0 };
  private sweeper: NodeJS.Timeout | undefined;
  private readonly now: () => number;

  constructor(
    private readonly d: {
      join: RateLimit;
      heartbeat: RateLimit;
      /** Client addresses (IPs, CIDRs) never limited: named by the operator (VIEWER_RATE_LIMIT_EXEMPT), counted. */
      exempt?: readonly string[];
      metrics: Metrics;
      now?: () => number;
      maxKeys?: number;
    },
  ) {
    this.exempt = addressMatcher(d.exempt ?? []);
    this.limiters = { join: new KeyedTokenBuckets(d.join, d.maxKeys), heartbeat: new KeyedTokenBuckets(d.heartbeat, d.maxKeys) };
    this.now = d.now ?? Date.now;
  }

  start(): void {
    this.sweeper ??= setInterval(() => {
      const now = this.now();
      for (const l of Object.values(this.limiters)) if (l.enabled) l.sweep(now);
    }, 60_000);
    this.sweeper.unref();
  }
  stop(): void {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  /** Undefined when `address` may go on; else seconds to wait (counted as a refusal). */
  check(kind: LimitedKind, address: string): number | undefined {
    if (this.exempt(address)) {
      this.d.metrics.rateLimitExempt.inc({ kind });
      return undefined;
    }
    const wait = this.limiters[kind].take(clientKey(address), this.now());
    if (wait === undefined) return undefined;
    if (kind === 'join') {
      this.refused.joins++;
      this.d.metrics.joins.inc({ result: 'rate_limited' });
    } else this.refused.heartbeats++;
    this.d.metrics.rateLimited.inc({ kind });
    return wait;
  }

  /** Refusals since start (the dashboard's figures; /metrics has the counters). */
  counts(): RateLimitedCounts {
    return { ...this.refused };
  }
}
