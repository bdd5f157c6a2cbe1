/**
 * Many stage servers (STAGE_SERVER_URLS): where the local provider puts each stage, where deletes go, and what the
 * API Server does when a stage server dies or comes back. Real stage servers (child processes) or the fake admin
 * API, a real SQLite file, real HTTP.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DashboardResponseSchema, localStageArn, ScalingEventsResponseSchema, ViewerJoinResponseSchema, type LocalStage, type ViewerJoinResponse } from '@stagecast/protocol';
import { ConfigError, parseConfig } from '../src/config.js';
import { stageServerOf, STAGE_SERVER_TAG } from '../src/providers/local.js';
import { CREATED_AT_TAG, POOL_TAG } from '../src/providers/provider.js';
import { pickStageServer } from '../src/services/StageServerPool.js';
import { apiKey, call, SECRETS, startApi, type TestApi } from './helpers/api.js';
import { startFakeStageAdmin } from './helpers/fake-stage-admin.js';
import { startStageBackend, type StageBackend } from './helpers/stage-backend.js';
import { waitFor } from './helpers/wait.js';
import { connectMediaSocket } from './helpers/ws-client.js';

const BASE = { API_SECRET_KEY: SECRETS.apiKey, MEDIA_SERVER_SECRET: SECRETS.media, STAGE_SERVER_SECRET: SECRETS.stage };

test('pickStageServer: fewest stages, then fewest viewers, then the first listed; none when no server is live', () => {
  const cases: [string, { url: string; stages: number; viewers: number }[], string | undefined][] = [
    ['fewest stages wins', [{ url: 'a', stages: 2, viewers: 0 }, { url: 'b', stages: 1, viewers: 40 }], 'b'],
    ['a tie on stages goes to fewer viewers', [{ url: 'a', stages: 1, viewers: 3 }, { url: 'b', stages: 1, viewers: 1 }], 'b'],
    ['a full tie goes to the first listed', [{ url: 'a', stages: 1, viewers: 1 }, { url: 'b', stages: 1, viewers: 1 }], 'a'],
    ['one server', [{ url: 'a', stages: 9, viewers: 9 }], 'a'],
    ['no live server', [], undefined],
  ];
  for (const [name, input, want] of cases) assert.equal(pickStageServer(input), want, name);
});

test('stageServerOf: the stage-server tag names the server; without one, the server whose URL starts the WHIP URL, or the only one', () => {
  const urls = ['http://a:3002', 'http://b:3002'];
  const whip = (host: string) => `http://${host}:3002/stages/x/whip`;
  assert.equal(stageServerOf({ tags: { [STAGE_SERVER_TAG]: 'http://b:3002' }, whipUrl: whip('a') }, urls), 'http://b:3002', 'the tag wins');
  assert.equal(stageServerOf({ tags: {}, whipUrl: whip('b') }, urls), 'http://b:3002');
  assert.equal(stageServerOf({ tags: { [STAGE_SERVER_TAG]: 'http://gone:3002' }, whipUrl: whip('a') }, urls), 'http://a:3002', 'a tag naming no configured server is ignored');
  assert.equal(stageServerOf({ tags: {}, whipUrl: 'http://public-name:3002/stages/x/whip' }, urls), undefined, 'unknown');
  assert.equal(stageServerOf({ tags: {}, whipUrl: 'http://public-name:3002/stages/x/whip' }, ['http://a:3002']), 'http://a:3002', 'one server holds every stage');
});

test('config: STAGE_SERVER_URLS lists the stage servers; STAGE_SERVER_URL still names one; bad entries are named', () => {
  const many = parseConfig({ ...BASE, STAGE_SERVER_URLS: ' http://10.0.0.1:3002/ , https://stage-2.example.com:8443,http://10.0.0.3:3002' });
  assert.deepEqual(many.stageServerUrls, ['http://10.0.0.1:3002', 'https://stage-2.example.com:8443', 'http://10.0.0.3:3002']);
  assert.equal(many.stageServerHealthIntervalMs, 5000);
  assert.deepEqual(parseConfig({ ...BASE, STAGE_SERVER_URL: 'http://10.0.0.9:3002/' }).stageServerUrls, ['http://10.0.0.9:3002']);
  assert.deepEqual(parseConfig(BASE).stageServerUrls, ['http://127.0.0.1:3002'], 'default: one local stage server');
  assert.deepEqual(
    parseConfig({ ...BASE, STAGE_SERVER_URL: 'http://10.0.0.9:3002', STAGE_SERVER_URLS: 'http://10.0.0.1:3002' }).stageServerUrls,
    ['http://10.0.0.1:3002'],
    'STAGE_SERVER_URLS wins over STAGE_SERVER_URL',
  );
  assert.equal(parseConfig({ ...BASE, STAGE_SERVER_HEALTH_INTERVAL_MS: '250' }).stageServerHealthIntervalMs, 250);

  const bad = (env: Record<string, string>) => {
    try {
      parseConfig({ ...BASE, ...env });
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      return err.message;
    }
    assert.fail('accepted');
  };
  const msg = bad({ STAGE_SERVER_URLS: 'http://10.0.0.1:3002,nope,ftp://x:2121,http://u:pw@h:1,http://10.0.0.1:3002/,http://h:2/?a=1' });
  assert.match(msg, /STAGE_SERVER_URLS: /);
  assert.match(msg, /"nope" is not a URL/);
  assert.match(msg, /ftp:\/\/x:2121 must be http or https/);
  assert.match(msg, /http:\/\/h:1 must not carry credentials/);
  assert.ok(!msg.includes('pw'), 'credentials are not echoed');
  assert.match(msg, /http:\/\/10\.0\.0\.1:3002 is listed twice/);
  assert.match(msg, /must have no \?query or #fragment/);
  assert.match(bad({ STAGE_SERVER_URLS: ' , ' }), /STAGE_SERVER_URLS: must list at least one stage server URL/);
  assert.match(bad({ STAGE_SERVER_URL: 'not a url' }), /STAGE_SERVER_URL: "not a url" is not a URL/);
  assert.match(bad({ STAGE_SERVER_HEALTH_INTERVAL_MS: '10' }), /STAGE_SERVER_HEALTH_INTERVAL_MS/);
});

async function storedStages(api: TestApi) {
  return api.server.services.store.listStages();
}
/** Stage ARNs the store places on each server, sorted. */
async function byServer(api: TestApi, urls: string[]): Promise<Map<string, string[]>> {
  const out = new Map(urls.map((u) => [u, [] as string[]]));
  for (const s of await storedStages(api)) out.get(stageServerOf(s, urls) ?? 'none')?.push(s.arn);
  for (const l of out.values()) l.sort();
  return out;
}
/** What each stage server itself holds, sorted. */
async function held(backends: StageBackend[]): Promise<Map<string, string[]>> {
  return new Map(await Promise.all(backends.map(async (b) => [b.url, (await b.list()).map((s) => s.stageArn).sort()] as [string, string[]])));
}
async function join(api: TestApi): Promise<ViewerJoinResponse> {
  const r = await call(`${api.url}/api/viewers/join`, { headers: apiKey, json: {} });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return ViewerJoinResponseSchema.parse(r.body);
}
async function scalingEvents(api: TestApi) {
  return ScalingEventsResponseSchema.parse((await call(`${api.url}/api/scaling/events?limit=1000`, { headers: apiKey })).body).events;
}

