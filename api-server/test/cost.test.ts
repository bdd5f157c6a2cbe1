/**
 * The cost meter over a real SQLite file (participant-time per stage by the minute, resumed after a restart), and
 * GET /api/cost and /metrics through app.inject().
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CostResponseSchema, localStageArn, type ServerId, type StageArn, type StageId, type ViewerId } from '@stagecast/protocol';
import { buildApp } from '../src/app.js';
import { parseConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { Metrics } from '../src/metrics.js';
import type { StageProvider } from '../src/providers/provider.js';
import { CostMeter } from '../src/services/CostMeter.js';
import { createServices } from '../src/services.js';
import { SqliteStore } from '../src/store/sqlite.js';
import { LogCapture, SECRETS } from './helpers/api.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'sc-cost-'));
  dirs.push(d);
  return d;
}
const log = createLogger('silent');
const T0 = Date.parse('2026-12-05T20:00:30.000Z'); // mid-minute, so intervals cross minute boundaries

async function addStage(store: SqliteStore, id: string, at = T0): Promise<StageArn> {
  const arn = localStageArn(id);
  await store.insertStage({
    arn,
    id: id as StageId,
    name: id,
    capacity: 50,
    state: 'active',
    whipUrl: `http://127.0.0.1:1/whip/${id}`,
    playback: { type: 'whep', url: `http://127.0.0.1:1/whep/${id}` },
    tags: {},
    createdAt: at,
    emptySince: at,
  });
  return arn;
}
async function seat(store: SqliteStore, id: string, stage: StageArn, now = T0): Promise<void> {
  await store.reserveSeat({ id: id as ViewerId, userId: null, now }, { stageArn: stage });
}
async function legs(store: SqliteStore, server: string, arns: StageArn[], state: 'online' | 'offline' = 'online'): Promise<void> {
  await store.upsertMediaServer({
    id: server as ServerId,
    ip: '127.0.0.1',
    port: 3001,
    state,
    registeredAt: T0,
    lastHeartbeat: T0,
    publisherOnline: true,
    legs: arns.map((stageArn) => ({ stageArn, state: 'connected' as const })),
  });
}

function meter(store: SqliteStore, clock: { t: number }, maxGapMs = 300_000) {
  return new CostMeter({
    store,
    metrics: new Metrics(store),
    log,
    config: { pricePerParticipantHour: 0.072, tickMs: 3_600_000, maxGapMs },
    now: () => clock.t,
  });
}

test('meters every seated viewer and each connected leg of an online Media Server, split by minute and by stage', async () => {
  const store = new SqliteStore(tempDir());
  const clock = { t: T0 };
  const a = await addStage(store, 'a');
  const b = await addStage(store, 'b');
  for (const v of ['v1', 'v2', 'v3']) await seat(store, v, a);
  await seat(store, 'v4', b);
  await legs(store, 'ms-1', [a, b]);
  await legs(store, 'ms-old', [a], 'offline'); // an offline server's legs are not billed
  const m = meter(store, clock);
  await m.start();
  clock.t += 90_000; // 20:00:30 → 20:02:00: 30 s + 60 s
  await store.releaseViewer('v4' as ViewerId, clock.t); // b: no viewer left, its leg still billed
  await m.tick(); // bills the 90 s with the pool held since the last tick, then samples it again
  clock.t += 30_000;
  await m.stop();

  const r = await m.report(T0 - 60_000, clock.t + 60_000);
  // a: (3 viewers + 1 leg) × 120 s = 480 s; b: (1 + 1) × 90 s + 1 × 30 s = 210 s → 690 s = 11.5 participant-minutes
  assert.equal(r.totals.participantMinutes, 11.5);
  assert.equal(r.totals.viewerHours, (3 * 120 + 90) / 3600);
  assert.equal(r.totals.publisherHours, (120 + 120) / 3600);
  assert.ok(Math.abs(r.totals.estimatedCost - (690 / 3600) * 0.072) < 1e-12);
  assert.deepEqual(
    r.stages.map((s) => [s.stageArn, Math.round(s.participantHours * 3600)]),
    [
      [a, 480],
      [b, 210],
    ],
  );
  const minutes = await store.listUsage(T0 - 60_000, clock.t + 60_000);
  assert.deepEqual(
    minutes.filter((x) => x.stageArn === a).map((x) => [new Date(x.minute).toISOString().slice(11, 19), x.viewerMs, x.publisherMs]),
    [
      ['20:00:00', 90_000, 30_000],
      ['20:01:00', 180_000, 60_000],
      ['20:02:00', 90_000, 30_000],
    ],
  );
  assert.deepEqual(r.live, { viewers: 3, publishers: 2, participants: 5, costPerHour: 5 * 0.072 });
  await store.close();
});

test('survives a restart: usage is read from the store, and the gap while down is metered with the pool as found (up to maxGapMs)', async () => {
  const dir = tempDir();
  const clock = { t: T0 };
  let store = new SqliteStore(dir);
  const a = await addStage(store, 'a');
  await seat(store, 'v1', a);
  let m = meter(store, clock);
  await m.start();
  clock.t += 60_000;
  await m.tick(); // 60 participant-seconds metered, then the process dies: the store goes before the meter can write again
  await store.close();
  await m.stop(); // (only clears its timer: the final write fails on the closed store, as it would in a crash)

  clock.t += 20_000; // down for 20 s
  store = new SqliteStore(dir);
  m = meter(store, clock, 30_000);
  await m.start(); // resumes: the 20-s gap is within maxGapMs → metered
  clock.t += 10_000;
  await m.stop();
  assert.equal((await m.report(T0 - 60_000, clock.t + 60_000)).totals.participantMinutes, (60 + 20 + 10) / 60);
  await store.close();

  clock.t += 3_600_000; // down for an hour: longer than maxGapMs → not metered (unknown), and said so
  store = new SqliteStore(dir);
  const logs = new LogCapture();
  m = new CostMeter({ store, metrics: new Metrics(store), log: createLogger('warn', logs), config: { pricePerParticipantHour: 0.072, tickMs: 3_600_000, maxGapMs: 30_000 }, now: () => clock.t });
  await m.start();
  clock.t += 60_000;
  await m.stop();
  assert.equal((await m.report(T0 - 60_000, clock.t + 60_000)).totals.participantMinutes, (60 + 20 + 10 + 60) / 60);
  assert.ok(logs.lines().some((l) => l.msg === 'cost.gap_not_metered'));
  await store.close();
});

test('report: the series averages participants per step; a window holds only its own minutes', async () => {
  const store = new SqliteStore(tempDir());
  const a = localStageArn('a');
  const m0 = Date.parse('2026-12-05T20:00:00.000Z');
  await store.accrueUsage(m0, m0 + 60_000, [{ stageArn: a, viewers: 4, publishers: 1 }]);
  await store.accrueUsage(m0 + 60_000, m0 + 180_000, [{ stageArn: a, viewers: 2, publishers: 1 }]);
  const m = meter(store, { t: m0 });
  const r = await m.report(m0, m0 + 180_000, 1);
  assert.deepEqual(
    r.series.map((p) => [p.viewers, p.publishers]),
    [
      [4, 1],
      [2, 1],
      [2, 1],
    ],
  );
  assert.deepEqual((await m.report(m0, m0 + 180_000, 3)).series.map((p) => [p.viewers, p.publishers]), [[8 / 3, 1]]);
  assert.equal((await m.report(m0 + 60_000, m0 + 120_000)).totals.participantMinutes, 3);
  await store.close();
});

// ---- the HTTP edge

const noProvider: StageProvider = {
  kind: 'none',
  maxCallsPerSecond: 5,
  createStage: () => Promise.reject(new Error('not in this test')),
  deleteStage: () => Promise.resolve(),
  listStages: () => Promise.resolve([]),
  health: () => Promise.resolve({ ok: true }),
};

async function app() {
  const config = parseConfig({
    API_SECRET_KEY: SECRETS.apiKey,
    MEDIA_SERVER_SECRET: SECRETS.media,
    STAGE_SERVER_SECRET: SECRETS.stage,
    DATA_DIR: tempDir(),
    LOG_LEVEL: 'silent',
    IVS_PRICE_PER_PARTICIPANT_HOUR: '0.5',
  });
  const s = await createServices(config, log, { provider: noProvider });
  return { s, app: buildApp(s) };
}

test('GET /api/cost: operator key only; the window from the store with the configured price', async () => {
  const { s, app: a } = await app();
  try {
    const arn = localStageArn('x');
    const m0 = Date.parse('2026-12-05T20:00:00.000Z');
    await s.store.accrueUsage(m0, m0 + 120_000, [{ stageArn: arn, viewers: 29, publishers: 1 }]); // 60 participant-minutes
    assert.equal((await a.inject({ method: 'GET', url: '/api/cost' })).statusCode, 401);
    assert.equal((await a.inject({ method: 'GET', url: '/api/cost', headers: { 'x-api-key': 'wrong-key-123' } })).statusCode, 403);
    const r = await a.inject({
      method: 'GET',
      url: `/api/cost?from=${encodeURIComponent('2026-12-05T19:00:00Z')}&to=${encodeURIComponent('2026-12-05T21:00:00Z')}&stepMinutes=1`,
      headers: { 'x-api-key': SECRETS.apiKey },
    });
    assert.equal(r.statusCode, 200, r.body);
    const body = CostResponseSchema.parse(r.json());
    assert.equal(body.pricePerParticipantHour, 0.5);
    assert.equal(body.totals.participantMinutes, 60);
    assert.equal(body.totals.participantHours, 1);
    assert.equal(body.totals.estimatedCost, 0.5);
    assert.deepEqual(body.stages.map((x) => x.stageArn), [arn]);
    assert.equal(body.series.length, 2);
    assert.equal(body.meteredUntil, new Date(m0 + 120_000).toISOString());
    // Outside the window: nothing.
    const before = CostResponseSchema.parse(
      (await a.inject({ method: 'GET', url: `/api/cost?to=${encodeURIComponent('2026-12-05T19:59:00Z')}`, headers: { 'x-api-key': SECRETS.apiKey } })).json(),
    );
    assert.equal(before.totals.participantMinutes, 0);
  } finally {
    await a.close();
    s.provider.stop();
    await s.store.close();
  }
});

test('GET /api/cost: bad input is a JSON 400 INVALID_INPUT naming the problem', async () => {
  const { s, app: a } = await app();
  try {
    for (const q of ['from=yesterday', 'from=2026-12-05T21:00:00Z&to=2026-12-05T20:00:00Z', 'from=2026-01-01T00:00:00Z&to=2026-12-01T00:00:00Z', 'stepMinutes=0', 'foo=1']) {
      const r = await a.inject({ method: 'GET', url: `/api/cost?${q}`, headers: { 'x-api-key': SECRETS.apiKey } });
      assert.equal(r.statusCode, 400, q);
      const body = r.json() as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'INVALID_INPUT', q);
      assert.ok(body.error.message.length > 0);
    }
  } finally {
    await a.close();
    s.provider.stop();
    await s.store.close();
  }
});

test('/metrics: participant-seconds counter, live participants and the hourly estimate', async () => {
  const { s, app: a } = await app();
  try {
    const arn = localStageArn('m');
    await s.store.insertStage({ arn, id: 'm' as StageId, name: 'm', capacity: 5, state: 'active', whipUrl: 'http://127.0.0.1:1/w', playback: { type: 'whep', url: 'http://127.0.0.1:1/e' }, tags: {}, createdAt: T0, emptySince: T0 });
    await seat(s.store as SqliteStore, 'v1', arn);
    await seat(s.store as SqliteStore, 'v2', arn);
    await s.cost.start();
    await s.cost.stop(); // one final tick: a counter sample exists (maybe 0 s long)
    const text = (await a.inject({ method: 'GET', url: '/metrics' })).body;
    assert.match(text, /^stagecast_participants\{kind="viewer"\} 2$/m);
    assert.match(text, /^stagecast_participants\{kind="publisher"\} 0$/m);
    assert.match(text, /^stagecast_estimated_cost_per_hour 1$/m); // 2 × 0.5
    assert.match(text, /^# TYPE stagecast_participant_seconds_total counter$/m);
  } finally {
    await a.close();
    s.provider.stop();
    await s.store.close();
  }
});

test('config: the price and consolidation settings, their defaults, and every bad one named', async () => {
  const base = { API_SECRET_KEY: SECRETS.apiKey, MEDIA_SERVER_SECRET: SECRETS.media, STAGE_SERVER_SECRET: SECRETS.stage };
  const d = parseConfig(base);
  assert.equal(d.cost.pricePerParticipantHour, 0.072);
  assert.deepEqual(
    { ...d.consolidation },
    { enabled: true, sparseRatio: 0.5, intervalMs: 30_000, maxMoves: 500, moveTimeoutMs: 30_000 },
  );
  const c = parseConfig({ ...base, IVS_PRICE_PER_PARTICIPANT_HOUR: '0.1', CONSOLIDATION_ENABLED: 'false', CONSOLIDATION_SPARSE_RATIO: '0.25', CONSOLIDATION_INTERVAL_S: '2.5', CONSOLIDATION_MAX_MOVES: '10', VIEWER_HEARTBEAT_INTERVAL_MS: '2000' });
  assert.equal(c.cost.pricePerParticipantHour, 0.1);
  assert.deepEqual({ ...c.consolidation }, { enabled: false, sparseRatio: 0.25, intervalMs: 2500, maxMoves: 10, moveTimeoutMs: 6000 });
  assert.throws(
    () => parseConfig({ ...base, IVS_PRICE_PER_PARTICIPANT_HOUR: '-1', CONSOLIDATION_ENABLED: 'maybe', CONSOLIDATION_SPARSE_RATIO: '2', CONSOLIDATION_INTERVAL_S: '0', CONSOLIDATION_MAX_MOVES: '0' }),
    (e: Error) =>
      ['IVS_PRICE_PER_PARTICIPANT_HOUR', 'CONSOLIDATION_ENABLED', 'CONSOLIDATION_SPARSE_RATIO', 'CONSOLIDATION_INTERVAL_S', 'CONSOLIDATION_MAX_MOVES'].every((v) => e.message.includes(v)),
  );
});
