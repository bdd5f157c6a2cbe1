/** Failure paths: provider errors, pacing, a full pool, silent viewers, bad configuration. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ScalingEventsResponseSchema, StageListResponseSchema, ViewerJoinResponseSchema } from '@stagecast/protocol';
import { ConfigError, parseConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { TokenBucket, PacedProvider } from '../src/providers/pacing.js';
import { TransientProviderError, type StageProvider } from '../src/providers/provider.js';
import { apiKey, call, LogCapture, SECRETS, startApi } from './helpers/api.js';
import { startFakeStageAdmin } from './helpers/fake-stage-admin.js';
import { waitFor } from './helpers/wait.js';
import { startStageBackend } from './helpers/stage-backend.js';

test('config fails fast naming every bad variable', () => {
  assert.throws(
    () => parseConfig({ PORT: 'x', STAGE_CAPACITY: '0', SCALE_UP_THRESHOLD: '2', ENABLE_MEDIA_SERVER: 'maybe' }),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      for (const name of ['PORT', 'API_SECRET_KEY', 'MEDIA_SERVER_SECRET', 'STAGE_SERVER_SECRET', 'STAGE_CAPACITY', 'SCALE_UP_THRESHOLD', 'ENABLE_MEDIA_SERVER']) {
        assert.match(err.message, new RegExp(`\\b${name}\\b`));
      }
      return true;
    },
  );
  const c = parseConfig({ API_SECRET_KEY: SECRETS.apiKey, MEDIA_SERVER_SECRET: SECRETS.media, STAGE_SERVER_SECRET: SECRETS.stage });
  assert.equal(c.port, 3000);
  assert.equal(c.scaling.capacity, 50);
  assert.equal(c.scaling.scaleDownCooldownMs, 60_000);
  assert.equal(c.publicUrl, 'http://127.0.0.1:3000', 'the WHIP front door is under it');
  assert.equal(c.enableMediaServer, true);
  // The stage server refuses a secret under 16 characters; the API Server must not accept one that it would refuse.
  assert.throws(() => parseConfig({ API_SECRET_KEY: SECRETS.apiKey, MEDIA_SERVER_SECRET: SECRETS.media, STAGE_SERVER_SECRET: '0123456789ab' }), /STAGE_SERVER_SECRET/);
});

test('the token bucket paces calls to the provider rate', async () => {
  const bucket = new TokenBucket(20, 1);
  const t0 = performance.now();
  for (let i = 0; i < 11; i++) await bucket.acquire();
  const ms = performance.now() - t0;
  assert.ok(ms >= 450, `11 calls at 20/s with no burst take ≥ 0.5 s (took ${ms.toFixed(0)} ms)`);
});

test('transient provider failures are retried with backoff; final ones are not', async () => {
  let calls = 0;
  const flaky: StageProvider = {
    kind: 'flaky',
    maxCallsPerSecond: 1000,
    async createStage() {
      throw new Error('unused');
    },
    async deleteStage() {
      calls++;
      if (calls < 3) throw new TransientProviderError('503');
    },
    async listStages() {
      calls++;
      throw new Error('400 final');
    },
    async health() {
      return { ok: true };
    },
  };
  const log = createLogger('silent', new LogCapture());
  const p = new PacedProvider(flaky, log, { attempts: 5, baseDelayMs: 5, maxDelayMs: 20 });
  await p.deleteStage('arn:stagecast:ivs:local:000000000000:stage/x' as never);
  assert.equal(calls, 3);
  calls = 0;
  await assert.rejects(p.listStages(), /final/);
  assert.equal(calls, 1);
});

test('a stage create that keeps failing is retried and reported (create_failed), never half-recorded; the pool recovers', async () => {
  const stage = await startFakeStageAdmin(SECRETS.stage);
  const api = await startApi({ stageUrl: stage.url, env: { STAGE_CAPACITY: '1' }, logLevel: 'warn' });
  try {
    await waitFor(async () => StageListResponseSchema.parse((await call(`${api.url}/api/stages`, { headers: apiKey })).body).stages.length === 1);
    // As many failures as one create has attempts: the next create fails for good, the one after succeeds.
    stage.failNext(5);
    assert.equal((await call(`${api.url}/api/viewers/join`, { headers: apiKey, json: {} })).status, 201); // fills the stage → scale-up
    const ev = await waitFor(
      async () => {
        const e = ScalingEventsResponseSchema.parse((await call(`${api.url}/api/scaling/events`, { headers: apiKey })).body).events;
        return e.some((x) => x.action === 'create_failed') && e.filter((x) => x.action === 'create').length === 2 ? e : undefined;
      },
      { timeoutMs: 15_000, what: 'a failed then a successful create' },
    );
    assert.equal(ev.find((x) => x.action === 'create_failed')?.stageArn, null);
    const stages = StageListResponseSchema.parse((await call(`${api.url}/api/stages`, { headers: apiKey })).body).stages;
    assert.equal(stages.length, 2);
    assert.deepEqual([...stage.stages.values()].map((s) => s.stageArn), stages.map((s) => s.stageArn), 'store and provider agree');
    assert.ok(api.logs.lines().some((l) => l.msg === 'provider.retry'));
    assert.ok(api.logs.lines().some((l) => l.msg === 'stage.create_failed'));
  } finally {
    await api.stop();
    await stage.close();
  }
});

test('a full pool at MAX_STAGES answers 503 CAPACITY_EXCEEDED with Retry-After', async () => {
  const stage = await startFakeStageAdmin(SECRETS.stage);
  const api = await startApi({ stageUrl: stage.url, env: { STAGE_CAPACITY: '2', MAX_STAGES: '1' }, logLevel: 'warn' });
  try {
    await waitFor(async () => StageListResponseSchema.parse((await call(`${api.url}/api/stages`, { headers: apiKey })).body).stages.length === 1);
    for (let i = 0; i < 2; i++) assert.equal((await call(`${api.url}/api/viewers/join`, { headers: apiKey, json: {} })).status, 201);
    const r = await call(`${api.url}/api/viewers/join`, { headers: apiKey, json: {} });
    assert.equal(r.status, 503);
    assert.equal(r.body.error.code, 'CAPACITY_EXCEEDED');
    assert.ok(Number(r.headers.get('retry-after')) > 0);
  } finally {
    await api.stop();
    await stage.close();
  }
});

test('a viewer silent for 3 heartbeat intervals is released; one that heartbeats keeps its seat', async () => {
  const stage = await startFakeStageAdmin(SECRETS.stage);
  const api = await startApi({ stageUrl: stage.url, env: { VIEWER_HEARTBEAT_INTERVAL_MS: '100' }, logLevel: 'warn' });
  try {
    const silent = ViewerJoinResponseSchema.parse((await call(`${api.url}/api/viewers/join`, { headers: apiKey, json: {} })).body);
    const alive = ViewerJoinResponseSchema.parse((await call(`${api.url}/api/viewers/join`, { headers: apiKey, json: {} })).body);
    assert.equal(alive.heartbeatIntervalMs, 100);
    await waitFor(
      async () => {
        assert.equal((await call(`${api.url}/api/viewers/${alive.viewerId}/heartbeat`, { method: 'POST', headers: apiKey })).status, 200);
        return await api.server.services.store.getViewer(silent.viewerId) === undefined;
      },
      { timeoutMs: 3000, intervalMs: 50, what: 'silent viewer released' },
    );
    assert.ok(await api.server.services.store.getViewer(alive.viewerId));
    const hb = await call(`${api.url}/api/viewers/${silent.viewerId}/heartbeat`, { method: 'POST', headers: apiKey });
    assert.equal(hb.status, 404);
  } finally {
    await api.stop();
    await stage.close();
  }
});

test('ENABLE_MEDIA_SERVER=false: no /api/media routes and no WebSocket', async () => {
  const stage = await startFakeStageAdmin(SECRETS.stage);
  const api = await startApi({ stageUrl: stage.url, env: { ENABLE_MEDIA_SERVER: 'false' }, logLevel: 'warn' });
  try {
    const r = await call(`${api.url}/api/media/stages`, { headers: { authorization: `Bearer ${SECRETS.media}` } });
    assert.equal(r.status, 404);
    assert.equal((await call(`${api.url}/api/viewers/join`, { headers: apiKey, json: {} })).status, 201);
  } finally {
    await api.stop();
    await stage.close();
  }
});

test('while running, a stage of our pool that appears at the provider unrecorded is adopted by the periodic reconciliation', async () => {
  const backend = await startStageBackend(SECRETS.stage);
  const api = await startApi({
    stageUrl: backend.url,
    env: { STAGE_POOL_ID: 'periodic', MIN_STAGES: '1' },
    tune: (c) => {
      c.scaling.reconcileIntervalMs = 200;
    },
  });
  try {
    await waitFor(async () => (await backend.list()).length === 1, { what: 'the first stage' });
    // A create whose answer we never recorded (timed out at our end) leaves a stage of ours at the provider.
    const orphan = await backend.createDirect({ 'stagecast:pool': 'periodic', 'stagecast:created-at': new Date().toISOString() });
    await waitFor(
      async () => {
        const r = StageListResponseSchema.parse((await call(`${api.url}/api/stages`, { headers: apiKey })).body);
        return r.stages.some((s) => s.stageArn === orphan.stageArn);
      },
      { what: 'the orphan adopted', timeoutMs: 5000 },
    );
    const ev = ScalingEventsResponseSchema.parse((await call(`${api.url}/api/scaling/events`, { headers: apiKey })).body).events;
    assert.ok(ev.some((e) => e.action === 'adopt' && e.stageArn === orphan.stageArn));
  } finally {
    await api.stop();
    await backend.close();
  }
});