test('two stage servers: stages are spread by load and tagged with their server, each delete reaches the server that holds the stage, the least-loaded server is chosen by viewers on a tie', async (t) => {
  const backends = [await startStageBackend(SECRETS.stage), await startStageBackend(SECRETS.stage)];
  const urls = backends.map((b) => b.url);
  const api = await startApi({
    stageUrl: urls[0]!,
    env: { STAGE_SERVER_URLS: urls.join(','), MIN_STAGES: '2', STAGE_CAPACITY: '1', SCALE_DOWN_COOLDOWN: '0', CONSOLIDATION_ENABLED: 'false', STAGE_SERVER_HEALTH_INTERVAL_MS: '200' },
  });
  t.after(async () => {
    await api.stop();
    for (const b of backends) await b.close();
  });

  // MIN_STAGES=2: one on each server (each pick sees the other's create in flight or stored).
  await waitFor(async () => (await storedStages(api)).length === 2, { timeoutMs: 10_000, what: 'two stages' });
  let placed = await byServer(api, urls);
  assert.deepEqual([...placed.values()].map((l) => l.length), [1, 1], 'one stage on each server');
  assert.deepEqual(await held(backends), placed, 'each server holds exactly the stages the store places on it');
  for (const s of await storedStages(api)) {
    const url = s.tags[STAGE_SERVER_TAG]!;
    assert.ok(urls.includes(url), 'tagged with its server');
    assert.ok(s.whipUrl.startsWith(url + '/') || backends[0]!.kind === 'real', 'the WHIP URL names the same server');
  }

  // One viewer: on a tie in stages, the next stage goes to the server without viewers.
  const v1 = await join(api);
  const withViewer = stageServerOf((await storedStages(api)).find((s) => s.arn === v1.stageArn)!, urls)!;
  const other = urls.find((u) => u !== withViewer)!;
  assert.equal(await api.server.services.stageServers!.pick(new Map()), other, 'tie on stages → fewer viewers');
  assert.equal(await api.server.services.stageServers!.pick(new Map([[other, 1]])), withViewer, 'a create in flight counts as a stage');

  // A second viewer fills the pool (capacity 1): a third stage, on the first server listed (a full tie).
  const v2 = await join(api);
  await waitFor(async () => (await storedStages(api)).length === 3, { timeoutMs: 10_000, what: 'a third stage' });
  placed = await byServer(api, urls);
  assert.equal(placed.get(urls[0]!)!.length, 2, 'a full tie goes to the first server listed');
  assert.deepEqual(await held(backends), placed);

  // Both leave: the pool shrinks back to MIN_STAGES; every delete went to the server that held the stage (a delete
  // sent elsewhere would be a 404 there, taken as done, and leave the stage behind on its own server).
  for (const v of [v1, v2]) assert.equal((await call(`${api.url}/api/viewers/${v.viewerId}`, { method: 'DELETE', headers: apiKey })).status, 204);
  await waitFor(async () => (await storedStages(api)).length === 2, { timeoutMs: 10_000, what: 'back to two stages' });
  await waitFor(async () => JSON.stringify([...(await held(backends))]) === JSON.stringify([...(await byServer(api, urls))]), {
    timeoutMs: 5000,
    what: 'each server holds exactly its stored stages after the delete',
  });
});

