/**
 * A pool of Media Servers through a real API Server (real SQLite file, fake stage admin): the owners in
 * GET /api/media/stages and the announcements on the WebSocket, the servers view, the 409 on a token for a stage
 * another server owns, and the WHIP front door (307 with Location, 401, 503, OPTIONS) through app.inject().
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPair, SignJWT } from 'jose';
import WebSocket from 'ws';
import { IngestTokenResponseSchema, ServersResponseSchema, StagesResponseSchema, TOKEN_ALG } from '@stagecast/protocol';
import { apiKey, call, mediaAuth, SECRETS, startApi, type TestApi } from './helpers/api.js';
import { startFakeStageAdmin, type FakeStageAdmin } from './helpers/fake-stage-admin.js';
import { waitFor } from './helpers/wait.js';
import { connectMediaSocket, type RecordingSocket } from './helpers/ws-client.js';

const INGEST_TOKEN = 'obs-ingest-token-0123456789abcdef';
let stage: FakeStageAdmin;
let api: TestApi;
let socket: RecordingSocket;

before(async () => {
  stage = await startFakeStageAdmin(SECRETS.stage);
  api = await startApi({
    stageUrl: stage.url,
    // Long enough that no server goes offline by itself during these tests.
    env: { MIN_STAGES: '4', HEARTBEAT_INTERVAL_MS: '10000', INGEST_TOKEN },
    logLevel: 'info',
  });
  socket = await connectMediaSocket(api.wsUrl);
});
after(async () => {
  socket?.close();
  await api?.stop();
  await stage?.close();
});

async function stages() {
  const r = await call(`${api.url}/api/media/stages`, { headers: mediaAuth });
  assert.equal(r.status, 200);
  return StagesResponseSchema.parse(r.body);
}
async function servers() {
  const r = await call(`${api.url}/api/media/servers`, { headers: apiKey });
  assert.equal(r.status, 200);
  return ServersResponseSchema.parse(r.body).servers;
}
const post = (path: string, json: unknown) => call(`${api.url}${path}`, { headers: mediaAuth, json });
/** A POST as OBS or a Node WHIP client sends it (no Origin: answered with a redirect). */
const frontDoor = (authorization?: string) =>
  api.server.app.inject({
    method: 'POST',
    url: '/whip',
    headers: { 'content-type': 'application/sdp', ...(authorization ? { authorization } : {}) },
    payload: 'v=0\r\n',
  });

test('before any Media Server: 503 at the front door with Retry-After, stages without owner, origin null', async () => {
  await waitFor(async () => (await stages()).stages.length === 4, { what: '4 stages' });
  const r = await stages();
  for (const st of r.stages) {
    assert.equal(st.mediaServerId, null);
    assert.equal(st.previousMediaServerId, null);
  }
  assert.equal(r.origin, null);
  const door = await frontDoor(`Bearer ${INGEST_TOKEN}`);
  assert.equal(door.statusCode, 503);
  assert.equal(door.json().error.code, 'CAPACITY_EXCEEDED');
  assert.ok(Number(door.headers['retry-after']) >= 1);
  // The operator's key still reads the stage list (the seed's deployment check).
  assert.equal((await call(`${api.url}/api/media/stages`, { headers: apiKey })).status, 200);
});

test('registered servers own the stages, balanced; each stage_assigned follows its stage_created on the WebSocket', async () => {
  assert.equal((await post('/api/media/register', { serverId: 'ms-a', ipAddress: '127.0.0.1', port: 4001, url: 'http://ms-a.test:4001/', maxLegs: 10 })).status, 200);
  assert.equal((await post('/api/media/register', { serverId: 'ms-b', ipAddress: '127.0.0.1', port: 4002 })).status, 200);
  // ms-a took all four; ms-b's registration moved half of them to it, ms-a handing over until ms-b's legs connect.
  const moved = await stages();
  const count = (id: string) => moved.stages.filter((st) => st.mediaServerId === id).length;
  assert.deepEqual([count('ms-a'), count('ms-b')], [2, 2]);
  for (const st of moved.stages) assert.equal(st.previousMediaServerId, st.mediaServerId === 'ms-b' ? 'ms-a' : null);
  const legs = moved.stages.filter((st) => st.mediaServerId === 'ms-b').map((st) => ({ stageArn: st.stageArn, state: 'connected' as const }));
  assert.equal((await post('/api/media/heartbeat', { serverId: 'ms-b', legs })).status, 200);
  const r = await stages();
  assert.ok(r.stages.every((st) => st.previousMediaServerId === null), 'handovers completed by the connected report');
  for (const st of r.stages) {
    const i = socket.messages.findIndex((m) => m.type === 'stage_created' && m.data.stageArn === st.stageArn);
    const j = socket.messages.findIndex((m) => m.type === 'stage_assigned' && m.data.stageArn === st.stageArn);
    assert.ok(i >= 0 && j > i, `stage_assigned after stage_created for ${st.stageArn}`);
  }
  const view = await servers();
  const a = view.find((s) => s.serverId === 'ms-a')!;
  const b = view.find((s) => s.serverId === 'ms-b')!;
  assert.equal(a.url, 'http://ms-a.test:4001');
  assert.equal(a.maxLegs, 10);
  assert.equal(a.draining, false);
  assert.equal(b.url, 'http://127.0.0.1:4002', 'default: http://ipAddress:port');
  assert.equal(b.maxLegs, undefined);
  assert.equal((a.assignedStages ?? 0) + (b.assignedStages ?? 0), 4);
});

