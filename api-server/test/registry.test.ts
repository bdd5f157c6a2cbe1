/** Media Server registry over real HTTP: register, heartbeat, offline after 3 missed intervals, announced on the WebSocket. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ServersResponseSchema } from '@stagecast/protocol';
import { apiKey, call, mediaAuth, SECRETS, startApi, type TestApi } from './helpers/api.js';
import { startFakeStageAdmin, type FakeStageAdmin } from './helpers/fake-stage-admin.js';
import { waitFor } from './helpers/wait.js';
import { connectMediaSocket, type RecordingSocket } from './helpers/ws-client.js';

const INTERVAL = 150;
let stage: FakeStageAdmin;
let api: TestApi;
let socket: RecordingSocket;

before(async () => {
  stage = await startFakeStageAdmin(SECRETS.stage);
  api = await startApi({ stageUrl: stage.url, env: { HEARTBEAT_INTERVAL_MS: String(INTERVAL) }, logLevel: 'warn' });
  socket = await connectMediaSocket(api.wsUrl);
});
after(async () => {
  socket?.close();
  await api?.stop();
  await stage?.close();
});

async function server(id: string) {
  const r = await call(`${api.url}/api/media/servers`, { headers: apiKey });
  return ServersResponseSchema.parse(r.body).servers.find((s) => s.serverId === id);
}

test('register announces media_server_online and lists the server online with the heartbeat interval', async () => {
  const r = await call(`${api.url}/api/media/register`, { headers: mediaAuth, json: { serverId: 'ms-a', ipAddress: '10.0.0.5', port: 3001 } });
  assert.equal(r.status, 200);
  assert.equal(r.body.heartbeatIntervalMs, INTERVAL);
  await waitFor(() => socket.messages.some((m) => m.type === 'media_server_online' && m.data.serverId === 'ms-a'), { what: 'online announcement' });
  const s = await server('ms-a');
  assert.equal(s?.state, 'online');
  assert.equal(s?.ipAddress, '10.0.0.5');
  assert.equal(s?.port, 3001);
});

test('heartbeats keep it online and report publisher state and legs per stage', async () => {
  const leg = { stageArn: 'arn:stagecast:ivs:local:000000000000:stage/s1', state: 'connected' as const };
  const before = (await server('ms-a'))!.lastHeartbeat;
  for (let i = 0; i < 5; i++) {
    const r = await call(`${api.url}/api/media/heartbeat`, { headers: mediaAuth, json: { serverId: 'ms-a', publisherOnline: true, legs: [leg] } });
    assert.equal(r.status, 200);
    await new Promise((res) => setTimeout(res, INTERVAL)); // paced like a Media Server, not a synchronisation
  }
  const s = await server('ms-a');
  assert.equal(s?.state, 'online', 'five intervals with heartbeats: still online');
  assert.equal(s?.publisherOnline, true);
  assert.deepEqual(s?.stages, [leg]);
  assert.ok(Date.parse(s!.lastHeartbeat) > Date.parse(before));
});

test('after 3 missed intervals the server is marked offline and media_server_offline is announced', async () => {
  const t0 = Date.now();
  await waitFor(() => socket.messages.some((m) => m.type === 'media_server_offline' && m.data.serverId === 'ms-a'), {
    timeoutMs: 10 * INTERVAL,
    what: 'offline announcement',
  });
  assert.ok(Date.now() - t0 >= 2 * INTERVAL, 'not before the 3 intervals are (nearly) over');
  assert.equal((await server('ms-a'))?.state, 'offline');
});

test('a heartbeat from an offline server brings it back online (announced); an unknown one gets 404 to re-register', async () => {
  const r = await call(`${api.url}/api/media/heartbeat`, { headers: mediaAuth, json: { serverId: 'ms-a' } });
  assert.equal(r.status, 200);
  await waitFor(() => socket.messages.filter((m) => m.type === 'media_server_online' && m.data.serverId === 'ms-a').length === 2, {
    what: 'second online announcement',
  });
  assert.equal((await server('ms-a'))?.state, 'online');
  const unknown = await call(`${api.url}/api/media/heartbeat`, { headers: mediaAuth, json: { serverId: 'ms-unknown' } });
  assert.equal(unknown.status, 404);
  const seqs = socket.messages.map((m) => m.seq);
  assert.deepEqual(seqs, seqs.map((_, i) => i + 1));
});

test('a last heartbeat with stopping: true marks the server offline at once and announces it (no 3-interval wait)', async () => {
  const r0 = await call(`${api.url}/api/media/register`, { headers: mediaAuth, json: { serverId: 'ms-b', ipAddress: '10.0.0.6', port: 3001 } });
  assert.equal(r0.status, 200);
  const before = socket.messages.filter((m) => m.type === 'media_server_offline' && m.data.serverId === 'ms-b').length;
  const r = await call(`${api.url}/api/media/heartbeat`, { headers: mediaAuth, json: { serverId: 'ms-b', publisherOnline: false, legs: [], stopping: true } });
  assert.equal(r.status, 200);
  const s = await server('ms-b');
  assert.equal(s?.state, 'offline', 'offline as soon as the heartbeat is answered');
  assert.deepEqual(s?.stages, []);
  await waitFor(() => socket.messages.filter((m) => m.type === 'media_server_offline' && m.data.serverId === 'ms-b').length === before + 1, {
    timeoutMs: INTERVAL,
    what: 'offline announcement within one interval',
  });
});
