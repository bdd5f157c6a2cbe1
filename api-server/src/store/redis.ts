/**
 * Store on Redis (ioredis), shared by several API Servers (REDIS_URL). Every update that touches more than one key
 * runs as one Lua script (atomic in Redis), so two API Servers never see or leave a half-made change: in particular
 * a seat is chosen and taken in one script (the seat policy of seat-policy.ts), so N servers never overfill a stage.
 *
 * Key layout (scripts in redis-scripts.ts) — every key starts with the prefix `stagecast:{<STAGE_POOL_ID>}:` (one hash tag: one slot), written P:
 *   P stages               ZSET   stage ARN → createdAt (the listing order: createdAt, then ARN)
 *   P stage:<arn>          HASH   the StageRecord (playback, tags as JSON; '' for a null emptySince / server id)
 *   P seats:<arn>          ZSET   viewer id → joinedAt: the seats taken on that stage
 *   P connected:<arn>      SET    viewer ids whose connection the stage server (or IVS) reported
 *   P viewer:<id>          HASH   the ViewerRecord (userId, movedFrom, movedAt absent when null)
 *   P viewers              ZSET   viewer id → lastSeen (the stale-seat sweep)
 *   P moves                ZSET   viewer id → movedAt, for every move not yet confirmed (consolidation)
 *   P ms                   SET    Media Server ids;  P ms:<id>  HASH  the MediaServerRecord (legs as JSON)
 *   P events / event_id    LIST   scaling events, newest first, JSON with its id (the last 10,000); their counter
 *   P usage:<minute>       HASH   'v|<arn>' / 'p|<arn>' → viewer / publisher participant-ms in that minute
 *   P usage_minutes        ZSET   minute → minute (the buckets that exist);  P metered_until  STRING
 *   P lease:scaler         STRING the scaler lease holder's id, with a PX expiry (redis-lease.ts)
 *   P waiting:<holder>     STRING joins waiting on that API Server, PX 3 planner ticks; P waiting_ids SET of them
 *   P announce             pub/sub channel: stage and Media Server announcements between API Servers
 *
 * Failing fast: no offline queue and a command timeout, so while Redis is unreachable every call rejects at once
 * (or within the timeout) with Unavailable (503 + Retry-After at the edge), never hangs; ioredis reconnects by itself.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { Unavailable, type Playback, type ServerId, type StageArn, type StageId, type ViewerId } from '@stagecast/protocol';
import type {
  LegRecord,
  MediaServerRecord,
  ScalingEventRecord,
  StageRecord,
  StageState,
  StageWithCounts,
  Store,
  UsageBucket,
  UsageSample,
  ViewerMove,
  ViewerRecord,
} from './store.js';
import { LUA_LIB, SCRIPTS } from './redis-scripts.js';

const MINUTE_MS = 60_000;

/** The prefix of every key of one stage pool (a hash tag keeps them on one slot). */
export const redisPrefix = (poolId: string): string => `stagecast:{${poolId}}:`;

/** Connection options shared by the store, the lease and the announcement relay: fail fast, reconnect forever. */
export function redisOptions(commandTimeoutMs = 2000): RedisOptions {
  return {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: commandTimeoutMs,
    connectTimeout: 2000,
    // Reconnect forever, backing off to 1 s: the API Server recovers by itself when Redis returns.
    retryStrategy: (times) => Math.min(50 * times, 1000),
    lazyConnect: true,
  };
}

type ScriptName = keyof typeof SCRIPTS;
type Reply = string | number | null | Reply[];
type ScriptClient = Redis & { [K in ScriptName]: (...args: (string | number)[]) => Promise<Reply> };

const hash = (flat: Reply): Record<string, string> => {
  const o: Record<string, string> = {};
  const a = flat as string[];
  for (let i = 0; i + 1 < a.length; i += 2) o[a[i]!] = a[i + 1]!;
  return o;
};
const num = (v: string | undefined): number => Number(v);
const orNull = (v: string | undefined): string | null => (v === undefined || v === '' ? null : v);

