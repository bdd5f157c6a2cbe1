import assert from 'node:assert/strict';
import { test } from 'node:test';
import { localStageArn, type StageArn } from '@stagecast/protocol';
import { APIClientService, ApiRequestError } from '../src/services/APIClientService.js';
import { backoffDelay } from '../src/services/backoff.js';
import { startFakeApi, type FakeApi } from './helpers/fake-api.js';
import { testLogger } from './helpers/log.js';
import { waitFor } from './helpers/wait.js';

const SECRET = 'media-secret-0123456789';

function client(api: FakeApi, extra: Partial<ConstructorParameters<typeof APIClientService>[0]> = {}) {
  const { log, logs } = testLogger();
  const c = new APIClientService({
    apiUrl: api.url,
    secret: SECRET,
    serverId: 'media-test-1',
    advertisedIp: '127.0.0.1',
    port: 3001,
    requestTimeoutMs: 1000,
    log,
    backoff: { baseMs: 20, capMs: 200 },
    ...extra,
  });
  return { c, logs };
}

async function withApi(fn: (api: FakeApi) => Promise<void>): Promise<void> {
  const api = await startFakeApi({ secret: SECRET, heartbeatIntervalMs: 100 });
  try {
    await fn(api);
  } finally {
    await api.stop();
  }
}

test('backoffDelay grows exponentially with jitter, never below half its step, and is capped', () => {
  const at = (n: number, r: number) => backoffDelay(n, { baseMs: 500, capMs: 30_000, random: () => r });
  assert.equal(at(0, 0), 250);
  assert.equal(at(0, 1), 500);
  assert.equal(at(3, 0), 2000);
  assert.equal(at(3, 1), 4000);
  assert.equal(at(20, 0), 15_000);
  assert.equal(at(20, 1), 30_000);
  assert.equal(at(1000, 0.5), 22_500);
});

test('registers, takes the heartbeat interval from the API Server and heartbeats the legs it is given', async () => {
  await withApi(async (api) => {
    const { c, logs } = client(api);
    try {
      const arn = localStageArn('s1');
      c.setHeartbeatSource(() => ({ publisherOnline: true, legs: [{ stageArn: arn, state: 'connected' }] }));
      await c.register();
      assert.equal(c.heartbeatIntervalMs, 100);
      assert.ok(c.registrationFresh());
      assert.equal(logs.count('registered'), 1);
      c.startHeartbeat();
      const s = await waitFor(() => (api.servers.get('media-test-1')?.heartbeats ?? 0) >= 2 && api.servers.get('media-test-1'), { what: 'two heartbeats' });
      assert.deepEqual(s.legs, [{ stageArn: arn, state: 'connected' }]);
      assert.equal(s.publisherOnline, true);
      assert.equal(s.port, 3001);
      assert.equal(c.status().heartbeat, 'ok');
    } finally {
      c.stop();
    }
  });
});

test('a 404 on heartbeat (the API Server forgot us) registers again', async () => {
  await withApi(async (api) => {
    const { c, logs } = client(api);
    try {
      await c.register();
      c.startHeartbeat();
      await waitFor(() => (api.servers.get('media-test-1')?.heartbeats ?? 0) >= 1, { what: 'a heartbeat' });
      api.forgetServers();
      await waitFor(() => (api.servers.get('media-test-1')?.heartbeats ?? 0) >= 1, { what: 'heartbeats after re-registration' });
      assert.ok(api.calls.some((x) => x.path === '/api/media/heartbeat' && x.status === 404));
      assert.equal(c.status().reRegistrations, 1);
      assert.equal(logs.count('registered'), 2);
      assert.ok(c.registrationFresh());
    } finally {
      c.stop();
    }
  });
});

test('getActiveStages and getStageToken return validated bodies; API errors are typed with their status', async () => {
  await withApi(async (api) => {
    const { c } = client(api);
    const arn = localStageArn('abc');
    api.stages.add(arn);
    const stages = await c.getActiveStages();
    assert.deepEqual(stages.map((s) => s.stageArn), [arn]);
    const t = await c.getStageToken(arn);
    assert.equal(t.participantId, 'pub_1');
    await assert.rejects(c.getStageToken(localStageArn('gone')), (e: unknown) => e instanceof ApiRequestError && e.status === 404 && e.code === 'NOT_FOUND');
    api.failNext('/api/media/stages', 503);
    await assert.rejects(c.getActiveStages(), (e: unknown) => e instanceof ApiRequestError && e.status === 503);
    c.stop();
  });
});