test('POST /api/media/token: 409 CONFLICT to a server that neither owns nor hands over the stage; the owner and no serverId get one', async () => {
  const st = (await stages()).stages.find((s) => s.mediaServerId === 'ms-a')!;
  const other = await post('/api/media/token', { stageArn: st.stageArn, serverId: 'ms-b' });
  assert.equal(other.status, 409);
  assert.equal(other.body.error.code, 'CONFLICT');
  assert.equal((await post('/api/media/token', { stageArn: st.stageArn, serverId: 'ms-a' })).status, 200);
  assert.equal((await post('/api/media/token', { stageArn: st.stageArn })).status, 200);
});

test('front door: 401 without a token or with a bad one; 307 to the least-loaded ready server with INGEST_TOKEN or our JWT', async () => {
  for (const auth of [undefined, 'Bearer not-a-token', `Bearer ${INGEST_TOKEN}x`]) {
    const r = await frontDoor(auth);
    assert.equal(r.statusCode, 401, String(auth));
    assert.equal(r.json().error.code, 'UNAUTHORIZED');
  }
  // A JWT signed by someone else's key.
  const { privateKey } = await generateKeyPair(TOKEN_ALG);
  const forged = await new SignJWT({ resource: 'stagecast:ingest' }).setProtectedHeader({ alg: TOKEN_ALG }).setExpirationTime('1h').sign(privateKey);
  assert.equal((await frontDoor(`Bearer ${forged}`)).statusCode, 401);

  const r = await frontDoor(`Bearer ${INGEST_TOKEN}`);
  assert.equal(r.statusCode, 307);
  assert.equal(r.headers.location, 'http://ms-a.test:4001/whip', 'ms-a and ms-b tie: the first by id');

  const ingest = IngestTokenResponseSchema.parse((await call(`${api.url}/api/media/ingest-token`, { method: 'POST', headers: apiKey })).body);
  assert.equal(ingest.whipUrl, `${api.url}/whip`, 'the broadcaster is given the front door');
  const jwt = await frontDoor(`Bearer ${ingest.token}`);
  assert.equal(jwt.statusCode, 307);
  assert.match(String(jwt.headers.location), /\/whip$/);

  const pre = await api.server.app.inject({ method: 'OPTIONS', url: '/whip', headers: { origin: 'http://x.test', 'access-control-request-method': 'POST' } });
  assert.equal(pre.statusCode, 204);
  assert.match(String(pre.headers['access-control-allow-methods']), /POST/);
  assert.match(String(pre.headers['access-control-allow-headers']), /Authorization/);
  assert.equal(pre.headers['accept-post'], 'application/sdp');
});

test('origin: the server reporting ingest broadcaster is the front door target and is in GET /api/media/stages; draining, it is not', async () => {
  assert.equal((await post('/api/media/heartbeat', { serverId: 'ms-b', ingest: 'broadcaster' })).status, 200);
  assert.deepEqual((await stages()).origin, { serverId: 'ms-b', url: 'http://127.0.0.1:4002' });
  await waitFor(() => socket.messages.some((m) => m.type === 'origin_changed' && m.data.origin?.serverId === 'ms-b'), { what: 'origin_changed' });
  assert.equal((await frontDoor(`Bearer ${INGEST_TOKEN}`)).headers.location, 'http://127.0.0.1:4002/whip');

  // Draining: its stages move to ms-a (it stays previous), and the front door sends the broadcaster to ms-a.
  assert.equal((await post('/api/media/heartbeat', { serverId: 'ms-b', ingest: 'broadcaster', draining: true })).status, 200);
  const r = await stages();
  assert.ok(r.stages.every((st) => st.mediaServerId === 'ms-a'));
  assert.equal(r.stages.filter((st) => st.previousMediaServerId === 'ms-b').length, 2);
  assert.equal((await frontDoor(`Bearer ${INGEST_TOKEN}`)).headers.location, 'http://ms-a.test:4001/whip');
  // ms-b still hands over: it may still get its token.
  const handing = r.stages.find((st) => st.previousMediaServerId === 'ms-b')!;
  assert.equal((await post('/api/media/token', { stageArn: handing.stageArn, serverId: 'ms-b' })).status, 200);
  const view = await servers();
  assert.equal(view.find((s) => s.serverId === 'ms-b')!.draining, true);

  // ms-a's legs connect: the handovers complete.
  const legs = r.stages.map((st) => ({ stageArn: st.stageArn, state: 'connected' as const }));
  assert.equal((await post('/api/media/heartbeat', { serverId: 'ms-a', legs })).status, 200);
  assert.ok((await stages()).stages.every((st) => st.mediaServerId === 'ms-a' && st.previousMediaServerId === null));

  // Both stop: no server is ready, the front door answers 503 and the origin is gone.
  await post('/api/media/heartbeat', { serverId: 'ms-b', stopping: true });
  await post('/api/media/heartbeat', { serverId: 'ms-a', stopping: true });
  assert.equal((await frontDoor(`Bearer ${INGEST_TOKEN}`)).statusCode, 503);
  assert.equal((await stages()).origin, null);
  const metrics = await call(`${api.url}/metrics`);
  assert.match(metrics.body, /stagecast_whip_front_door_redirects_total\{outcome="origin"\} 1/);
  assert.match(metrics.body, /stagecast_whip_front_door_redirects_total\{outcome="unauthorized"\} 4/);
  assert.match(metrics.body, /stagecast_stage_handovers_total\{reason="drain"\} 2/);
});