test('a stage server that dies loses its stages (seats released, stage_deleted sent, drop recorded), the pool is rebuilt on the live server, the dashboard and /metrics show it down', async (t) => {
  const backends = [await startStageBackend(SECRETS.stage), await startStageBackend(SECRETS.stage)];
  const [live, dying] = backends as [StageBackend, StageBackend];
  const urls = backends.map((b) => b.url);
  const api = await startApi({
    stageUrl: urls[0]!,
    env: { STAGE_SERVER_URLS: urls.join(','), MIN_STAGES: '2', STAGE_CAPACITY: '1', CONSOLIDATION_ENABLED: 'false', STAGE_SERVER_HEALTH_INTERVAL_MS: '200' },
  });
  t.after(async () => {
    await api.stop();
    for (const b of backends) await b.close();
  });
  await waitFor(async () => (await storedStages(api)).length === 2, { timeoutMs: 10_000, what: 'two stages' });
  const viewers = [await join(api), await join(api)];
  // Both stages full (capacity 1): a third is created; it lands before the picture is taken.
  await waitFor(async () => (await storedStages(api)).length === 3, { timeoutMs: 10_000, what: 'a third stage' });
  const onDying = (await byServer(api, urls)).get(dying.url)!;
  assert.ok(onDying.length >= 1);
  const victim = viewers.find((v) => onDying.includes(v.stageArn))!;
  assert.ok(victim, 'a viewer is seated on the dying server');
  const ws = await connectMediaSocket(api.wsUrl);
  t.after(() => ws.close());

  const killedAt = Date.now();
  await dying.kill();

  await waitFor(async () => (await byServer(api, urls)).get(dying.url)!.length === 0, { timeoutMs: 5000, what: "the dead server's stages removed" });
  const tookMs = Date.now() - killedAt;
  assert.ok(tookMs < 2000, `removed within two health intervals and a read timeout (took ${tookMs} ms)`);
  const hb = await call(`${api.url}/api/viewers/${victim.viewerId}/heartbeat`, { headers: apiKey, json: {} });
  assert.equal(hb.status, 404, 'the seat on the dead server is released: /watch joins again');
  await waitFor(() => onDying.every((arn) => ws.messages.some((m) => m.type === 'stage_deleted' && m.data.stageArn === arn)), { what: 'stage_deleted sent' });
  const drops = (await scalingEvents(api)).filter((e) => e.action === 'drop');
  assert.deepEqual(drops.map((e) => e.stageArn).sort(), [...onDying].sort());
  for (const e of drops) assert.equal(e.reason, `stage server down: ${dying.url}`);

  // Capacity comes back on the live server: MIN_STAGES again, plus room for the rejoining viewer.
  await waitFor(async () => (await storedStages(api)).length >= 2, { timeoutMs: 10_000, what: 'the pool rebuilt' });
  const again = await join(api);
  assert.equal(stageServerOf((await storedStages(api)).find((s) => s.arn === again.stageArn)!, urls), live.url, 'the rejoin lands on the live server');
  // A create may be on its way (held by the server, not yet stored): compare once the two agree.
  await waitFor(async () => JSON.stringify((await held([live])).get(live.url)) === JSON.stringify((await byServer(api, urls)).get(live.url)), {
    timeoutMs: 5000,
    what: 'the live server holds exactly the stored stages',
  });

  const dash = DashboardResponseSchema.parse((await call(`${api.url}/api/dashboard`, { headers: apiKey })).body);
  assert.deepEqual(dash.stageServers!.map((s) => [s.url, s.state]), [[live.url, 'up'], [dying.url, 'down']]);
  assert.equal(dash.stageServers![1]!.stages, 0);
  assert.ok(dash.stageServers![1]!.lastError);
  const ready = await call(`${api.url}/ready`);
  assert.equal(ready.status, 200, 'still ready: one stage server is live');
  assert.deepEqual(ready.body.checks.provider, { ok: true, detail: '1 of 2 stage servers down' });
  const metrics = (await call(`${api.url}/metrics`)).body as string;
  assert.match(metrics, new RegExp(`stagecast_stage_server_up\\{server="${dying.url}"\\} 0`));
  assert.match(metrics, new RegExp(`stagecast_stage_server_up\\{server="${live.url}"\\} 1`));
  assert.match(metrics, new RegExp(`stagecast_stage_server_down_total\\{server="${dying.url}"\\} 1`));
  assert.ok(api.logs.lines().some((l) => l.msg === 'stage_server.down' && l.stageServer === dying.url));
});