test('the WebSocket delivers stage events, asks for a resync on every opening, reconnects with backoff after an API Server restart', async () => {
  await withApi(async (api) => {
    const { c, logs } = client(api, { requestTimeoutMs: 300 });
    const created: StageArn[] = [];
    const deleted: StageArn[] = [];
    let resyncs = 0;
    let disconnects = 0;
    c.on('stage_created', (e) => created.push(e.stageArn));
    c.on('stage_deleted', (e) => deleted.push(e.stageArn));
    c.on('resync', () => resyncs++);
    c.on('disconnected', () => disconnects++);
    try {
      await c.register();
      c.startHeartbeat();
      c.connectWebSocket();
      await waitFor(() => c.websocketState === 'up', { what: 'the WebSocket' });
      await waitFor(() => resyncs === 1, { what: 'a resync on the first opening too' });
      api.createStage(localStageArn('one'));
      api.deleteStage(localStageArn('one'));
      await waitFor(() => deleted.length === 1, { what: 'stage events' });
      assert.deepEqual(created, [localStageArn('one')]);

      await api.stop();
      await waitFor(() => disconnects === 1 && c.websocketState !== 'up', { what: 'the disconnect' });
      // While the API Server is away: calls fail typed, nothing throws out of timers, logs once per state change.
      await assert.rejects(c.getActiveStages(), (e: unknown) => e instanceof ApiRequestError && e.status === 0);
      await assert.rejects(c.getActiveStages(), (e: unknown) => e instanceof ApiRequestError && e.status === 0);
      await waitFor(() => c.status().heartbeat === 'failing', { what: 'heartbeat failing' });
      await waitFor(() => logs.count('websocket.connect_failed') >= 1, { what: 'a failed reconnect' });
      const failedConnects = logs.count('websocket.connect_failed');
      assert.equal(logs.count('api.unreachable'), 1, 'unreachable logged once, not per retry');
      assert.equal(logs.count('heartbeat.failing'), 1);

      api.forgetServers(); // the restarted API Server lost its registry
      await api.start();
      await waitFor(() => resyncs === 2, { timeoutMs: 5000, what: 'resync after reconnect' });
      assert.equal(c.websocketState, 'up');
      assert.equal(c.status().wsReconnects, 1);
      assert.equal(api.wsConnections, 2);
      assert.ok(failedConnects <= 1, 'a refused reconnect is logged once per outage');
      // The heartbeat's 404 registers again.
      await waitFor(() => (api.servers.get('media-test-1')?.heartbeats ?? 0) >= 1, { what: 're-registration' });
      assert.equal(logs.count('api.reachable'), 1);
      api.createStage(localStageArn('two'));
      await waitFor(() => created.length === 2, { what: 'events after reconnect' });
    } finally {
      c.stop();
    }
    assert.equal(c.websocketState, 'down');
    await waitFor(() => api.openSockets() === 0, { what: 'the socket to close' });
  });
});

test('a WebSocket refused for a wrong secret is retried without crashing and logged once', async () => {
  await withApi(async (api) => {
    const { c, logs } = client(api, { secret: 'wrong-secret-xyz' });
    try {
      c.connectWebSocket();
      await waitFor(() => api.wsAttempts >= 3, { what: 'three attempts' });
      assert.equal(api.wsConnections, 0);
      assert.equal(logs.count('websocket.refused'), 1);
    } finally {
      c.stop();
    }
  });
});

test('a registration refused for the secret (401/403) is logged once as register.refused, naming MEDIA_SERVER_SECRET', async () => {
  await withApi(async (api) => {
    const { c, logs } = client(api, { secret: 'wrong-secret-xyz' });
    try {
      await assert.rejects(c.register(), (e: unknown) => e instanceof ApiRequestError && e.status === 403);
      await assert.rejects(c.register());
      const refused = logs.lines().filter((l) => l.msg === 'register.refused');
      assert.equal(refused.length, 1, 'once per outage, not per retry');
      assert.equal(refused[0]!.level, 50, 'an error, not a hint');
      assert.equal(refused[0]!.status, 403);
      assert.match(String(refused[0]!.hint), /MEDIA_SERVER_SECRET/);
      assert.ok(!logs.text.includes('wrong-secret-xyz'), 'the secret is never logged');
    } finally {
      c.stop();
    }
  });
});