test('the dashboard shows each stage\'s Media Server and each server\'s url and draining state', async () => {
  const r = await call(`${api.url}/api/dashboard`, { headers: apiKey });
  assert.equal(r.status, 200);
  assert.ok(r.body.stages.every((st: { mediaServerId?: string | null }) => 'mediaServerId' in st));
  assert.ok(r.body.servers.every((m: { url?: string }) => typeof m.url === 'string'));
  assert.ok('origin' in r.body);
});

test('a browser\'s POST (it sends Origin) is forwarded to the Media Server with its token, and answered with an absolute Location', async () => {
  const seen: { authorization?: string; contentType?: string; body: string }[] = [];
  const ms = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ authorization: req.headers.authorization, contentType: req.headers['content-type'], body: Buffer.concat(chunks).toString() });
      res.writeHead(201, { 'content-type': 'application/sdp', location: '/whip/sessions/s1', etag: '"e1"' });
      res.end('v=0 answer');
    });
  });
  await new Promise<void>((r) => ms.listen(0, '127.0.0.1', r));
  try {
    const port = (ms.address() as AddressInfo).port;
    assert.equal((await post('/api/media/register', { serverId: 'ms-web', ipAddress: '127.0.0.1', port })).status, 200);
    const r = await api.server.app.inject({
      method: 'POST',
      url: '/whip',
      headers: { origin: 'http://page.test', 'content-type': 'application/sdp', authorization: `Bearer ${INGEST_TOKEN}` },
      payload: 'v=0 offer',
    });
    assert.equal(r.statusCode, 201);
    assert.equal(r.body, 'v=0 answer');
    assert.equal(r.headers.location, `http://127.0.0.1:${port}/whip/sessions/s1`);
    assert.equal(r.headers.etag, '"e1"');
    assert.equal(r.headers['access-control-allow-origin'], '*');
    assert.deepEqual(seen, [{ authorization: `Bearer ${INGEST_TOKEN}`, contentType: 'application/sdp', body: 'v=0 offer' }]);
    // Without a valid token nothing is forwarded.
    const refused = await api.server.app.inject({ method: 'POST', url: '/whip', headers: { origin: 'http://page.test', 'content-type': 'application/sdp' }, payload: 'v=0' });
    assert.equal(refused.statusCode, 401);
    assert.equal(seen.length, 1);
  } finally {
    await post('/api/media/heartbeat', { serverId: 'ms-web', stopping: true });
    await new Promise<void>((r) => ms.close(() => r()));
  }
});

test('a Media Server whose WebSocket closes (kill -9) loses its stages at once, staying previous; it stops being the origin', async () => {
  await post('/api/media/register', { serverId: 'ms-x', ipAddress: '127.0.0.1', port: 4010 });
  await post('/api/media/register', { serverId: 'ms-y', ipAddress: '127.0.0.1', port: 4011 });
  const ws = new WebSocket(`${api.wsUrl}/ws?type=media-server&serverId=ms-x`, { headers: mediaAuth });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const yLegs = (await stages()).stages.filter((st) => st.mediaServerId === 'ms-y').map((st) => ({ stageArn: st.stageArn, state: 'connected' as const }));
  await post('/api/media/heartbeat', { serverId: 'ms-y', legs: yLegs });
  await post('/api/media/heartbeat', { serverId: 'ms-x', ingest: 'broadcaster' });
  const before = await stages();
  assert.equal(before.origin?.serverId, 'ms-x');
  const onX = before.stages.filter((st) => st.mediaServerId === 'ms-x').map((st) => st.stageArn);
  assert.equal(onX.length, 2);

  ws.terminate();
  const after = await waitFor(async () => {
    const s = await stages();
    return s.stages.every((st) => st.mediaServerId === 'ms-y') && s;
  }, { what: 'every stage on ms-y' });
  for (const st of after.stages) assert.equal(st.previousMediaServerId, onX.includes(st.stageArn) ? 'ms-x' : null);
  assert.equal(after.origin, null);
  assert.equal((await frontDoor(`Bearer ${INGEST_TOKEN}`)).headers.location, 'http://127.0.0.1:4011/whip');
  const metrics = await call(`${api.url}/metrics`);
  assert.match(metrics.body, /stagecast_stage_handovers_total\{reason="socket_closed"\} 2/);
  assert.match(metrics.body, /stagecast_stage_assignments\{server="ms-y"\} 4/);
});
