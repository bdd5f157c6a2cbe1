/** Every seed contract shape over real HTTP, validated with the protocol schemas; input errors; no secret in the logs. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { compactVerify, createLocalJWKSet, jwtVerify } from 'jose';
import {
  HealthResponseSchema,
  HeartbeatResponseSchema,
  IngestTokenResponseSchema,
  ParticipantClaimsSchema,
  RegisterResponseSchema,
  ScalingEventsResponseSchema,
  ServersResponseSchema,
  StageListResponseSchema,
  StagesResponseSchema,
  TokenResponseSchema,
  ViewerHeartbeatResponseSchema,
  ViewerJoinResponseSchema,
} from '@stagecast/protocol';
import { bodyOf, oversizedHeaderRequest, rawRequest } from '../../packages/service/test/raw-http.js';
import { apiKey, call, mediaAuth, SECRETS, stageAuth, startApi, type TestApi } from './helpers/api.js';
import { startStageBackend, type StageBackend } from './helpers/stage-backend.js';
import { waitFor } from './helpers/wait.js';

let stage: StageBackend;
let api: TestApi;

before(async () => {
  stage = await startStageBackend(SECRETS.stage);
  api = await startApi({ stageUrl: stage.url, logLevel: 'debug' });
  await waitFor(async () => (await call(`${api.url}/api/stages`, { headers: apiKey })).body.stages.length >= 1, { what: 'first stage' });
});
after(async () => {
  await api?.stop();
  await stage?.close();
});

test('GET /health reports store, provider and reconciliation: ok → 200', async (t) => {
  t.diagnostic(`stage backend: ${stage.kind} stage server`);
  const r = await call(`${api.url}/health`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const h = HealthResponseSchema.parse(r.body);
  assert.equal(h.status, 'ok');
  assert.equal(h.checks.store?.ok, true);
  assert.equal(h.checks.provider?.ok, true);
});

test('Media Server contract: register → heartbeat → stages → token, every shape per the protocol', async () => {
  const reg = await call(`${api.url}/api/media/register`, { headers: mediaAuth, json: { serverId: 'ms-1', ipAddress: '127.0.0.1', port: 3001 } });
  assert.equal(reg.status, 200);
  assert.equal(RegisterResponseSchema.parse(reg.body).heartbeatIntervalMs, api.config.heartbeatIntervalMs);

  const hb = await call(`${api.url}/api/media/heartbeat`, {
    headers: { 'x-media-server-secret': SECRETS.media },
    json: { serverId: 'ms-1', publisherOnline: true, legs: [] },
  });
  assert.equal(hb.status, 200);
  HeartbeatResponseSchema.parse(hb.body);

  const st = await call(`${api.url}/api/media/stages`, { headers: mediaAuth });
  assert.equal(st.status, 200);
  const { stages } = StagesResponseSchema.parse(st.body);
  assert.ok(stages.length >= 1);
  const arn = stages[0]!.stageArn;

  const tok = await call(`${api.url}/api/media/token`, { headers: mediaAuth, json: { stageArn: arn } });
  assert.equal(tok.status, 200, JSON.stringify(tok.body));
  const t = TokenResponseSchema.parse(tok.body);
  const jwks = createLocalJWKSet((await call(`${api.url}/.well-known/jwks.json`)).body);
  const { payload, protectedHeader } = await jwtVerify(t.token, jwks, { algorithms: ['ES384'] });
  assert.equal(protectedHeader.alg, 'ES384');
  const claims = ParticipantClaimsSchema.parse(payload);
  assert.equal(claims.resource, arn);
  assert.equal(claims.topic, stages[0]!.stageId);
  assert.equal(claims.jti, t.participantId);
  assert.equal(claims.whip_url, t.whipUrl);
  assert.deepEqual(claims.capabilities, { allow_publish: true, allow_subscribe: false });
  assert.equal(claims.version, '1.0');

  const servers = await call(`${api.url}/api/media/servers`, { headers: apiKey });
  assert.equal(servers.status, 200);
  const s = ServersResponseSchema.parse(servers.body).servers.find((x) => x.serverId === 'ms-1');
  assert.equal(s?.state, 'online');
  assert.equal(s?.publisherOnline, true);
});

test('POST /api/media/token for an unknown stage → 404 NOT_FOUND', async () => {
  const r = await call(`${api.url}/api/media/token`, {
    headers: mediaAuth,
    json: { stageArn: 'arn:stagecast:ivs:local:000000000000:stage/nope' },
  });
  assert.equal(r.status, 404);
  assert.equal(r.body.error.code, 'NOT_FOUND');
});

test('ingest token: a publish JWT for the WHIP front door', async () => {
  const r = await call(`${api.url}/api/media/ingest-token`, { method: 'POST', headers: apiKey });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const t = IngestTokenResponseSchema.parse(r.body);
  assert.equal(t.whipUrl, `${api.url}/whip`, 'the WHIP front door of this API Server');
  const jwks = createLocalJWKSet((await call(`${api.url}/.well-known/jwks.json`)).body);
  const claims = ParticipantClaimsSchema.parse((await jwtVerify(t.token, jwks)).payload);
  assert.equal(claims.resource, 'stagecast:ingest');
  assert.equal(claims.topic, 'ingest');
  assert.equal(claims.capabilities.allow_publish, true);
  assert.equal(claims.capabilities.allow_subscribe, false);
});

test('viewer contract: join (subscribe token, whep playback) → heartbeat → connected report → leave', async () => {
  const j = await call(`${api.url}/api/viewers/join`, { headers: apiKey, json: { userId: 'alice' } });
  assert.equal(j.status, 201, JSON.stringify(j.body));
  const v = ViewerJoinResponseSchema.parse(j.body);
  assert.equal(v.playback.type, 'whep');
  const jwks = createLocalJWKSet((await call(`${api.url}/.well-known/jwks.json`)).body);
  const claims = ParticipantClaimsSchema.parse((await jwtVerify(v.token, jwks)).payload);
  assert.equal(claims.jti, v.viewerId);
  assert.equal(claims.resource, v.stageArn);
  assert.equal(claims.user_id, 'alice');
  assert.deepEqual(claims.capabilities, { allow_publish: false, allow_subscribe: true });
  assert.equal(new Date(v.expiresAt).getTime(), claims.exp * 1000);

  // A join with no body at all is fine too.
  const j2 = await call(`${api.url}/api/viewers/join`, { method: 'POST', headers: apiKey });
  assert.equal(j2.status, 201);

  const hb = await call(`${api.url}/api/viewers/${v.viewerId}/heartbeat`, { method: 'POST', headers: apiKey });
  assert.equal(hb.status, 200);
  assert.equal(ViewerHeartbeatResponseSchema.parse(hb.body).stageArn, v.stageArn);

  const ev = await call(`${api.url}/api/stage-server/participant-events`, {
    headers: stageAuth,
    json: { events: [{ stageArn: v.stageArn, participantId: v.viewerId, kind: 'subscriber', type: 'joined', timestamp: new Date().toISOString() }] },
  });
  assert.equal(ev.status, 200);
  const list = StageListResponseSchema.parse((await call(`${api.url}/api/stages`, { headers: apiKey })).body);
  const mine = list.stages.find((s) => s.stageArn === v.stageArn)!;
  assert.equal(mine.connected, 1);
  assert.equal(mine.viewers, 2);

  const media = StagesResponseSchema.parse((await call(`${api.url}/api/media/stages`, { headers: mediaAuth })).body);
  assert.equal(media.stages.find((s) => s.stageArn === v.stageArn)?.viewerCount, 2);

  const del = await call(`${api.url}/api/viewers/${v.viewerId}`, { method: 'DELETE', headers: apiKey });
  assert.equal(del.status, 204);
  const again = await call(`${api.url}/api/viewers/${v.viewerId}`, { method: 'DELETE', headers: apiKey });
  assert.equal(again.status, 404);
  const hb2 = await call(`${api.url}/api/viewers/${v.viewerId}/heartbeat`, { method: 'POST', headers: apiKey });
  assert.equal(hb2.status, 404);
  assert.equal(hb2.body.error.code, 'NOT_FOUND');
  await call(`${api.url}/api/viewers/${(j2.body as { viewerId: string }).viewerId}`, { method: 'DELETE', headers: apiKey });
});

test('scaling events and JWKS shapes', async () => {
  const r = await call(`${api.url}/api/scaling/events?limit=5`, { headers: apiKey });
  assert.equal(r.status, 200);
  const { events } = ScalingEventsResponseSchema.parse(r.body);
  assert.ok(events.length >= 1 && events.length <= 5);
  assert.equal(events[0]!.action, 'create');
  const jwks = (await call(`${api.url}/.well-known/jwks.json`)).body;
  assert.equal(jwks.keys.length, 1);
  assert.equal(jwks.keys[0].alg, 'ES384');
  assert.equal(jwks.keys[0].crv, 'P-384');
  assert.equal(jwks.keys[0].d, undefined, 'never the private part');
  assert.ok(jwks.keys[0].kid);
  void compactVerify;
});

test('invalid input → 400 INVALID_INPUT with the zod issues as details', async () => {
  const r = await call(`${api.url}/api/media/register`, { headers: mediaAuth, json: { serverId: 'bad id!', ipAddress: '', port: 70000 } });
  assert.equal(r.status, 400);
  assert.equal(r.body.error.code, 'INVALID_INPUT');
  assert.ok(Array.isArray(r.body.error.details));
  const paths = (r.body.error.details as { path: string[] }[]).map((d) => d.path.join('.'));
  assert.deepEqual(new Set(paths), new Set(['serverId', 'ipAddress', 'port']));

  const extra = await call(`${api.url}/api/viewers/join`, { headers: apiKey, json: { userId: 'x', admin: true } });
  assert.equal(extra.status, 400);
  const badId = await call(`${api.url}/api/viewers/not%20valid!/heartbeat`, { method: 'POST', headers: apiKey });
  assert.equal(badId.status, 400);
  const badLimit = await call(`${api.url}/api/scaling/events?limit=0`, { headers: apiKey });
  assert.equal(badLimit.status, 400);
  const badEvents = await call(`${api.url}/api/stage-server/participant-events`, { headers: stageAuth, json: { events: [] } });
  assert.equal(badEvents.status, 400);
});

test('a body over 64 KiB → 413 PAYLOAD_TOO_LARGE', async () => {
  const r = await call(`${api.url}/api/media/heartbeat`, {
    headers: mediaAuth,
    json: { serverId: 'ms-1', legs: [], pad: 'x'.repeat(70 * 1024) },
  });
  assert.equal(r.status, 413);
  assert.equal(r.body.error.code, 'PAYLOAD_TOO_LARGE');
});

test('malformed JSON → 400 JSON; unknown route → 404 JSON; heartbeat of an unknown server → 404', async () => {
  const bad = await call(`${api.url}/api/media/register`, {
    headers: { ...mediaAuth, 'content-type': 'application/json' },
    body: '{"serverId": ',
  });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.code, 'INVALID_INPUT');
  const nf = await call(`${api.url}/no/such/route`);
  assert.equal(nf.status, 404);
  assert.equal(nf.body.error.code, 'NOT_FOUND');
  const hb = await call(`${api.url}/api/media/heartbeat`, { headers: mediaAuth, json: { serverId: 'never-registered' } });
  assert.equal(hb.status, 404);
  assert.equal(hb.body.error.code, 'NOT_FOUND');
});

test('Fastify’s and Node’s own refusals have the one shape: over-long path parameter 414, malformed URL 400, unsupported type 415, header fields too large 431', async () => {
  const err = async (r: Response) => ({ status: r.status, code: ((await r.json()) as { error: { code: string } }).error.code });
  assert.deepEqual(await err(await fetch(`${api.url}/api/viewers/${'v'.repeat(300)}`, { method: 'DELETE', headers: apiKey })), { status: 414, code: 'URI_TOO_LONG' });
  assert.deepEqual(await err(await fetch(`${api.url}/api/viewers/%E0%A4%A`, { method: 'DELETE', headers: apiKey })), { status: 400, code: 'INVALID_INPUT' });
  assert.deepEqual(
    await err(await fetch(`${api.url}/api/viewers/join`, { method: 'POST', headers: { ...apiKey, 'content-type': 'text/csv' }, body: 'a,b' })),
    { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  );
  const raw = await rawRequest(Number(new URL(api.url).port), oversizedHeaderRequest());
  assert.match(raw, /^HTTP\/1\.1 431 /);
  assert.deepEqual(bodyOf(raw), { error: { code: 'HEADERS_TOO_LARGE', message: 'request header fields too large' } });
});

test('GET /metrics exposes the stagecast metrics in Prometheus text format', async () => {
  const r = await call(`${api.url}/metrics`);
  assert.equal(r.status, 200);
  for (const m of ['stagecast_stages', 'stagecast_viewers', 'stagecast_media_servers', 'stagecast_scaling_actions_total', 'stagecast_joins_total', 'stagecast_http_request_duration_seconds']) {
    assert.match(r.body as string, new RegExp(`^# TYPE ${m} `, 'm'));
  }
});

test('no secret or token ever appears in the log output', async () => {
  // Provoke logs with every secret in headers, including refused ones.
  const ingest = await call(`${api.url}/api/media/ingest-token`, { method: 'POST', headers: apiKey });
  await call(`${api.url}/api/media/stages`, { headers: { authorization: `Bearer ${SECRETS.media}x` } });
  await call(`${api.url}/api/viewers/join`, { headers: { 'x-api-key': `${SECRETS.apiKey}x` }, json: {} });
  api.server.services.log.info({ headers: { authorization: `Bearer ${SECRETS.media}`, 'x-api-key': SECRETS.apiKey }, token: ingest.body.token }, 'test.probe');
  api.server.services.log.info({ upstream: { secret: SECRETS.stage, token: ingest.body.token } }, 'test.probe2');
  const text = api.logs.text;
  assert.ok(text.includes('test.probe2'));
  for (const secret of [SECRETS.apiKey, SECRETS.media, SECRETS.stage, ingest.body.token as string]) {
    assert.ok(!text.includes(secret), `log leaked ${secret.slice(0, 8)}…`);
  }
  assert.ok(api.logs.lines().every((l) => typeof l.msg === 'string'));
});