function stageOf(flat: Reply): StageWithCounts {
  const h = hash(flat);
  return {
    arn: h.arn as StageArn,
    id: h.id as StageId,
    name: h.name!,
    capacity: num(h.capacity),
    state: h.state as StageState,
    whipUrl: h.whipUrl!,
    playback: JSON.parse(h.playback!) as Playback,
    tags: JSON.parse(h.tags!) as Record<string, string>,
    createdAt: num(h.createdAt),
    emptySince: orNull(h.emptySince) === null ? null : num(h.emptySince),
    endpointsAt: h.endpointsAt ? num(h.endpointsAt) : num(h.createdAt),
    mediaServerId: orNull(h.mediaServerId) as ServerId | null,
    previousMediaServerId: orNull(h.previousMediaServerId) as ServerId | null,
    viewers: num(h.viewers),
    connected: num(h.connected),
  };
}
function viewerOf(flat: Reply): ViewerRecord {
  const h = hash(flat);
  return {
    id: h.id as ViewerId,
    stageArn: h.stageArn as StageArn,
    userId: h.userId ?? null,
    joinedAt: num(h.joinedAt),
    lastSeen: num(h.lastSeen),
    connected: h.connected === '1',
    movedFrom: (h.movedFrom ?? null) as StageArn | null,
    movedAt: h.movedAt === undefined ? null : num(h.movedAt),
  };
}
function serverOf(flat: Reply): MediaServerRecord {
  const h = hash(flat);
  const legs = JSON.parse(h.legs ?? '[]') as unknown;
  return {
    id: h.id as ServerId,
    ip: h.ip!,
    port: num(h.port),
    state: h.state as 'online' | 'offline',
    registeredAt: num(h.registeredAt),
    lastHeartbeat: num(h.lastHeartbeat),
    publisherOnline: h.publisherOnline === '1',
    legs: Array.isArray(legs) ? (legs as LegRecord[]) : [],
    ...(h.url !== undefined ? { url: h.url } : {}),
    ...(h.maxLegs !== undefined ? { maxLegs: num(h.maxLegs) } : {}),
    draining: h.draining === '1',
    ...(h.ingest !== undefined ? { ingest: h.ingest as 'broadcaster' | 'relay' | 'none' } : {}),
  };
}
function movesOf(flat: Reply): ViewerMove[] {
  const a = flat as string[];
  const out: ViewerMove[] = [];
  for (let i = 0; i + 3 < a.length; i += 4) out.push({ viewerId: a[i] as ViewerId, to: a[i + 1] as StageArn, from: a[i + 2] as StageArn, at: num(a[i + 3]) });
  return out;
}
function serverFields(m: MediaServerRecord): (string | number)[] {
  return [
    'id', m.id, 'ip', m.ip, 'port', m.port, 'state', m.state, 'registeredAt', m.registeredAt, 'lastHeartbeat', m.lastHeartbeat,
    'publisherOnline', m.publisherOnline ? '1' : '0', 'legs', JSON.stringify(m.legs), 'draining', m.draining ? '1' : '0',
    ...(m.url !== undefined ? ['url', m.url] : []),
    ...(m.maxLegs !== undefined ? ['maxLegs', m.maxLegs] : []),
    ...(m.ingest !== undefined ? ['ingest', m.ingest] : []),
  ];
}

/** True for failures of the link to Redis (as opposed to an error reply from a command that ran). */
function isLinkError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'ReplyError') return /^(LOADING|BUSY|MASTERDOWN|READONLY|CLUSTERDOWN|TRYAGAIN)\b/.test(err.message);
  return true;
}

export class RedisStore implements Store {
  readonly kind = 'redis' as const;
  readonly redis: Redis;
  private readonly r: ScriptClient;
  private readonly P: string;
  private closed = false;

  constructor(url: string, poolId: string, opts: { commandTimeoutMs?: number } = {}) {
    this.P = redisPrefix(poolId);
    this.redis = new Redis(url, redisOptions(opts.commandTimeoutMs));
    // Errors reach the callers (as Unavailable); the client's own 'error' events would otherwise be thrown.
    this.redis.on('error', () => undefined);
    for (const [name, body] of Object.entries(SCRIPTS)) this.redis.defineCommand(name, { numberOfKeys: 0, lua: LUA_LIB + body });
    this.r = this.redis as ScriptClient;
  }