test('a stage server that was away comes back into use after one good read, its stages that the pool dropped deleted there first', async (t) => {
  const fakes = [await startFakeStageAdmin(SECRETS.stage), await startFakeStageAdmin(SECRETS.stage)];
  const [a, b] = fakes as [(typeof fakes)[0], (typeof fakes)[0]];
  const urls = [a.url, b.url];
  const api = await startApi({
    stageUrl: a.url,
    env: { STAGE_SERVER_URLS: urls.join(','), MIN_STAGES: '2', CONSOLIDATION_ENABLED: 'false', STAGE_SERVER_HEALTH_INTERVAL_MS: '100' },
  });
  t.after(async () => {
    await api.stop();
    for (const f of fakes) await f.close();
  });
  await waitFor(async () => (await storedStages(api)).length === 2, { timeoutMs: 10_000, what: 'two stages' });
  assert.equal(b.stages.size, 1);

  b.setAway(true);
  await waitFor(async () => (await byServer(api, urls)).get(b.url)!.length === 0, { timeoutMs: 5000, what: 'b marked down, its stage dropped' });
  await waitFor(async () => (await byServer(api, urls)).get(a.url)!.length === 2, { timeoutMs: 5000, what: 'the pool rebuilt on a' });
  assert.equal(b.stages.size, 1, 'b still holds the dropped stage while away');
  assert.equal(await api.server.services.stageServers!.pick(new Map()), a.url, 'a down server takes no new stage');

  // Meanwhile another API Server sharing the store creates a stage on b (not recorded yet): it must survive the cleanup.
  const newer: LocalStage = {
    stageArn: localStageArn('newerstage01'),
    stageId: 'newerstage01' as LocalStage['stageId'],
    name: 'newer',
    tags: { [POOL_TAG]: 'default', [CREATED_AT_TAG]: new Date().toISOString(), [STAGE_SERVER_TAG]: b.url },
    createdAt: new Date().toISOString(),
    whipUrl: `${b.url}/stages/newerstage01/whip`,
    whepUrl: `${b.url}/stages/newerstage01/whep`,
  };
  b.stages.set(newer.stageId, newer);
  const dropped = [...b.stages.keys()].filter((id) => id !== newer.stageId);

  b.setAway(false);
  await waitFor(async () => (await api.server.services.stageServers!.list()).find((s) => s.url === b.url)!.state === 'up', { timeoutMs: 5000, what: 'b back up' });
  assert.deepEqual([...b.stages.keys()], [newer.stageId], 'the stage the pool dropped was deleted on b before it came back; the newer one was not');
  assert.equal(dropped.length, 1);
  // The newer stage is not in this store: for this API Server, b holds nothing and is the least loaded.
  assert.equal(await api.server.services.stageServers!.pick(new Map()), b.url, 'b, now the least loaded, takes the next stage');
  assert.deepEqual((await byServer(api, urls)).get(a.url)!.length, 2, 'the stages on a are untouched');
  assert.ok(api.logs.lines().some((l) => l.msg === 'stage_server.up' && l.stageServer === b.url));
});