test('registers its URL (http://advertisedIp:port unless PUBLIC_URL) and MAX_LEGS; heartbeats carry draining and the ingest kind', async () => {
  await withApi(async (api) => {
    const { c } = client(api, { maxLegs: 7 });
    const { c: c2 } = client(api, { serverId: 'media-test-2', publicUrl: 'https://m2.example.com' });
    try {
      c.setAdvertisedPort(4555);
      await c.register();
      await c2.register();
      assert.equal(api.servers.get('media-test-1')!.register.url, 'http://127.0.0.1:4555');
      assert.equal(api.servers.get('media-test-1')!.register.maxLegs, 7);
      assert.equal(api.servers.get('media-test-2')!.register.url, 'https://m2.example.com');
      assert.equal(api.servers.get('media-test-2')!.register.maxLegs, undefined);
      let payload = { publisherOnline: false, legs: [], ingest: 'relay' as const, draining: false };
      c.setHeartbeatSource(() => payload);
      await c.heartbeat();
      assert.equal(api.servers.get('media-test-1')!.last!.ingest, 'relay');
      assert.equal(api.servers.get('media-test-1')!.last!.draining, undefined);
      payload = { ...payload, draining: true };
      await c.heartbeat();
      assert.equal(api.servers.get('media-test-1')!.last!.draining, true);
    } finally {
      c.stop();
      c2.stop();
    }
  });
});

test('heartbeatSoon sends one heartbeat at once for a burst of changes, long before the interval', async () => {
  const api = await startFakeApi({ secret: SECRET, heartbeatIntervalMs: 60_000 });
  const { c } = client(api, { nudgeDelayMs: 20 });
  try {
    let ingest: 'none' | 'broadcaster' = 'none';
    c.setHeartbeatSource(() => ({ publisherOnline: ingest === 'broadcaster', legs: [], ingest }));
    await c.register();
    c.startHeartbeat();
    ingest = 'broadcaster';
    for (let i = 0; i < 5; i++) c.heartbeatSoon();
    await waitFor(() => api.servers.get('media-test-1')!.heartbeats >= 1, { what: 'the immediate heartbeat' });
    assert.equal(api.servers.get('media-test-1')!.last!.ingest, 'broadcaster');
    // Let any other scheduled nudge fire; the burst made exactly one.
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(api.servers.get('media-test-1')!.heartbeats, 1);
  } finally {
    c.stop();
    await api.stop();
  }
});

test('stage_assigned and origin_changed events reach the client as typed events; the stage list carries owners and the origin', async () => {
  await withApi(async (api) => {
    api.pool = true;
    const { c } = client(api);
    const arn = localStageArn('s9');
    try {
      const assigned: unknown[] = [];
      const origins: unknown[] = [];
      c.on('stage_assigned', (e) => assigned.push(e));
      c.on('origin_changed', (e) => origins.push(e.origin));
      c.connectWebSocket();
      await waitFor(() => c.websocketState === 'up', { what: 'socket up' });
      api.stages.add(arn);
      api.assign(arn, 'media-test-2', 'media-test-1');
      api.setOrigin({ serverId: 'media-test-2' as never, url: 'http://127.0.0.1:5002' });
      await waitFor(() => assigned.length === 1 && origins.length === 1, { what: 'both events' });
      assert.deepEqual({ ...(assigned[0] as object), timestamp: undefined }, { stageArn: arn, serverId: 'media-test-2', previousServerId: 'media-test-1', timestamp: undefined });
      assert.deepEqual(origins[0], { serverId: 'media-test-2', url: 'http://127.0.0.1:5002' });
      const list = await c.getStages();
      assert.equal(list.stages[0]!.mediaServerId, 'media-test-2');
      assert.equal(list.stages[0]!.previousMediaServerId, 'media-test-1');
      assert.equal(list.origin?.url, 'http://127.0.0.1:5002');
    } finally {
      c.stop();
    }
  });
});

test('heartbeatSoon during a heartbeat on its way sends another after it, with the new state', async () => {
  const api = await startFakeApi({ secret: SECRET, heartbeatIntervalMs: 60_000 });
  const { c } = client(api, { nudgeDelayMs: 10 });
  try {
    let ingest: 'none' | 'relay' = 'none';
    c.setHeartbeatSource(() => ({ publisherOnline: false, legs: [], ingest }));
    await c.register();
    const first = c.heartbeat();
    ingest = 'relay';
    c.heartbeatSoon();
    await first;
    await waitFor(() => api.servers.get('media-test-1')!.heartbeats === 2, { what: 'the follow-up heartbeat' });
    assert.deepEqual(api.heartbeatLog.map((h) => h.ingest), ['none', 'relay']);
  } finally {
    c.stop();
    await api.stop();
  }
});