  /** Connects (bounded: resolves false after `timeoutMs` with Redis away; ioredis keeps trying in the background). */
  async open(timeoutMs = 5000): Promise<boolean> {
    if (this.redis.status === 'wait') this.redis.connect().catch(() => undefined);
    if (this.redis.status === 'ready') return true;
    return new Promise<boolean>((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(t);
        this.redis.off('ready', onReady);
        resolve(ok);
      };
      const onReady = () => done(true);
      const t = setTimeout(() => done(false), timeoutMs);
      this.redis.on('ready', onReady);
    });
  }

  /** Runs one call; a broken link to Redis becomes Unavailable (503 + Retry-After), never a hang or a crash. */
  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (isLinkError(err)) throw new Unavailable('the shared store (Redis) is unreachable: retry shortly', 2, err);
      throw err;
    }
  }

  insertStage(s: StageRecord): Promise<void> {
    const fields: (string | number)[] = [
      'arn', s.arn, 'id', s.id, 'name', s.name, 'capacity', s.capacity, 'state', s.state, 'whipUrl', s.whipUrl,
      'playback', JSON.stringify(s.playback), 'tags', JSON.stringify(s.tags), 'createdAt', s.createdAt,
      'emptySince', s.emptySince ?? '', 'endpointsAt', s.endpointsAt ?? s.createdAt,
      'mediaServerId', s.mediaServerId ?? '', 'previousMediaServerId', s.previousMediaServerId ?? '',
    ];
    return this.call(async () => {
      await this.r.scInsertStage(this.P, s.arn, s.createdAt, ...fields);
    });
  }
  getStage(arn: StageArn): Promise<StageWithCounts | undefined> {
    return this.call(async () => {
      const r = await this.r.scGetStage(this.P, arn);
      return r ? stageOf(r) : undefined;
    });
  }
  listStages(): Promise<StageWithCounts[]> {
    return this.call(async () => ((await this.r.scListStages(this.P)) as Reply[]).map(stageOf));
  }
  setStageState(arn: StageArn, state: StageState): Promise<void> {
    return this.call(async () => {
      await this.r.scSetStageFields(this.P, arn, 'state', state);
    });
  }
  updateStageEndpoints(arn: StageArn, whipUrl: string, at: number): Promise<boolean> {
    return this.call(async () => (await this.r.scSetStageFields(this.P, arn, 'whipUrl', whipUrl, 'endpointsAt', at)) === 1);
  }
  setStageAssignment(arn: StageArn, mediaServerId: ServerId | null, previousMediaServerId: ServerId | null): Promise<boolean> {
    return this.call(
      async () => (await this.r.scSetStageFields(this.P, arn, 'mediaServerId', mediaServerId ?? '', 'previousMediaServerId', previousMediaServerId ?? '')) === 1,
    );
  }
  removeStage(arn: StageArn): Promise<ViewerId[]> {
    return this.call(async () => (await this.r.scRemoveStage(this.P, arn)) as ViewerId[]);
  }

  reserveSeat(viewer: { id: ViewerId; userId: string | null; now: number }, opts: { stageArn?: StageArn } = {}): Promise<StageWithCounts | undefined> {
    return this.call(async () => {
      const r = await this.r.scReserveSeat(this.P, viewer.id, viewer.userId ?? '', viewer.now, opts.stageArn ?? '');
      return r ? stageOf(r) : undefined;
    });
  }
  getViewer(id: ViewerId): Promise<ViewerRecord | undefined> {
    return this.call(async () => {
      const h = await this.redis.hgetall(`${this.P}viewer:${id}`);
      return Object.keys(h).length ? viewerOf(Object.entries(h).flat()) : undefined;
    });
  }
  touchViewer(id: ViewerId, now: number): Promise<ViewerRecord | undefined> {
    return this.call(async () => {
      const r = await this.r.scTouchViewer(this.P, id, now);
      return r ? viewerOf(r) : undefined;
    });
  }
  releaseViewer(id: ViewerId, now: number): Promise<boolean> {
    return this.call(async () => (await this.r.scReleaseViewer(this.P, id, now)) === 1);
  }
  releaseStaleViewers(olderThan: number, now: number): Promise<ViewerRecord[]> {
    return this.call(async () => ((await this.r.scReleaseStale(this.P, olderThan, now)) as Reply[]).map(viewerOf));
  }
  setViewerConnected(id: ViewerId, stageArn: StageArn, connected: boolean): Promise<boolean> {
    return this.call(async () => (await this.r.scSetConnected(this.P, id, stageArn, connected ? '1' : '0')) === 1);
  }
  countViewers(): Promise<number> {
    return this.call(() => this.redis.zcard(`${this.P}viewers`));
  }

  upsertMediaServer(m: MediaServerRecord): Promise<MediaServerRecord | undefined> {
    return this.call(async () => {
      const prev = await this.r.scUpsertServer(this.P, m.id, ...serverFields(m));
      return prev ? serverOf(prev) : undefined;
    });
  }
  getMediaServer(id: ServerId): Promise<MediaServerRecord | undefined> {
    return this.patchServer(id, []);
  }
  updateMediaServerHeartbeat(id: ServerId, at: number, publisherOnline: boolean | undefined, legs: LegRecord[] | undefined): Promise<MediaServerRecord | undefined> {
    return this.patchServer(id, [
      'lastHeartbeat', at, 'state', 'online',
      ...(publisherOnline !== undefined ? ['publisherOnline', publisherOnline ? '1' : '0'] : []),
      ...(legs !== undefined ? ['legs', JSON.stringify(legs)] : []),
    ]);
  }
  updateMediaServerState(id: ServerId, patch: { draining?: boolean; ingest?: 'broadcaster' | 'relay' | 'none' }): Promise<MediaServerRecord | undefined> {
    return this.patchServer(id, [
      ...(patch.draining !== undefined ? ['draining', patch.draining ? '1' : '0'] : []),
      ...(patch.ingest !== undefined ? ['ingest', patch.ingest] : []),
    ]);
  }
  markMediaServerOffline(id: ServerId): Promise<MediaServerRecord | undefined> {
    return this.patchServer(id, ['state', 'offline']);
  }
  private patchServer(id: ServerId, fields: (string | number)[]): Promise<MediaServerRecord | undefined> {
    return this.call(async () => {
      const r = await this.r.scPatchServer(this.P, id, ...fields);
      return r ? serverOf(r) : undefined;
    });
  }
  markStaleMediaServersOffline(olderThan: number): Promise<MediaServerRecord[]> {
    return this.call(async () => ((await this.r.scStaleServers(this.P, olderThan)) as Reply[]).map(serverOf));
  }
  listMediaServers(): Promise<MediaServerRecord[]> {
    return this.call(async () => ((await this.r.scListServers(this.P)) as Reply[]).map(serverOf).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)));
  }

  moveViewers(from: StageArn, to: StageArn, count: number, now: number): Promise<ViewerMove[]> {
    return this.call(async () => ((await this.r.scMoveViewers(this.P, from, to, count, now)) as string[]).map((id) => ({ viewerId: id as ViewerId, from, to, at: now })));
  }
  listPendingMoves(): Promise<ViewerMove[]> {
    return this.call(async () => movesOf(await this.r.scListMoves(this.P, '+inf')));
  }
  completeMove(id: ViewerId): Promise<boolean> {
    return this.call(async () => (await this.r.scCompleteMove(this.P, id)) === 1);
  }
  expireMoves(olderThan: number): Promise<ViewerMove[]> {
    return this.call(async () => movesOf(await this.r.scExpireMoves(this.P, olderThan)));
  }

  accrueUsage(from: number, to: number, samples: UsageSample[]): Promise<void> {
    if (!(to > from)) return Promise.resolve();
    return this.call(async () => {
      // One MULTI: the buckets and meteredUntil move together (only writes, so no script is needed).
      const m = this.redis.multi();
      for (let t = from; t < to; ) {
        const minute = Math.floor(t / MINUTE_MS) * MINUTE_MS;
        const end = Math.min(to, minute + MINUTE_MS);
        const ms = end - t;
        let any = false;
        for (const s of samples) {
          if (s.viewers <= 0 && s.publishers <= 0) continue;
          m.hincrby(`${this.P}usage:${minute}`, `v|${s.stageArn}`, s.viewers * ms);
          m.hincrby(`${this.P}usage:${minute}`, `p|${s.stageArn}`, s.publishers * ms);
          any = true;
        }
        if (any) m.zadd(`${this.P}usage_minutes`, minute, String(minute));
        t = end;
      }
      m.set(`${this.P}metered_until`, String(to));
      const res = await m.exec();
      const failed = res?.find(([err]) => err);
      if (!res || failed) throw failed?.[0] ?? new Error('usage not written (transaction discarded)');
    });
  }
  usageMeteredUntil(): Promise<number | undefined> {
    return this.call(async () => {
      const v = await this.redis.get(`${this.P}metered_until`);
      return v === null ? undefined : Number(v);
    });
  }
  listUsage(from: number, to: number): Promise<UsageBucket[]> {
    const first = Math.floor(from / MINUTE_MS) * MINUTE_MS;
    return this.call(async () => {
      const r = (await this.r.scListUsage(this.P, first, to)) as Reply[];
      const out: UsageBucket[] = [];
      for (let i = 0; i + 1 < r.length; i += 2) {
        const h = hash(r[i]!);
        const minute = Number(r[i + 1]);
        const arns = new Set(Object.keys(h).map((k) => k.slice(2)));
        for (const arn of [...arns].sort())
          out.push({ minute, stageArn: arn as StageArn, viewerMs: Number(h[`v|${arn}`] ?? 0), publisherMs: Number(h[`p|${arn}`] ?? 0) });
      }
      return out;
    });
  }

  addScalingEvent(e: Omit<ScalingEventRecord, 'id'>): Promise<ScalingEventRecord> {
    const body = JSON.stringify({ at: e.at, action: e.action, stageArn: e.stageArn, reason: e.reason, ...(e.detail !== undefined ? { detail: e.detail } : {}) });
    return this.call(async () => ({ id: Number(await this.r.scAddEvent(this.P, body)), ...e }));
  }
  listScalingEvents(limit: number): Promise<ScalingEventRecord[]> {
    return this.call(async () => (await this.redis.lrange(`${this.P}events`, 0, Math.max(0, limit - 1))).map((j) => JSON.parse(j) as ScalingEventRecord));
  }

  ping(): Promise<void> {
    return this.call(async () => {
      await this.redis.ping();
    });
  }
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
