/**
 * The API Server with STAGE_PROVIDER=ivs, on a real port over a real SQLite file; only IVS's control API is mocked
 * (aws-sdk-client-mock): the pool on IVS stages, viewer and Media Server tokens, reconciliation after a crash
 * between CreateStage and the store write, viewer counts reconciled with ListParticipants, every call within 5 TPS.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeProtectedHeader, jwtVerify } from 'jose';
import { ScalingEventsResponseSchema, StagesResponseSchema, TokenResponseSchema, ViewerJoinResponseSchema, type StageArn, type ViewerId } from '@stagecast/protocol';
import { CREATED_AT_TAG, POOL_TAG } from '../src/providers/provider.js';
import { apiKey, call, mediaAuth, startApi, type TestApi } from './helpers/api.js';
import { awsError, FakeIvs, STAGE_OPS } from './helpers/fake-ivs.js';
import { waitFor } from './helpers/wait.js';

const ivs = new FakeIvs();
after(() => ivs.restore());

const IVS_ENV = { STAGE_PROVIDER: 'ivs', AWS_REGION: 'us-east-1', STAGE_POOL_ID: 'pool-a', IVS_VIEWER_RECONCILE_INTERVAL_S: '0' };

function reset(): void {
  ivs.stages.clear();
  ivs.calls.length = 0;
  ivs.participants.clear();
}

async function mediaStages(api: TestApi) {
  return StagesResponseSchema.parse((await call(`${api.url}/api/media/stages`, { headers: mediaAuth })).body).stages;
}

test('ivs: the pool is made of tagged IVS stages; viewers get SUBSCRIBE tokens and ivs playback, the Media Server PUBLISH tokens for endpoints.whip', async () => {
  reset();
  // The first create is throttled twice: retried within the budget, then recorded once.
  ivs.failNext('CreateStage', 2, () => awsError('ThrottlingException', 'Rate exceeded'));
  const api = await startApi({ stageUrl: 'http://127.0.0.1:9', env: { ...IVS_ENV, MIN_STAGES: '1' } });
  try {
    const [stage] = await waitFor(async () => {
      const s = await mediaStages(api);
      return s.length === 1 ? s : undefined;
    });
    const creates = ivs.callsOf('CreateStage');
    assert.equal(creates.length, 3);
    assert.equal(ivs.stages.size, 1, 'one stage at IVS for three attempts');
    const tags = creates[2]!.input.tags as Record<string, string>;
    assert.equal(tags[POOL_TAG], 'pool-a');
    assert.ok(Number.isFinite(Date.parse(tags[CREATED_AT_TAG]!)));
    assert.match(creates[2]!.input.name, /^sc-pool-a-[A-Za-z0-9_-]+$/);
    assert.match(stage!.stageArn, /^arn:aws:ivs:us-east-1:123456789012:stage\//);

    const join = await call(`${api.url}/api/viewers/join`, { headers: apiKey, json: { userId: 'alice' } });
    assert.equal(join.status, 201, JSON.stringify(join.body));
    const j = ViewerJoinResponseSchema.parse(join.body);
    assert.deepEqual(j.playback, { type: 'ivs' });
    assert.equal(j.stageArn, stage!.stageArn);
    const viewerToken = ivs.callsOf('CreateParticipantToken')[0]!;
    assert.equal(j.token, 'ivs-issued-token-1');
    assert.deepEqual(viewerToken.input.capabilities, ['SUBSCRIBE']);
    assert.equal(viewerToken.input.userId, j.viewerId);
    assert.deepEqual(viewerToken.input.attributes, { label: 'alice' });

    const tok = TokenResponseSchema.parse((await call(`${api.url}/api/media/token`, { headers: mediaAuth, json: { stageArn: stage!.stageArn, serverId: 'ms-1' } })).body);
    assert.equal(tok.whipUrl, ivs.stages.get(stage!.stageArn)!.endpoints!.whip, 'the stage’s stored endpoints.whip');
    assert.equal(tok.token, 'ivs-issued-token-2');
    assert.equal(tok.participantId, 'ivsP2');
    const pub = ivs.callsOf('CreateParticipantToken')[1]!;
    assert.deepEqual(pub.input.capabilities, ['PUBLISH']);
    assert.equal(pub.input.duration, 720);
    assert.ok(api.logs.lines().some((l) => l.msg === 'provider.retry' && l.op === 'CreateStage'));
    assert.doesNotMatch(api.logs.text, /ivs-issued-token/, 'tokens never logged');
    assert.ok(ivs.maxInWindow(STAGE_OPS, 990) <= 5);
  } finally {
    await api.stop();
  }
});

test('ivs: a create that fails for good (stage quota) is reported as create_failed and nothing is recorded', async () => {
  reset();
  ivs.failNext('CreateStage', 1, () => awsError('ServiceQuotaExceededException', 'You have reached the maximum number of stages', 402));
  const api = await startApi({ stageUrl: 'http://127.0.0.1:9', env: { ...IVS_ENV, MIN_STAGES: '1' }, logLevel: 'warn' });
  try {
    const events = await waitFor(async () => {
      const e = ScalingEventsResponseSchema.parse((await call(`${api.url}/api/scaling/events`, { headers: apiKey })).body).events;
      return e.some((x) => x.action === 'create_failed') ? e : undefined;
    });
    const failed = events.find((x) => x.action === 'create_failed')!;
    assert.equal(failed.stageArn, null);
    assert.match(JSON.stringify(failed.detail), /ServiceQuotaExceededException/);
    // Not retried by the pacer (final); the planner tries again on a later tick and then succeeds.
    await waitFor(async () => (await mediaStages(api)).length === 1);
    assert.equal(ivs.stages.size, 1);
  } finally {
    await api.stop();
  }
});

test('ivs: after a crash between CreateStage and the store write, the restarted server adopts the orphan by its tags (GetStage for its endpoint only) and leaves other pools alone', async () => {
  reset();
  const dataDir = mkdtempSync(join(tmpdir(), 'sc-ivs-'));
  try {
    const first = await startApi({ stageUrl: 'http://127.0.0.1:9', dataDir, env: { ...IVS_ENV, MIN_STAGES: '1' } });
    const [kept] = await waitFor(async () => {
      const s = await mediaStages(first);
      return s.length === 1 ? s : undefined;
    });
    // The crash: CreateStage reached IVS through the server's own (paced) provider, but the store write never happened.
    const orphan = await first.server.services.provider.createStage({
      name: 'sc-pool-a-orphan',
      tags: { [POOL_TAG]: 'pool-a', [CREATED_AT_TAG]: new Date().toISOString() },
    });
    assert.equal(await first.server.services.store.getStage(orphan.stageArn), undefined);
    await first.stop();
    const foreign = ivs.addStage('foreign', { tags: { [POOL_TAG]: 'pool-b' } });
    const untagged = ivs.addStage('untagged', {});
    ivs.calls.length = 0;

    const second = await startApi({ stageUrl: 'http://127.0.0.1:9', dataDir, env: { ...IVS_ENV, MIN_STAGES: '1' } });
    try {
      const stages = await mediaStages(second);
      assert.deepEqual(stages.map((s) => s.stageArn).sort(), [kept!.stageArn, orphan.stageArn].sort());
      const adopted = (await second.server.services.store.getStage(orphan.stageArn))!;
      assert.equal(adopted.whipUrl, ivs.stages.get(orphan.stageArn)!.endpoints!.whip);
      assert.deepEqual(adopted.playback, { type: 'ivs' });
      assert.deepEqual(ivs.callsOf('GetStage').map((c) => c.input.arn), [orphan.stageArn], 'GetStage for the adopted stage only');
      assert.ok(ivs.stages.has(foreign.arn!) && ivs.stages.has(untagged.arn!), 'stages not tagged with our pool are never touched');
      assert.equal(ivs.callsOf('DeleteStage').length, 0);
      const events = ScalingEventsResponseSchema.parse((await call(`${second.url}/api/scaling/events`, { headers: apiKey })).body).events;
      assert.ok(events.some((e) => e.action === 'adopt' && e.stageArn === orphan.stageArn));
      const tok = TokenResponseSchema.parse((await call(`${second.url}/api/media/token`, { headers: mediaAuth, json: { stageArn: orphan.stageArn } })).body);
      assert.equal(tok.whipUrl, adopted.whipUrl);
    } finally {
      await second.stop();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('ivs: an orphan whose endpoint IVS cannot give is deleted, not recorded without one; a stage IVS lost is dropped', async () => {
  reset();
  const dataDir = mkdtempSync(join(tmpdir(), 'sc-ivs-'));
  try {
    const first = await startApi({ stageUrl: 'http://127.0.0.1:9', dataDir, env: { ...IVS_ENV, MIN_STAGES: '1' } });
    const [lost] = await waitFor(async () => {
      const s = await mediaStages(first);
      return s.length === 1 ? s : undefined;
    });
    await first.stop();
    ivs.stages.delete(lost!.stageArn);
    const broken = ivs.addStage('nowhip', { tags: { [POOL_TAG]: 'pool-a' }, whip: false });
    const second = await startApi({ stageUrl: 'http://127.0.0.1:9', dataDir, env: { ...IVS_ENV, MIN_STAGES: '0' } });
    try {
      assert.equal(await second.server.services.store.getStage(lost!.stageArn), undefined, 'lost stage dropped');
      assert.equal(await second.server.services.store.getStage(broken.arn as StageArn), undefined);
      assert.equal(ivs.stages.has(broken.arn!), false, 'deleted at IVS');
      assert.ok(second.logs.lines().some((l) => l.msg === 'stage.orphan_without_whip_endpoint'));
    } finally {
      await second.stop();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('ivs: viewer accounting is reconciled with ListParticipants(CONNECTED): connected flags follow IVS, drift is logged and exported', async () => {
  reset();
  ivs.pageSize = 2;
  const api = await startApi({ stageUrl: 'http://127.0.0.1:9', env: { ...IVS_ENV, MIN_STAGES: '1' } });
  try {
    const [stage] = await waitFor(async () => {
      const s = await mediaStages(api);
      return s.length === 1 ? s : undefined;
    });
    const v1 = ViewerJoinResponseSchema.parse((await call(`${api.url}/api/viewers/join`, { headers: apiKey, json: {} })).body);
    const v2 = ViewerJoinResponseSchema.parse((await call(`${api.url}/api/viewers/join`, { headers: apiKey, json: {} })).body);
    const arn = stage!.stageArn;
    ivs.stages.get(arn)!.activeSessionId = 'st-1';
    ivs.participants.set(arn, [
      { participantId: 'ivsP1', userId: v1.viewerId, state: 'CONNECTED', published: false },
      { participantId: 'ivsP9', userId: 'pub_media1', state: 'CONNECTED', published: true }, // our Media Server's leg
      { participantId: 'ghost', userId: 'v_released_long_ago', state: 'CONNECTED', published: false },
    ]);
    ivs.calls.length = 0;
    const reconciler = api.server.services.ivsViewers!;
    const [drift] = await reconciler.runOnce();
    assert.deepEqual(drift, { stageArn: arn, seats: 2, ivsSubscribers: 2, unaccounted: 1, seatedNotConnected: 1 });
    const lp = ivs.callsOf('ListParticipants');
    assert.equal(lp.length, 2, '3 participants at 2 per page');
    assert.deepEqual({ ...lp[0]!.input }, { stageArn: arn, sessionId: 'st-1', filterByState: 'CONNECTED', maxResults: 100 });
    assert.equal((await api.server.services.store.getViewer(v1.viewerId as ViewerId))?.connected, true);
    assert.equal((await api.server.services.store.getViewer(v2.viewerId as ViewerId))?.connected, false);
    assert.ok(api.logs.lines().some((l) => l.msg === 'ivs.viewer_drift' && l.unaccounted === 1));
    const metrics = (await call(`${api.url}/metrics`)).body as string;
    assert.match(metrics, /^stagecast_ivs_unaccounted_subscribers 1$/m);
    assert.match(metrics, /^stagecast_ivs_subscribers 2$/m);

    // v1 leaves IVS (closed the tab) while still holding its seat: marked disconnected, the seat stays (heartbeats own it).
    ivs.participants.set(arn, []);
    const [after2] = await reconciler.runOnce();
    assert.equal(after2!.ivsSubscribers, 0);
    assert.equal((await api.server.services.store.getViewer(v1.viewerId as ViewerId))?.connected, false);
    assert.equal((await api.server.services.store.getStage(arn))?.viewers, 2);
    assert.ok(ivs.maxInWindow(STAGE_OPS, 990) <= 5);
  } finally {
    await api.stop();
  }
});

test('ivs: the viewer reconciler stays inside its own TPS share of the stage budget', async () => {
  reset();
  const api = await startApi({ stageUrl: 'http://127.0.0.1:9', env: { ...IVS_ENV, MIN_STAGES: '4', IVS_VIEWER_RECONCILE_TPS: '2' } });
  try {
    await waitFor(async () => (await mediaStages(api)).length === 4, { timeoutMs: 10_000 });
    for (const s of ivs.stages.values()) s.activeSessionId = 'st-x';
    ivs.pageSize = 100;
    ivs.calls.length = 0;
    const t0 = performance.now();
    await api.server.services.ivsViewers!.runOnce();
    const ms = performance.now() - t0;
    // 1 ListStages + 4 ListParticipants, each ≥ 500 ms after the previous one returned: ≥ 2 s.
    assert.equal(ivs.calls.length, 5);
    assert.ok(ms >= 1950, `took ${ms.toFixed(0)} ms`);
    assert.ok(ivs.maxInWindow(['ListStages', 'ListParticipants'], 990) <= 2, JSON.stringify(ivs.calls.map((c) => [c.op, Math.round(c.at - t0)])));
  } finally {
    await api.stop();
  }
});

test('ivs with IVS_TOKEN_SIGNING_KEY: viewer and Media Server tokens are self-signed (kid = public key ARN), CreateParticipantToken is never called', async () => {
  reset();
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
  const publicKeyArn = 'arn:aws:ivs:us-east-1:123456789012:public-key/KeyArn123';
  const api = await startApi({
    stageUrl: 'http://127.0.0.1:9',
    env: {
      ...IVS_ENV,
      MIN_STAGES: '1',
      IVS_TOKEN_SIGNING_KEY: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      IVS_TOKEN_PUBLIC_KEY_ARN: publicKeyArn,
    },
  });
  try {
    const [stage] = await waitFor(async () => {
      const s = await mediaStages(api);
      return s.length === 1 ? s : undefined;
    });
    const j = ViewerJoinResponseSchema.parse((await call(`${api.url}/api/viewers/join`, { headers: apiKey, json: {} })).body);
    assert.equal(decodeProtectedHeader(j.token).kid, publicKeyArn);
    const pub = createPublicKey(privateKey);
    const { payload } = await jwtVerify(j.token, pub, { algorithms: ['ES384'] });
    assert.equal(payload.jti, j.viewerId);
    assert.equal(payload.resource, stage!.stageArn);
    assert.deepEqual(payload.capabilities, { allow_publish: false, allow_subscribe: true });
    assert.equal(payload.whip_url, ivs.stages.get(stage!.stageArn)!.endpoints!.whip);
    const tok = TokenResponseSchema.parse((await call(`${api.url}/api/media/token`, { headers: mediaAuth, json: { stageArn: stage!.stageArn } })).body);
    const p2 = (await jwtVerify(tok.token, pub, { algorithms: ['ES384'] })).payload;
    assert.deepEqual(p2.capabilities, { allow_publish: true, allow_subscribe: false });
    assert.equal(p2.jti, tok.participantId);
    assert.equal(ivs.callsOf('CreateParticipantToken').length, 0);
  } finally {
    await api.stop();
  }
});
