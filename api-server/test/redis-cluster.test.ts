/**
 * Several API Servers on one real redis-server (in this process, on real ports): one scaler at a time (the lease),
 * joins on any server never overfill a stage, announcements reach the Media Server sockets of every server, and a
 * Redis outage is a fast 503 that heals by itself — with no stage leaked at the provider.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { ServerMessageSchema, type ServerMessage } from '@stagecast/protocol';
import { startRedis, type RedisServer } from '../../e2e/helpers/redis.js';
import { ConfigError, parseConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { redisOptions, redisPrefix } from '../src/store/redis.js';
import { RedisLease } from '../src/store/redis-lease.js';
import { apiKey, call, SECRETS, startApi, type TestApi } from './helpers/api.js';
import { startFakeStageAdmin, type FakeStageAdmin } from './helpers/fake-stage-admin.js';
import { waitFor } from './helpers/wait.js';

let redis: RedisServer;
before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis.stop();
});

interface Socket {
  messages: ServerMessage[];
  closed: Promise<{ code: number; reason: string }>;
  close(): void;
}
async function mediaSocket(api: TestApi): Promise<Socket> {
  const ws = new WebSocket(`${api.wsUrl}/ws?type=media-server&serverId=test`, { headers: { authorization: `Bearer ${SECRETS.media}` } });
  const messages: ServerMessage[] = [];
  ws.on('message', (d) => messages.push(ServerMessageSchema.parse(JSON.parse(d.toString()))));
  const closed = new Promise<{ code: number; reason: string }>((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() })));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { messages, closed, close: () => ws.terminate() };
}

function cluster(stage: FakeStageAdmin, pool: string, extra: Record<string, string> = {}) {
  return (o: { leaseMs?: number } = {}) =>
    startApi({
      stageUrl: stage.url,
      logLevel: 'warn',
      env: {
        REDIS_URL: redis.url,
        STAGE_POOL_ID: pool,
        SCALER_LEASE_MS: String(o.leaseMs ?? 1000),
        STAGE_CAPACITY: '4',
        MIN_STAGES: '1',
        MAX_STAGES: '5',
        SCALE_DOWN_COOLDOWN: '600',
        CONSOLIDATION_ENABLED: 'false',
        ...extra,
      },
    });
}

const stagesOf = async (api: TestApi) => (await call(`${api.url}/api/stages`, { headers: apiKey })).body.stages as { stageArn: string; viewers: number; capacity: number }[];

test('lease: one holder at a time; when it dies (no renewal, no release) another takes over within 2 lease periods; a stop hands it over at once', async () => {
  const leaseMs = 600;
  const log = createLogger('silent');
  const key = `${redisPrefix('lease-test')}lease:scaler`;
  const clients = [0, 1, 2].map(() => new Redis(redis.url, redisOptions()));
  for (const c of clients) await c.connect();
  const [l1, l2, l3] = clients.map((redis) => new RedisLease({ redis, key, leaseMs, log }));
  try {
    await l1!.start();
    assert.equal(l1!.held, true);
    await l2!.start();
    assert.equal(l2!.held, false);
    // l1 dies: its link goes, so it neither renews nor releases; its key lives out its PX.
    const diedAt = Date.now();
    clients[0]!.disconnect();
    let both = 0;
    await waitFor(
      () => {
        if (l1!.held && l2!.held) both++;
        return l2!.held;
      },
      { timeoutMs: 3 * leaseMs, intervalMs: 10, what: 'l2 takes the lease' },
    );
    const took = Date.now() - diedAt;
    assert.ok(took <= 2 * leaseMs, `taken over in ${took} ms (≤ ${2 * leaseMs})`);
    assert.equal(both, 0, 'never two holders by their own account');
    assert.equal(l1!.held, false);
    // A clean stop releases: the next try of another takes it (a third of a lease), not a whole expiry.
    await l3!.start();
    const stoppedAt = Date.now();
    await l2!.stop();
    await waitFor(() => l3!.held, { timeoutMs: 2 * leaseMs, intervalMs: 10, what: 'l3 takes the released lease' });
    assert.ok(Date.now() - stoppedAt < leaseMs, 'released, not expired');
  } finally {
    for (const l of [l1, l2, l3]) await l!.stop();
    for (const c of clients) c.disconnect();
  }
});

test('two API Servers on one Redis: one scaler; 30 joins spread over both fill 5 stages of 4 exactly; each announcement reaches both servers\' sockets once; the lease moves when the holder stops', async () => {
  const stage = await startFakeStageAdmin(SECRETS.stage);
  const start = cluster(stage, 'two');
  const a = await start();
  let b: TestApi | undefined;
  try {
    await waitFor(() => a.server.services.lease.held, { what: 'A holds the lease' });
    b = await start();
    await waitFor(async () => (await stagesOf(a)).length === 1, { what: 'MIN_STAGES stage' });
    assert.equal(b.server.services.lease.held, false, 'one scaler');
    const metrics = async (api: TestApi) => (await call(`${api.url}/metrics`)).body as string;
    assert.match(await metrics(a), /^stagecast_scaler_lease_held 1$/m);
    assert.match(await metrics(b), /^stagecast_scaler_lease_held 0$/m);
    const [wsA, wsB] = [await mediaSocket(a), await mediaSocket(b)];

    const joins = await Promise.all(
      Array.from({ length: 30 }, (_, i) => call(`${(i % 2 ? b! : a).url}/api/viewers/join`, { headers: apiKey, json: {} })),
    );
    const ok = joins.filter((j) => j.status === 201);
    const refused = joins.filter((j) => j.status === 503);
    assert.equal(ok.length + refused.length, 30, JSON.stringify(joins.find((j) => j.status !== 201 && j.status !== 503)?.body));
    const stages = await stagesOf(b);
    assert.equal(stages.length, 5);
    for (const s of stages) assert.ok(s.viewers <= s.capacity, `${s.stageArn}: ${s.viewers}/${s.capacity}`);
    assert.equal(ok.length, 20, 'every seat of MAX_STAGES × STAGE_CAPACITY taken');
    assert.equal(stages.reduce((n, s) => n + s.viewers, 0), 20);
    for (const r of refused) assert.equal(r.body.error.code, 'CAPACITY_EXCEEDED');

    // The 4 stages created after the sockets opened were announced on both, once each.
    const created = (s: Socket) => s.messages.filter((m) => m.type === 'stage_created').map((m) => m.data.stageArn).sort();
    await waitFor(() => created(wsA).length === 4 && created(wsB).length === 4, { what: 'stage_created on both sockets' });
    assert.deepEqual(created(wsB), created(wsA));
    assert.equal(new Set(created(wsB)).size, 4, 'no duplicate');
    const stored = new Set(stages.map((s) => s.stageArn));
    for (const arn of created(wsB)) assert.ok(stored.has(arn));

    // A viewer seated through B is known to A (one store), and leaves through A.
    const v = ok.find((_, i) => i % 2 === 1)!.body as { viewerId: string };
    assert.equal((await call(`${a.url}/api/viewers/${v.viewerId}/heartbeat`, { headers: apiKey, json: {} })).status, 200);
    assert.equal((await call(`${a.url}/api/viewers/${v.viewerId}`, { method: 'DELETE', headers: apiKey })).status, 204);

    const stoppedAt = Date.now();
    await a.stop();
    await waitFor(() => b!.server.services.lease.held, { timeoutMs: 2000, what: 'B takes the released lease' });
    assert.ok(Date.now() - stoppedAt < 2000);
    assert.match(await metrics(b), /^stagecast_relay_events_total\{event="received"\} [1-9]/m);
    wsA.close();
    wsB.close();
  } finally {
    await a.stop();
    await b?.stop();
    await stage.close();
  }
});

test('Redis outage: joins answer 503 UNAVAILABLE with Retry-After at once, /ready 503, /health 200; when Redis returns empty, the pool is adopted again (no stage leaked), joins succeed, Media Server sockets are told to resync', async () => {
  const stage = await startFakeStageAdmin(SECRETS.stage);
  const api = await cluster(stage, 'outage', { MIN_STAGES: '2' })({ leaseMs: 1000 });
  try {
    await waitFor(async () => (await stagesOf(api)).length === 2, { what: 'MIN_STAGES stages' });
    const ws = await mediaSocket(api);
    await redis.kill();

    const t0 = Date.now();
    const join = await call(`${api.url}/api/viewers/join`, { headers: apiKey, json: {} });
    const tookMs = Date.now() - t0;
    assert.equal(join.status, 503);
    assert.equal(join.body.error.code, 'UNAVAILABLE');
    assert.ok(Number(join.headers.get('retry-after')) > 0);
    assert.ok(tookMs < 2500, `answered in ${tookMs} ms`);
    const ready = await call(`${api.url}/ready`);
    assert.equal(ready.status, 503);
    assert.equal(ready.body.checks.store.ok, false);
    assert.equal((await call(`${api.url}/health`)).status, 200);
    const hb = await call(`${api.url}/api/media/heartbeat`, { headers: { authorization: `Bearer ${SECRETS.media}` }, json: { serverId: 'ms-x' } });
    assert.equal(hb.status, 503);
    await waitFor(() => !api.server.services.lease.held, { what: 'the lease is dropped while Redis is away' });

    const back = Date.now();
    await redis.restart(); // without persistence: every key is gone
    const seated = await waitFor(
      async () => {
        const j = await call(`${api.url}/api/viewers/join`, { headers: apiKey, json: {} });
        return j.status === 201 ? j : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 100, what: 'a join succeeds again' },
    );
    assert.ok(seated);
    const recoveredMs = Date.now() - back;
    // The stages the provider has are the stages the store has: adopted again, none created twice, none leaked.
    await waitFor(
      async () => {
        const stored = (await stagesOf(api)).map((s) => s.stageArn).sort();
        const remote = [...stage.stages.values()].map((x) => x.stageArn).sort();
        return stored.length >= 2 && JSON.stringify(stored) === JSON.stringify(remote);
      },
      { timeoutMs: 10_000, what: 'store and provider agree' },
    );
    const closed = await ws.closed;
    assert.deepEqual(closed, { code: 1001, reason: 'resync' });
    assert.equal((await call(`${api.url}/ready`)).status, 200);
    console.log(`redis outage: join refused in ${tookMs} ms; recovered ${recoveredMs} ms after Redis returned`);
  } finally {
    await api.stop();
    await stage.close();
  }
});

test('joins waiting on a follower count for the scaler: a burst on B alone grows the pool for all of them at once', async () => {
  const stage = await startFakeStageAdmin(SECRETS.stage);
  const start = cluster(stage, 'waiting', { MAX_STAGES: '6', SCALE_UP_THRESHOLD: '1' });
  const a = await start();
  let b: TestApi | undefined;
  try {
    await waitFor(() => a.server.services.lease.held, { what: 'A holds the lease' });
    b = await start();
    await waitFor(async () => (await stagesOf(a)).length === 1, { what: 'MIN_STAGES stage' });
    const joins = await Promise.all(Array.from({ length: 16 }, () => call(`${b!.url}/api/viewers/join`, { headers: apiKey, json: {} })));
    assert.deepEqual(joins.map((j) => j.status), Array(16).fill(201));
    const events = (await call(`${a.url}/api/scaling/events?limit=50`, { headers: apiKey })).body.events as { action: string; reason: string }[];
    assert.ok(
      events.some((e) => e.action === 'create' && /joins waiting/.test(e.reason)),
      `the scaler planned for B's waiting joins: ${JSON.stringify(events.map((e) => e.reason))}`,
    );
  } finally {
    await b?.stop();
    await a.stop();
    await stage.close();
  }
});

test('config: REDIS_URL must be redis:// or rediss:// and is never echoed (it may hold a password); SCALER_LEASE_MS is bounded; unset means SQLite', () => {
  const base = { API_SECRET_KEY: SECRETS.apiKey, MEDIA_SERVER_SECRET: SECRETS.media, STAGE_SERVER_SECRET: SECRETS.stage };
  assert.equal(parseConfig(base).redis, undefined);
  assert.deepEqual(parseConfig({ ...base, REDIS_URL: 'redis://:pw@127.0.0.1:6379/2' }).redis, { url: 'redis://:pw@127.0.0.1:6379/2', leaseMs: 10_000 });
  assert.equal(parseConfig({ ...base, REDIS_URL: 'rediss://h:6380', SCALER_LEASE_MS: '2000' }).redis?.leaseMs, 2000);
  for (const [k, v] of [
    ['REDIS_URL', 'http://:s3cret-pass@127.0.0.1:6379'],
    ['SCALER_LEASE_MS', '100'],
    ['SCALER_LEASE_MS', '600000'],
  ] as const) {
    assert.throws(
      () => parseConfig({ ...base, REDIS_URL: 'redis://127.0.0.1:6379', [k]: v }),
      (err: Error) => err instanceof ConfigError && err.message.includes(k) && !err.message.includes('s3cret-pass'),
      `${k}=${v}`,
    );
  }
});

test('Redis with persistence killed and restarted: seats, stages and the Media Server registration survive; the API Server carries on by itself', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sc-redis-aof-'));
  const persistent = await startRedis({ persistDir: dir });
  const stage = await startFakeStageAdmin(SECRETS.stage);
  const api = await startApi({
    stageUrl: stage.url,
    logLevel: 'warn',
    env: { REDIS_URL: persistent.url, SCALER_LEASE_MS: '1000', STAGE_CAPACITY: '4', MIN_STAGES: '1', CONSOLIDATION_ENABLED: 'false' },
  });
  try {
    await waitFor(async () => (await stagesOf(api)).length === 1, { what: 'MIN_STAGES stage' });
    const media = { authorization: `Bearer ${SECRETS.media}` };
    assert.equal((await call(`${api.url}/api/media/register`, { headers: media, json: { serverId: 'ms-aof', ipAddress: '127.0.0.1', port: 3001 } })).status, 200);
    const v = await call(`${api.url}/api/viewers/join`, { headers: apiKey, json: {} });
    assert.equal(v.status, 201);
    const before = (await stagesOf(api)).map((s) => s.stageArn);

    await persistent.kill();
    assert.equal((await call(`${api.url}/api/viewers/${v.body.viewerId}/heartbeat`, { headers: apiKey, json: {} })).status, 503);
    await persistent.restart(); // the append-only file brings every key back
    await waitFor(async () => (await call(`${api.url}/api/viewers/${v.body.viewerId}/heartbeat`, { headers: apiKey, json: {} })).status === 200, {
      timeoutMs: 10_000,
      what: 'the seat answers again',
    });
    assert.equal((await call(`${api.url}/api/media/heartbeat`, { headers: media, json: { serverId: 'ms-aof' } })).status, 200, 'still registered');
    assert.deepEqual((await stagesOf(api)).map((s) => s.stageArn), before);
    await waitFor(() => api.server.services.lease.held, { what: 'the lease is held again' });
    assert.equal((await call(`${api.url}/api/viewers/join`, { headers: apiKey, json: {} })).status, 201);
  } finally {
    await api.stop();
    await stage.close();
    await persistent.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an API Server started while Redis is away starts anyway (bounded), answers 503 UNAVAILABLE, and recovers by itself when Redis comes', async () => {
  const late = await startRedis();
  await late.kill();
  const stage = await startFakeStageAdmin(SECRETS.stage);
  const t0 = Date.now();
  const api = await startApi({ stageUrl: stage.url, logLevel: 'silent', env: { REDIS_URL: late.url, SCALER_LEASE_MS: '1000', MIN_STAGES: '1' } });
  try {
    assert.ok(Date.now() - t0 < 10_000, 'start is bounded');
    const j = await call(`${api.url}/api/viewers/join`, { headers: apiKey, json: {} });
    assert.equal(j.status, 503);
    assert.equal(j.body.error.code, 'UNAVAILABLE');
    assert.equal((await call(`${api.url}/ready`)).status, 503);
    await late.restart();
    await waitFor(async () => (await call(`${api.url}/api/viewers/join`, { headers: apiKey, json: {} })).status === 201, {
      timeoutMs: 15_000,
      intervalMs: 100,
      what: 'joins succeed once Redis is there',
    });
    await waitFor(async () => (await call(`${api.url}/ready`)).status === 200, { what: 'ready' });
  } finally {
    await api.stop();
    await stage.close();
    await late.stop();
  }
});
