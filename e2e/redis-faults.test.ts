/**
 * Several API Servers on Redis, under faults — real processes: a redis-server, the stage server, a Media Server
 * with a broadcaster publishing into the stages, API Server A (the Media Server's) and API Server B, which reaches
 * Redis through a TCP proxy of ours so it alone can be cut off. A WebSocket client on B, authenticated with
 * MEDIA_SERVER_SECRET, plays a Media Server connected there.
 *  1. kill -9 of the scaler (A) during a join storm on both: no stage overfilled (read in Redis), every seat a join
 *     was given is still there, B takes the lease within 2 lease periods and its socket keeps getting events;
 *  2. Redis killed and restarted empty: joins 503 meanwhile, media keeps flowing into the stages, then everything
 *     recovers by itself and the provider's stages are the store's (none leaked);
 *  3. B cut off from Redis for 30 s: its joins 503 while A keeps seating, then B recovers and resyncs its socket.
 * Prints the figures (joins ok / 503, overfill, takeover and recovery times).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { shutdownRtc } from '@stagecast/rtc';
import { ListStagesResponseSchema, ServerMessageSchema, type ServerMessage } from '@stagecast/protocol';
import { startApp, type App } from './helpers/apps.js';
import { Broadcaster } from './helpers/broadcaster.js';
import { startRedis, type RedisServer } from './helpers/redis.js';
import { logTime, SECRETS, startSystem, type StagecastSystem } from './helpers/system.js';
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.js';
import { waitFor } from './helpers/wait.js';

const LEASE_MS = 1500;
const CAPACITY = 5;
const MAX_STAGES = 10;
const P = 'stagecast:{default}:';
const KEY = { 'x-api-key': SECRETS.API_SECRET_KEY };

interface Answer {
  status: number;
  body: any;
  retryAfter: string | null;
}
async function post(url: string, body?: unknown, method = 'POST'): Promise<Answer> {
  try {
    const r = await fetch(url, {
      method,
      headers: { ...KEY, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await r.text();
    return { status: r.status, body: text ? JSON.parse(text) : undefined, retryAfter: r.headers.get('retry-after') };
  } catch {
    return { status: 0, body: undefined, retryAfter: null }; // no answer: the process is gone
  }
}

/** A WebSocket client acting as a Media Server: records what it is told, and reconnects as a Media Server does. */
class MediaProbe {
  readonly messages: { at: number; msg: ServerMessage }[] = [];
  readonly closes: { at: number; code: number; reason: string }[] = [];
  private ws: WebSocket | undefined;
  private stopped = false;
  constructor(private readonly url: string) {}
  async open(): Promise<void> {
    const ws = new WebSocket(`${this.url.replace('http', 'ws')}/ws?type=media-server&serverId=probe-b`, {
      headers: { authorization: `Bearer ${SECRETS.MEDIA_SERVER_SECRET}` },
    });
    this.ws = ws;
    ws.on('message', (d) => this.messages.push({ at: Date.now(), msg: ServerMessageSchema.parse(JSON.parse(d.toString())) }));
    ws.on('error', () => undefined);
    ws.on('close', (code, reason) => {
      this.closes.push({ at: Date.now(), code, reason: reason.toString() });
      if (!this.stopped) setTimeout(() => void this.open().catch(() => undefined), 200);
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
  }
  created(since = 0): string[] {
    return this.messages.filter((m) => m.at >= since && m.msg.type === 'stage_created').map((m) => (m.msg as { data: { stageArn: string } }).data.stageArn);
  }
  stop(): void {
    this.stopped = true;
    this.ws?.terminate();
  }
}

describe('several API Servers on Redis under faults', { timeout: 240_000 }, () => {
  let redis: RedisServer;
  let proxy: TcpProxy;
  let sys: StagecastSystem;
  let b: App;
  let probe: MediaProbe;
  let rd: Redis;
  let broadcaster: Broadcaster | undefined;

  /** Seats per stage as Redis holds them. */
  const seatsInRedis = async () => {
    const arns = await rd.zrange(`${P}stages`, 0, -1);
    return Promise.all(arns.map(async (arn) => ({ arn, capacity: Number(await rd.hget(`${P}stage:${arn}`, 'capacity')), seats: await rd.zcard(`${P}seats:${arn}`) })));
  };
  const providerStages = async () => {
    const r = await fetch(`${sys.stage.url}/admin/stages`, { headers: { authorization: `Bearer ${SECRETS.STAGE_SERVER_SECRET}` } });
    return ListStagesResponseSchema.parse(await r.json()).stages.map((s) => s.stageArn as string);
  };
  const packetsIntoStages = async () => (await sys.stageStats()).stages.reduce((n, s) => n + s.packetsReceived, 0);

  before(async () => {
    redis = await startRedis();
    proxy = await startTcpProxy(redis.port);
    // Reconciling every 5 s: a create the killed scaler had in flight may land at the provider after the new
    // holder's first listing; the next one adopts it (the tests wait for the provider and the store to agree).
    const apiEnv = { REDIS_URL: redis.url, SCALER_LEASE_MS: String(LEASE_MS), CONSOLIDATION_ENABLED: 'false', RECONCILE_INTERVAL_S: '5' };
    sys = await startSystem({ stageCapacity: CAPACITY, minStages: 1, maxStages: MAX_STAGES, scaleDownCooldownS: 600, env: { api: apiEnv } });
    await sys.api.waitForLog((l) => l.msg === 'cluster.started' && l.holder === true, 'A holds the scaler lease');
    // B shares A's DATA_DIR (its token signing key: tokens either one signs verify against either's JWKS) and its
    // pool, and reaches Redis through the proxy.
    b = await startApp('api-server', {
      ...SECRETS,
      DATA_DIR: join(sys.dataDir, 'api'),
      STAGE_PROVIDER: 'local',
      STAGE_SERVER_URL: sys.stage.url,
      MEDIA_SERVER_URL: sys.mediaUrl,
      STAGE_CAPACITY: String(CAPACITY),
      MIN_STAGES: '1',
      MAX_STAGES: String(MAX_STAGES),
      SCALE_DOWN_COOLDOWN: '600',
      HEARTBEAT_INTERVAL_MS: '500',
      VIEWER_HEARTBEAT_INTERVAL_MS: '120000',
      ...apiEnv,
      REDIS_URL: `redis://127.0.0.1:${proxy.port}`,
    });
    probe = new MediaProbe(b.url);
    await probe.open();
    rd = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    rd.on('error', () => undefined);
    await rd.connect();
    await waitFor(async () => (await seatsInRedis()).length >= 1 || undefined, 'MIN_STAGES stage', 15_000);
  });

  after(async () => {
    probe?.stop();
    await broadcaster?.stop();
    await b?.stop();
    await sys?.stop();
    rd?.disconnect();
    await proxy?.close();
    await redis?.stop();
    await shutdownRtc();
  });

  test('kill -9 of the scaler during a join storm: no stage overfilled, no seat lost, B takes the lease within 2 periods and its socket keeps getting events', async () => {
    const stagesBefore = new Set((await seatsInRedis()).map((s) => s.arn));
    const probeFrom = Date.now();
    const JOINS = 80;
    const KILL_AT = 20;
    const results: { i: number; via: 'A' | 'B'; a: Answer }[] = [];
    let next = 0;
    let killAt = 0;
    const worker = async () => {
      for (;;) {
        const i = next++;
        if (i >= JOINS) return;
        if (i === KILL_AT) {
          killAt = Date.now();
          await sys.killApi();
        }
        const via = i % 2 ? 'B' : 'A';
        results.push({ i, via, a: await post(`${via === 'A' ? sys.apiUrl : b.url}/api/viewers/join`, {}) });
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));

    const ok = results.filter((r) => r.a.status === 201);
    const count = (pred: (r: (typeof results)[number]) => boolean) => results.filter(pred).length;
    // No overfill, in Redis itself.
    const seats = await seatsInRedis();
    const overfilled = seats.filter((s) => s.seats > s.capacity);
    assert.deepEqual(overfilled, []);
    // No lost seat: every viewer a join answered 201 still holds its seat (asked through B).
    const lost: string[] = [];
    for (const r of ok) if ((await post(`${b.url}/api/viewers/${r.a.body.viewerId}/heartbeat`, {})).status !== 200) lost.push(r.a.body.viewerId);
    assert.deepEqual(lost, []);
    assert.ok(count((r) => r.via === 'B' && r.a.status === 201) >= 30, 'B kept seating');
    for (const r of results) assert.ok([0, 201, 503].includes(r.a.status), `join ${r.i} via ${r.via}: ${r.a.status} ${JSON.stringify(r.a.body)}`);
    // B took the lease within 2 lease periods of A's death.
    const took = await b.waitForLog((l) => l.msg === 'scaler.lease_acquired', 'B takes the scaler lease', 10_000);
    const takeoverMs = logTime(took) - killAt;
    assert.ok(takeoverMs <= 2 * LEASE_MS, `takeover in ${takeoverMs} ms`);
    // Every stage created since the probe connected was announced to it, once; some by B after A died.
    const created = probe.created(probeFrom);
    const newStages = seats.map((s) => s.arn).filter((arn) => !stagesBefore.has(arn));
    assert.deepEqual([...created].sort(), [...newStages].sort());
    assert.ok(probe.created(killAt).length >= 1, 'events kept coming after the kill');
    console.log(
      `kill -9 during a join storm: joins ok ${ok.length} (A ${count((r) => r.via === 'A' && r.a.status === 201)}, B ${count((r) => r.via === 'B' && r.a.status === 201)}), ` +
        `503 ${count((r) => r.a.status === 503)}, no answer ${count((r) => r.a.status === 0)}; overfilled stages ${overfilled.length}; lost seats ${lost.length}; ` +
        `lease taken over in ${takeoverMs} ms (lease ${LEASE_MS} ms); stage_created on B's socket ${created.length} (${probe.created(killAt).length} after the kill)`,
    );
    // The pool is whole: the provider's stages are the store's, whatever creates the dead scaler had in flight
    // (the new holder reconciles first: one that landed at the provider is adopted, not leaked).
    await waitFor(
      async () => {
        const stored = (await seatsInRedis()).map((s) => s.arn).sort();
        return JSON.stringify((await providerStages()).sort()) === JSON.stringify(stored) || undefined;
      },
      'no stage leaked by the kill: the provider and the store agree',
      15_000,
    );
    // A comes back (as a follower); the Media Server reconnects to it.
    await sys.startApi();
    await waitFor(async () => (await fetch(`${sys.apiUrl}/ready`)).status === 200 || undefined, 'A ready again', 15_000);
  });

  test('Redis killed and restarted empty: joins 503 meanwhile, media keeps flowing, then everything recovers by itself with no stage leaked', async () => {
    broadcaster = await Broadcaster.publish({ url: sys.whipUrl, token: (await sys.ingestToken()).token, seed: 7 });
    await waitFor(async () => (await packetsIntoStages()) > 100 || undefined, 'media flows into the stages', 20_000);

    await redis.kill();
    const downAt = Date.now();
    const during = await Promise.all([post(`${sys.apiUrl}/api/viewers/join`, {}), post(`${b.url}/api/viewers/join`, {})]);
    for (const a of during) {
      assert.equal(a.status, 503);
      assert.equal(a.body.error.code, 'UNAVAILABLE');
      assert.ok(Number(a.retryAfter) > 0);
    }
    const answeredMs = Date.now() - downAt;
    const p0 = await packetsIntoStages();
    await waitFor(async () => (await packetsIntoStages()) > p0 + 100 || undefined, 'media keeps flowing while Redis is down', 10_000);
    const flowed = (await packetsIntoStages()) - p0;

    await redis.restart();
    const upAt = Date.now();
    await waitFor(
      async () => {
        const [x, y] = await Promise.all([post(`${sys.apiUrl}/api/viewers/join`, {}), post(`${b.url}/api/viewers/join`, {})]);
        return (x.status === 201 && y.status === 201) || undefined;
      },
      'joins succeed on both API Servers',
      20_000,
      100,
    );
    const recoveredMs = Date.now() - upAt;
    // The store was emptied: the scaler adopts the provider's stages again — the two sets agree, nothing leaked.
    await waitFor(
      async () => {
        const stored = (await seatsInRedis()).map((s) => s.arn).sort();
        const remote = (await providerStages()).sort();
        return (stored.length > 0 && JSON.stringify(stored) === JSON.stringify(remote)) || undefined;
      },
      'store and provider agree',
      20_000,
    );
    // The Media Server registered again (its heartbeat met an API Server that forgot it) and still publishes.
    await sys.media.waitForLog((l) => l.msg === 'registered' && Number(l.reRegistrations) >= 1, 'Media Server re-registered', 20_000);
    const p1 = await packetsIntoStages();
    await waitFor(async () => (await packetsIntoStages()) > p1 + 100 || undefined, 'media flows after recovery', 10_000);
    console.log(
      `redis restart (data lost): joins refused with 503 within ${answeredMs} ms; ${flowed} packets reached the stages while Redis was down; ` +
        `joins succeed on both API Servers ${recoveredMs} ms after Redis returned; provider stages = store stages (${(await providerStages()).length})`,
    );
  });

  test('B cut off from Redis for 30 s: B answers 503 while A keeps seating; B recovers by itself and resyncs its Media Server socket', async () => {
    const tally = { aOk: 0, aOther: 0, b503: 0, bOk: 0, bOther: 0 };
    proxy.cut();
    const cutAt = Date.now();
    let readyChecked = false;
    // The 30-s cut is the scenario itself: probe both servers throughout it (bounded: one round a second).
    while (Date.now() - cutAt < 30_000) {
      const round = Date.now();
      const [x, y] = await Promise.all([post(`${sys.apiUrl}/api/viewers/join`, {}), post(`${b.url}/api/viewers/join`, {})]);
      if (x.status === 201) {
        tally.aOk++;
        await post(`${sys.apiUrl}/api/viewers/${x.body.viewerId}`, undefined, 'DELETE');
      } else tally.aOther++;
      if (y.status === 503 && y.body?.error?.code === 'UNAVAILABLE') tally.b503++;
      else if (y.status === 201) tally.bOk++;
      else tally.bOther++;
      if (!readyChecked && Date.now() - cutAt > 3000) {
        const r = await fetch(`${b.url}/ready`);
        assert.equal(r.status, 503, 'B is not ready while cut off');
        readyChecked = true;
      }
      await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - round))));
    }
    proxy.resume();
    const resumedAt = Date.now();
    const back = await waitFor(
      async () => {
        const y = await post(`${b.url}/api/viewers/join`, {});
        return y.status === 201 ? y : undefined;
      },
      'B seats again',
      20_000,
      100,
    );
    const recoveredMs = Date.now() - resumedAt;
    assert.ok(back);
    await waitFor(() => probe.closes.some((c) => c.at >= resumedAt && c.code === 1001 && c.reason === 'resync') || undefined, "B's socket told to resync", 10_000);
    await waitFor(async () => (await fetch(`${b.url}/ready`)).status === 200 || undefined, 'B ready again', 10_000);
    assert.equal(tally.aOther, 0, 'A kept seating throughout');
    assert.ok(tally.aOk >= 25);
    assert.equal(tally.bOk, 0, 'B seated nobody while cut off');
    assert.equal(tally.bOther, 0);
    const seats = await seatsInRedis();
    assert.deepEqual(seats.filter((s) => s.seats > s.capacity), []);
    console.log(
      `B cut off from Redis for 30 s: A joins ok ${tally.aOk}, other ${tally.aOther}; B joins 503 ${tally.b503}, ok ${tally.bOk}; ` +
        `B seats again ${recoveredMs} ms after the cut ended; overfilled stages 0`,
    );
  });
});
