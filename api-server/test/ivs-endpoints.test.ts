/**
 * IVS stage endpoints may be cached 14 days at most (StageEndpoints): the API Server re-reads them with GetStage
 * when they are IVS_ENDPOINT_REFRESH_S old (12 days by default), and at once when a Media Server's WHIP POST failed
 * at the endpoint (`whipFailed` in its token request). IVS's control API is mocked with aws-sdk-client-mock.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { TokenResponseSchema, type StageArn } from '@stagecast/protocol';
import { parseConfig } from '../src/config.js';
import { call, mediaAuth, SECRETS, startApi, type TestApi } from './helpers/api.js';
import { FakeIvs } from './helpers/fake-ivs.js';
import { waitFor } from './helpers/wait.js';

const ivs = new FakeIvs();
after(() => ivs.restore());

const IVS_ENV = { STAGE_PROVIDER: 'ivs', AWS_REGION: 'us-east-1', STAGE_POOL_ID: 'pool-e', IVS_VIEWER_RECONCILE_INTERVAL_S: '0', MIN_STAGES: '1' };
const DAY = 86_400_000;

async function withIvsApi(fn: (api: TestApi, arn: StageArn) => Promise<void>): Promise<void> {
  ivs.stages.clear();
  ivs.calls.length = 0;
  const api = await startApi({ stageUrl: 'http://127.0.0.1:9', env: IVS_ENV, logLevel: 'silent' });
  try {
    const [stage] = await waitFor(async () => {
      const s = await api.server.services.store.listStages();
      return s.length === 1 ? s : undefined;
    });
    await fn(api, stage!.arn);
  } finally {
    await api.stop();
  }
}

const token = async (api: TestApi, stageArn: StageArn, whipFailed?: boolean) => {
  const r = await call(`${api.url}/api/media/token`, { headers: mediaAuth, json: { stageArn, serverId: 'ms-1', ...(whipFailed === undefined ? {} : { whipFailed }) } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return TokenResponseSchema.parse(r.body);
};

test('ivs: a token request after a failed WHIP POST re-reads the stage (GetStage) and hands out its new endpoint; at most once per 30 s per stage', async () => {
  await withIvsApi(async (api, arn) => {
    const first = await token(api, arn);
    assert.equal(first.whipUrl, ivs.stages.get(arn)!.endpoints!.whip);
    // IVS moves the stage's WHIP endpoint: the cached one now fails.
    const moved = 'https://moved.global-bm.whip.live-video.net';
    ivs.stages.get(arn)!.endpoints!.whip = moved;
    const gets = () => ivs.callsOf('GetStage').length;
    const before = gets();
    assert.equal((await token(api, arn)).whipUrl, first.whipUrl, 'no signal, no GetStage: the cached endpoint');
    assert.equal(gets(), before);
    const retry = await token(api, arn, true);
    assert.equal(retry.whipUrl, moved, 'the retry goes where the stage is now');
    assert.equal(gets(), before + 1);
    assert.equal((await api.server.services.store.getStage(arn))!.whipUrl, moved, 'stored for everyone');
    await token(api, arn, true);
    assert.equal(gets(), before + 1, 'a second failure report within 30 s costs no GetStage (5 TPS budget)');
    const metrics = (await call(`${api.url}/metrics`)).body as string;
    assert.match(metrics, /stagecast_stage_endpoint_refreshes_total\{reason="whip_failed",result="changed"\} 1/);
  });
});

test('ivs: endpoints IVS_ENDPOINT_REFRESH_S old (12 days) are re-read before IVS’s 14-day limit; fresh ones are left alone', async () => {
  await withIvsApi(async (api, arn) => {
    const s = api.server.services;
    const refresher = s.endpoints!;
    assert.ok(refresher, 'STAGE_PROVIDER=ivs runs the refresher');
    const gets = () => ivs.callsOf('GetStage').length;
    const before = gets();
    await refresher.runOnce();
    assert.equal(gets(), before, 'a stage created just now needs no GetStage');

    const stored = (await s.store.getStage(arn))!;
    await s.store.updateStageEndpoints(arn, stored.whipUrl, Date.now() - 12 * DAY - 1000);
    const moved = 'https://rotated.global-bm.whip.live-video.net';
    ivs.stages.get(arn)!.endpoints!.whip = moved;
    await refresher.runOnce();
    assert.equal(gets(), before + 1);
    const after = (await s.store.getStage(arn))!;
    assert.equal(after.whipUrl, moved);
    assert.ok(Date.now() - after.endpointsAt < 60_000, 'the endpoints are fresh again');
    assert.equal((await token(api, arn)).whipUrl, moved);
  });
});

test('ivs: a stage gone at IVS keeps its record for the reconciliation to drop; the refresh only reports it', async () => {
  await withIvsApi(async (api, arn) => {
    const s = api.server.services;
    const url = (await s.store.getStage(arn))!.whipUrl;
    ivs.stages.delete(arn);
    await s.endpoints!.afterWhipFailure(arn);
    assert.equal((await s.store.getStage(arn))!.whipUrl, url);
  });
});

test('config: IVS_ENDPOINT_REFRESH_S defaults to 12 days and must stay under 14', async () => {
  const base = { API_SECRET_KEY: SECRETS.apiKey, MEDIA_SERVER_SECRET: SECRETS.media, STAGE_PROVIDER: 'ivs', AWS_REGION: 'us-east-1' };
  assert.equal(parseConfig(base).ivs!.endpointMaxAgeMs, 12 * DAY);
  assert.equal(parseConfig({ ...base, IVS_ENDPOINT_REFRESH_S: '3600' }).ivs!.endpointMaxAgeMs, 3_600_000);
  assert.throws(() => parseConfig({ ...base, IVS_ENDPOINT_REFRESH_S: String(14 * 86_400) }), /IVS_ENDPOINT_REFRESH_S: must stay under 14 days/);
});
