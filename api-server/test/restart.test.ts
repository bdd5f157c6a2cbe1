/**
 * The real api-server process, killed with SIGKILL and started again on the same DATA_DIR: nothing is lost.
 * A crash between the provider's create and the store write leaves an orphan stage: it is adopted on start.
 * A stage the provider lost is dropped and its viewers released. No stage leaks; shutdown deletes none.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ScalingEventsResponseSchema, ServersResponseSchema, StageListResponseSchema, ViewerJoinResponseSchema } from '@stagecast/protocol';
import { apiKey, call, mediaAuth, SECRETS } from './helpers/api.js';
import { spawnApi, type ApiProcess } from './helpers/process.js';
import { startStageBackend, type StageBackend } from './helpers/stage-backend.js';
import { waitFor } from './helpers/wait.js';

let stage: StageBackend;
let dataDir: string;
let proc: ApiProcess | undefined;
let joined: { viewerId: string; stageArn: string }[] = [];

before(async () => {
  stage = await startStageBackend(SECRETS.stage);
  dataDir = mkdtempSync(join(tmpdir(), 'sc-restart-'));
});
after(async () => {
  await proc?.kill9();
  await stage?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const env = () => ({
  API_SECRET_KEY: SECRETS.apiKey,
  MEDIA_SERVER_SECRET: SECRETS.media,
  STAGE_SERVER_SECRET: SECRETS.stage,
  STAGE_SERVER_URL: stage.url,
  DATA_DIR: dataDir,
  STAGE_CAPACITY: '3',
  MIN_STAGES: '1',
  STAGE_POOL_ID: 'restart',
});

async function stagesOf(url: string) {
  return StageListResponseSchema.parse((await call(`${url}/api/stages`, { headers: apiKey })).body).stages;
}
async function ours() {
  return (await stage.list()).filter((s) => s.tags['stagecast:pool'] === 'restart');
}

test('kill -9 and start again on the same DATA_DIR → the same stages, viewers, servers and signing key', async (t) => {
  t.diagnostic(`stage backend: ${stage.kind}`);
  proc = await spawnApi(env());
  const url = proc.url;
  assert.equal((await call(`${url}/api/media/register`, { headers: mediaAuth, json: { serverId: 'ms-r', ipAddress: '127.0.0.1', port: 3001 } })).status, 200);
  const viewers = [];
  for (let i = 0; i < 4; i++) {
    const r = await call(`${url}/api/viewers/join`, { headers: apiKey, json: { userId: `u${i}` } });
    assert.equal(r.status, 201);
    viewers.push(ViewerJoinResponseSchema.parse(r.body));
  }
  joined = viewers;
  // 4 viewers at 3 a stage → 2 stages (3 + 1) and one spare.
  const before = await waitFor(async () => {
    const s = await stagesOf(url);
    return s.length === 3 ? s : undefined;
  }, { what: '3 stages' });
  const servers = ServersResponseSchema.parse((await call(`${url}/api/media/servers`, { headers: apiKey })).body).servers;
  const jwks = (await call(`${url}/.well-known/jwks.json`)).body;
  assert.equal(statSync(join(dataDir, 'signing-key.json')).mode & 0o777, 0o600);

  await proc.kill9();
  proc = await spawnApi(env());
  const url2 = proc.url;

  const afterRestart = await stagesOf(url2);
  const key = (s: { stageArn: string; viewers: number; state: string }) => `${s.stageArn} ${s.viewers} ${s.state}`;
  assert.deepEqual(afterRestart.map(key).sort(), before.map(key).sort());
  for (const v of viewers) {
    const hb = await call(`${url2}/api/viewers/${v.viewerId}/heartbeat`, { method: 'POST', headers: apiKey });
    assert.equal(hb.status, 200);
    assert.equal(hb.body.stageArn, v.stageArn);
  }
  const servers2 = ServersResponseSchema.parse((await call(`${url2}/api/media/servers`, { headers: apiKey })).body).servers;
  assert.deepEqual(servers2.map((s) => [s.serverId, s.registeredAt, s.ipAddress]), servers.map((s) => [s.serverId, s.registeredAt, s.ipAddress]));
  assert.deepEqual((await call(`${url2}/.well-known/jwks.json`)).body, jwks, 'same signing key');
  assert.deepEqual(
    (await ours()).map((s) => s.stageArn).sort(),
    before.map((s) => s.stageArn).sort(),
    'the stage server holds exactly the recorded stages',
  );
  // The pool stays at 3: no duplicate creates after the restart.
  const h = await call(`${url2}/health`);
  assert.equal(h.status, 200);
  assert.equal((await stagesOf(url2)).length, 3);
});

test('an orphan stage (crash between provider create and store write) is adopted; a lost stage is dropped; none leaks', async () => {
  const url = proc!.url;
  const known = await stagesOf(url);
  const lost = known.find((s) => s.viewers === 1)!;
  await proc!.kill9();

  // While the API Server is down: an orphan of ours appears, a foreign stage exists, and one of ours is lost.
  const orphan = await stage.createDirect({ 'stagecast:pool': 'restart', 'stagecast:created-at': new Date().toISOString() });
  const foreign = await stage.createDirect({ 'stagecast:pool': 'someone-else' });
  await stage.deleteDirect(lost.stageId);

  proc = await spawnApi(env());
  const url2 = proc.url;
  const now = await stagesOf(url2);
  const arns = new Set(now.map((s) => s.stageArn));
  assert.ok(arns.has(orphan.stageArn), 'orphan adopted');
  assert.ok(!arns.has(foreign.stageArn), 'a stage of another pool is never touched');
  assert.ok(!arns.has(lost.stageArn), 'lost stage dropped');
  assert.ok((await stage.list()).some((s) => s.stageArn === foreign.stageArn), 'foreign stage still exists');

  const ev = ScalingEventsResponseSchema.parse((await call(`${url2}/api/scaling/events`, { headers: apiKey })).body).events;
  assert.ok(ev.some((e) => e.action === 'adopt' && e.stageArn === orphan.stageArn));
  assert.ok(ev.some((e) => e.action === 'drop' && e.stageArn === lost.stageArn));
  for (const v of joined.filter((j) => j.stageArn === lost.stageArn)) {
    const hb = await call(`${url2}/api/viewers/${v.viewerId}/heartbeat`, { method: 'POST', headers: apiKey });
    assert.equal(hb.status, 404, 'viewers of a lost stage are released');
  }

  // Every stage of our pool at the provider is recorded, and vice versa: nothing leaks.
  await waitFor(async () => {
    const recorded = (await stagesOf(url2)).map((s) => s.stageArn).sort();
    const atProvider = (await ours()).map((s) => s.stageArn).sort();
    return JSON.stringify(recorded) === JSON.stringify(atProvider);
  }, { what: 'store and provider agree' });

  // A graceful stop (SIGTERM) exits 0 and deletes no stage: a restart must find them.
  const countBefore = (await ours()).length;
  const code = await proc.terminate();
  assert.equal(code, 0);
  assert.ok(proc.logs().some((l) => l.msg === 'server.stopped'));
  assert.equal((await ours()).length, countBefore);
});
