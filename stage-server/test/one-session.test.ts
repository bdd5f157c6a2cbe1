/**
 * One seat, one session, over real WebRTC (node-datachannel peers on 127.0.0.1): a subscribe token plays at most one
 * WHEP session at a time. Repeated POSTs with one token replace each other make-before-break, so one viewer cannot
 * fill a stage, and the API Server sees one join for the seat, not a join and a leave per reconnect.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import nodeDataChannel from 'node-datachannel';
import { CreateStageResponseSchema, type LocalStage } from '@stagecast/protocol';
import type { StageServer } from '../src/app.js';
import { createRtcPlane } from '../src/services/rtc-plane.js';
import { startFakeApi, type FakeApi } from './fake-api.js';
import { admin, startInProcess, tempDir, waitFor } from './helpers.js';
import { whepViewer } from './whep-viewer.js';

describe('one WHEP session per subscribe token (real WebRTC, 127.0.0.1)', () => {
  let api: FakeApi;
  let server: StageServer;
  let base: string;
  let dir: Awaited<ReturnType<typeof tempDir>>;
  const cleanup: Array<() => Promise<void> | void> = [];

  before(async () => {
    api = await startFakeApi();
    dir = await tempDir();
    ({ server, base } = await startInProcess(
      { DATA_DIR: dir.path, API_SERVER_URL: api.url, RTC_BIND_ADDRESS: '127.0.0.1', MAX_VIEWERS_PER_STAGE: '3' },
      { plane: createRtcPlane(), reporter: { flushDelayMs: 10 } },
    ));
  });
  after(async () => {
    for (const c of cleanup.reverse()) await c();
    await server?.stop();
    await api?.close();
    await dir?.remove();
    nodeDataChannel.cleanup();
  });

  const newStage = async (): Promise<LocalStage> => CreateStageResponseSchema.parse(await (await admin(base).create()).json()).stage;

  test('five WHEP POSTs with one token leave one session at the stage; the seat stays joined; other viewers still fit', async () => {
    const stage = await newStage();
    const room = () => server.stages.room(stage.stageId);
    const token = await api.token({ stageArn: stage.stageArn, capability: 'subscribe', jti: 'seat-1' });

    const first = await whepViewer(stage.whepUrl, token);
    cleanup.push(() => first.stop());
    assert.equal(first.status, 201, first.body);
    assert.ok(await first.peer.connected(10_000), 'first session connected');
    assert.equal(room().stats().viewers, 1);

    // Four more with the same token, at once (a page reloaded in a loop, or a script): each is answered — the stage
    // has 3 seats and this is one of them — and each supersedes the one before.
    const more = await Promise.all([1, 2, 3, 4].map(() => whepViewer(stage.whepUrl, token)));
    for (const v of more) cleanup.push(() => v.stop());
    assert.deepEqual(more.map((v) => v.status), [201, 201, 201, 201], 'a replacement is never refused for capacity');

    await waitFor(() => room().stats().viewers === 1, { timeoutMs: 15_000, what: 'one session left at the stage' });
    // The survivor is a connected session of the new ones; the first one was closed by the stage.
    await waitFor(() => more.some((v) => v.peer.state === 'connected'), { timeoutMs: 10_000, what: 'the newest session connected' });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(room().stats().viewers, 1, 'still one session');

    // The seat was never given up: one join for seat-1, no leave.
    const seat = () => api.events.filter((e) => e.stageArn === stage.stageArn && e.participantId === 'seat-1');
    await waitFor(() => seat().length >= 1, { what: 'the join event' });
    assert.deepEqual(seat().map((e) => e.type), ['joined']);

    // The token took one seat of three: two other viewers fit.
    const others = await Promise.all(['seat-2', 'seat-3'].map(async (jti) => whepViewer(stage.whepUrl, await api.token({ stageArn: stage.stageArn, capability: 'subscribe', jti }))));
    for (const v of others) cleanup.push(() => v.stop());
    assert.deepEqual(others.map((v) => v.status), [201, 201]);
    const fourth = await whepViewer(stage.whepUrl, await api.token({ stageArn: stage.stageArn, capability: 'subscribe', jti: 'seat-4' }));
    cleanup.push(() => fourth.stop());
    assert.equal(fourth.status, 503, 'three seats taken');
  });

});
