/** STAGE_PROVIDER=whip: WHIP destinations as a fixed pool of stages, their own URLs and tokens, no Stagecast viewers. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ScalingEventsResponseSchema, StagesResponseSchema, TokenResponseSchema } from '@stagecast/protocol';
import { ConfigError, parseConfig } from '../src/config.js';
import { whipTargetStageArn } from '../src/providers/whip.js';
import { apiKey, call, mediaAuth, SECRETS, startApi } from './helpers/api.js';

const base = { API_SECRET_KEY: SECRETS.apiKey, MEDIA_SERVER_SECRET: SECRETS.media, STAGE_PROVIDER: 'whip' };
const SECRET_TOKEN = 'cf-secret-token-7d1e0c2b9a';

function configError(env: Record<string, string>): string {
  try {
    parseConfig({ ...base, ...env });
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.message;
  }
  assert.fail('expected a ConfigError');
}

test('WHIP_TARGETS is validated strictly: each bad entry is named by index, tokens and URL paths are never echoed', () => {
  assert.match(configError({}), /WHIP_TARGETS: required when STAGE_PROVIDER=whip/);
  const notJson = configError({ WHIP_TARGETS: `[{"url":"https://a.example/whip","token":"${SECRET_TOKEN}"` });
  assert.match(notJson, /WHIP_TARGETS: not valid JSON/);
  assert.doesNotMatch(notJson, new RegExp(SECRET_TOKEN));
  assert.match(configError({ WHIP_TARGETS: '[]' }), /WHIP_TARGETS: must be a non-empty JSON array/);
  const many = configError({
    WHIP_TARGETS: JSON.stringify([
      { url: 'https://ok.example/whip', token: SECRET_TOKEN },
      { url: 'ftp://files.example/secret-path', token: SECRET_TOKEN },
      { url: 'https://b.example/whip', token: 'has space' },
      { url: 'https://ok.example/whip' },
      { url: 'https://c.example/whip', bearer: 'x' },
      'https://d.example/whip',
      { token: SECRET_TOKEN },
      { url: 'https://user:pw@e.example/whip' },
    ]),
  });
  assert.match(many, /WHIP_TARGETS\[1\]: url must be http or https \(ftp:\/\/files\.example\)/);
  assert.match(many, /WHIP_TARGETS\[2\]: token must be/);
  assert.match(many, /WHIP_TARGETS\[3\]: same url as entry 0/);
  assert.match(many, /WHIP_TARGETS\[4\]: unknown key\(s\) "bearer"/);
  assert.match(many, /WHIP_TARGETS\[5\]: must be an object/);
  assert.match(many, /WHIP_TARGETS\[6\]: url is required/);
  assert.match(many, /WHIP_TARGETS\[7\]: url must not carry credentials/);
  assert.doesNotMatch(many, new RegExp(SECRET_TOKEN));
  assert.doesNotMatch(many, /secret-path/);
  assert.doesNotMatch(many, /WHIP_TARGETS\[0\]/);

  const ok = parseConfig({
    ...base,
    WHIP_TARGETS: JSON.stringify([{ url: 'https://a.example/whip', token: SECRET_TOKEN }, { url: 'http://127.0.0.1:8889/live/whip' }]),
  });
  assert.equal(ok.stageProvider, 'whip');
  assert.deepEqual(ok.whipTargets, [{ url: 'https://a.example/whip', token: SECRET_TOKEN }, { url: 'http://127.0.0.1:8889/live/whip' }]);
});

test('whip provider: one stage per destination, the token endpoint returns its URL and token, viewers get 409, the pool is never scaled', async () => {
  const targets = [
    { url: 'http://127.0.0.1:9/cloudflare/whip', token: SECRET_TOKEN },
    { url: 'http://127.0.0.1:9/mediamtx/live/whip' }, // no token: the Media Server sends no Authorization
  ];
  const api = await startApi({ stageUrl: 'http://127.0.0.1:9', env: { STAGE_PROVIDER: 'whip', WHIP_TARGETS: JSON.stringify(targets), MIN_STAGES: '3' } });
  try {
    const stages = StagesResponseSchema.parse((await call(`${api.url}/api/media/stages`, { headers: mediaAuth })).body).stages;
    assert.deepEqual(
      stages.map((s) => s.stageArn).sort(),
      targets.map((t) => whipTargetStageArn(t.url)).sort(),
    );
    assert.ok(stages.every((s) => s.stageArn.startsWith('arn:stagecast:ivs:whip:000000000000:stage/')), 'not an AWS partition: no IVS rules');

    for (const t of targets) {
      const r = await call(`${api.url}/api/media/token`, { headers: mediaAuth, json: { stageArn: whipTargetStageArn(t.url), serverId: 'ms-1' } });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const tok = TokenResponseSchema.parse(r.body);
      assert.equal(tok.whipUrl, t.url);
      assert.equal(tok.token, t.token ?? '');
      assert.ok(Date.parse(tok.expiresAt) > Date.now());
    }

    const join = await call(`${api.url}/api/viewers/join`, { headers: apiKey, json: {} });
    assert.equal(join.status, 409);
    assert.equal(join.body.error.code, 'CONFLICT');
    assert.match(join.body.error.message, /watch/);

    // MIN_STAGES=3 > 2 destinations, yet a fixed pool is never grown (nor shrunk).
    await api.server.services.scaling.plan();
    const events = ScalingEventsResponseSchema.parse((await call(`${api.url}/api/scaling/events`, { headers: apiKey })).body).events;
    assert.deepEqual(events.map((e) => e.action).sort(), ['adopt', 'adopt']);
    assert.equal(api.server.services.scaling.creatingCount, 0);

    const health = await call(`${api.url}/health`);
    assert.equal(health.status, 200);
    assert.doesNotMatch(api.logs.text, new RegExp(SECRET_TOKEN), 'the destination token is never logged');
  } finally {
    await api.stop();
  }
});

test('whip provider: a restart with another WHIP_TARGETS keeps the same destination as the same stage, drops a removed one, adopts a new one', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'sc-whip-'));
  const a = 'http://127.0.0.1:9/a/whip';
  const b = 'http://127.0.0.1:9/b/whip';
  const c = 'http://127.0.0.1:9/c/whip';
  try {
    const first = await startApi({ stageUrl: 'http://127.0.0.1:9', dataDir, env: { STAGE_PROVIDER: 'whip', WHIP_TARGETS: JSON.stringify([{ url: a }, { url: b }]) } });
    await first.stop();
    const second = await startApi({
      stageUrl: 'http://127.0.0.1:9',
      dataDir,
      env: { STAGE_PROVIDER: 'whip', WHIP_TARGETS: JSON.stringify([{ url: b, token: 'rotated-token' }, { url: c }]) },
    });
    try {
      const stages = StagesResponseSchema.parse((await call(`${second.url}/api/media/stages`, { headers: mediaAuth })).body).stages;
      assert.deepEqual(stages.map((s) => s.stageArn).sort(), [whipTargetStageArn(b), whipTargetStageArn(c)].sort());
      const tok = TokenResponseSchema.parse((await call(`${second.url}/api/media/token`, { headers: mediaAuth, json: { stageArn: whipTargetStageArn(b) } })).body);
      assert.equal(tok.token, 'rotated-token');
      const gone = await call(`${second.url}/api/media/token`, { headers: mediaAuth, json: { stageArn: whipTargetStageArn(a) } });
      assert.equal(gone.status, 404);
      const events = ScalingEventsResponseSchema.parse((await call(`${second.url}/api/scaling/events`, { headers: apiKey })).body).events;
      assert.ok(events.some((e) => e.action === 'drop' && e.stageArn === whipTargetStageArn(a)));
      assert.ok(events.some((e) => e.action === 'adopt' && e.stageArn === whipTargetStageArn(c)));
    } finally {
      await second.stop();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
