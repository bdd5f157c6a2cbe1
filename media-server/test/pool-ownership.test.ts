/** One Media Server against an API Server that assigns stages (the fake, in pool mode): ownership, 409 tokens, drain. */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { localStageArn } from '@stagecast/protocol';
import { shutdownRtc } from '@stagecast/rtc';
import { parseConfig } from '../src/config.js';
import { createMediaServer, type MediaServer } from '../src/system.js';
import { startFakeApi, type FakeApi } from './helpers/fake-api.js';
import { fakeConnector, type FakeConnector } from './helpers/fakes.js';
import { testLogger, type LogCapture } from './helpers/log.js';
import { waitFor } from './helpers/wait.js';

const SECRET = 'media-secret-0123456789';
const ME = 'ms-pool-1';

after(() => shutdownRtc());

async function withPoolServer(fn: (r: { ms: MediaServer; api: FakeApi; conn: FakeConnector; logs: LogCapture }) => Promise<void>, env: Record<string, string> = {}): Promise<void> {
  const api = await startFakeApi({ secret: SECRET, heartbeatIntervalMs: 100, whipBase: 'http://127.0.0.1:9' });
  api.pool = true;
  const conn = fakeConnector();
  const { log, logs } = testLogger('info');
  const config = parseConfig({ PORT: '0', HOST: '127.0.0.1', MEDIA_SERVER_SECRET: SECRET, API_SERVER_URL: api.url, SERVER_ID: ME, HEARTBEAT_INTERVAL_MS: '5000', ...env });
  const ms = await createMediaServer(config, log, { connect: conn.connect, backoff: { baseMs: 20, capMs: 100 } });
  try {
    await ms.start();
    await waitFor(() => api.openSockets() === 1, { what: 'socket' });
    await fn({ ms, api, conn, logs });
  } finally {
    await ms.stop();
    await api.stop();
  }
}

test('the Media Server publishes only into its own stages; stage_assigned moves a leg at once, and a connected leg is reported by an immediate heartbeat', async () => {
  await withPoolServer(async ({ ms, api, conn }) => {
    const A = localStageArn('own');
    const B = localStageArn('theirs');
    api.stages.add(A);
    api.stages.add(B);
    api.assignments.set(B, { serverId: 'ms-other', previous: null });
    api.assign(A, ME);
    await waitFor(() => ms.stageManager.legFor(A)?.state === 'connected', { what: 'leg of the owned stage' });
    // The heartbeat interval is 5 s: only the immediate heartbeat can report the connected leg this soon.
    await waitFor(() => api.heartbeatLog.some((h) => h.legs?.some((l) => l.stageArn === A && l.state === 'connected')), { what: 'immediate heartbeat', timeoutMs: 2000 });
    await ms.stageManager.syncAllStages();
    assert.equal(ms.stageManager.legFor(B), undefined, 'no leg into another server\'s stage');
    assert.equal(conn.live(B).length, 0);
    api.assign(A, 'ms-other', ME);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(ms.stageManager.legFor(A)?.state, 'connected', 'kept during the handover');
    api.assign(A, 'ms-other', null);
    await waitFor(() => conn.live(A).length === 0, { what: 'the leg DELETEd after the handover' });
    const registered = api.servers.get(ME)!.register;
    assert.equal(registered.url, `http://127.0.0.1:${ms.port}`);
  });
});

test('a token refused with 409 by the API Server drops the leg: no retry storm', async () => {
  await withPoolServer(async ({ ms, api, logs }) => {
    const A = localStageArn('moved');
    api.stages.add(A);
    // The stage is another server's, but this one was told (wrongly, or late) that it is its own.
    api.assignments.set(A, { serverId: 'ms-other', previous: null });
    ms.stageManager.connectToStage(A);
    await waitFor(() => ms.stageManager.legFor(A) === undefined, { what: 'the leg dropped' });
    await new Promise((r) => setTimeout(r, 300));
    const tokenCalls = api.calls.filter((c) => c.path === '/api/media/token');
    assert.equal(tokenCalls.length, 1);
    assert.equal(tokenCalls[0]!.status, 409);
    assert.equal(logs.count('stage.released'), 1);
  });
});

test('drain: stop() heartbeats draining:true, keeps every leg until the API Server has moved each stage away, then DELETEs and says stopping', async () => {
  await withPoolServer(
    async ({ ms, api, conn, logs }) => {
      const A = localStageArn('d1');
      const B = localStageArn('d2');
      api.stages.add(A);
      api.stages.add(B);
      api.assign(A, ME);
      api.assign(B, ME);
      await waitFor(() => ms.stageManager.stats().stagesConnected === 2, { what: 'two legs' });
      const stopping = ms.stop();
      await waitFor(() => api.heartbeatLog.some((h) => h.draining === true), { what: 'a draining heartbeat' });
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(conn.live(A).length + conn.live(B).length, 2, 'both legs serve while their stages have not moved');
      // The API Server moves them, make-before-break: first with this server as previous, then complete.
      api.assign(A, 'ms-other', ME);
      api.assign(B, 'ms-other', ME);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(conn.live(A).length, 1, 'still serving during the handover');
      api.assign(A, 'ms-other', null);
      await waitFor(() => conn.live(A).length === 0, { what: 'A released' });
      assert.equal(conn.live(B).length, 1);
      api.assign(B, 'ms-other', null);
      await stopping;
      assert.equal(logs.count('drain.completed'), 1);
      const last = api.heartbeatLog.at(-1)!;
      assert.equal(last.stopping, true);
      assert.ok(conn.conns.every((c) => c.stopped));
    },
    { DRAIN_TIMEOUT_MS: '10000' },
  );
});

test('drain times out when no other server takes the stages, then stops anyway', async () => {
  await withPoolServer(
    async ({ ms, api, conn, logs }) => {
      const A = localStageArn('stuck');
      api.stages.add(A);
      api.assign(A, ME);
      await waitFor(() => ms.stageManager.legFor(A)?.state === 'connected', { what: 'leg' });
      const t0 = Date.now();
      await ms.stop();
      const took = Date.now() - t0;
      assert.ok(took >= 280 && took < 3000, `drain waited its timeout (${took} ms)`);
      assert.equal(logs.count('drain.timed_out'), 1);
      assert.equal(api.heartbeatLog.at(-1)!.stopping, true);
      assert.ok(conn.conns.every((c) => c.stopped));
    },
    { DRAIN_TIMEOUT_MS: '300' },
  );
});
