/**
 * One seat, one session, over real WebRTC (node-datachannel peers on 127.0.0.1): a subscribe token plays at most one
 * WHEP session at a time. Repeated POSTs with one token replace each other make-before-break, so one viewer cannot
 * fill a stage, and the API Server sees one join for the seat, not a join and a leave per reconnect.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RtcStageFixture } from './rtc-fixture.js';
import { waitFor } from './helpers.js';
import { whepViewer } from './whep-viewer.js';

describe('one WHEP session per subscribe token (real WebRTC, 127.0.0.1)', () => {
  const f = new RtcStageFixture({ MAX_VIEWERS_PER_STAGE: '3' });
  before(() => f.start());
  after(() => f.stop());
  const newStage = () => f.newStage();

  test('five WHEP POSTs with one token leave one session at the stage; the seat stays joined; other viewers still fit', async () => {
    const stage = await newStage();
    const room = () => f.server.stages.room(stage.stageId);
    const token = await f.api.token({ stageArn: stage.stageArn, capability: 'subscribe', jti: 'seat-1' });

    const first = await whepViewer(stage.whepUrl, token);
    f.cleanup.push(() => first.stop());
    assert.equal(first.status, 201, first.body);
    assert.ok(await first.peer.connected(10_000), 'first session connected');
    assert.equal(room().stats().viewers, 1);

    // Four more with the same token, at once (a page reloaded in a loop, or a script): each is answered — the stage
    // has 3 seats and this is one of them — and each supersedes the one before.
    const more = await Promise.all([1, 2, 3, 4].map(() => whepViewer(stage.whepUrl, token)));
    for (const v of more) f.cleanup.push(() => v.stop());
    assert.deepEqual(more.map((v) => v.status), [201, 201, 201, 201], 'a replacement is never refused for capacity');

    await waitFor(() => room().stats().viewers === 1, { timeoutMs: 15_000, what: 'one session left at the stage' });
    // The survivor is a connected session of the new ones; the first one was closed by the stage.
    await waitFor(() => more.some((v) => v.peer.state === 'connected'), { timeoutMs: 10_000, what: 'the newest session connected' });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(room().stats().viewers, 1, 'still one session');

    // The seat was never given up: one join for seat-1, no leave.
    const seat = () => f.api.events.filter((e) => e.stageArn === stage.stageArn && e.participantId === 'seat-1');
    await waitFor(() => seat().length >= 1, { what: 'the join event' });
    assert.deepEqual(seat().map((e) => e.type), ['joined']);

    // The token took one seat of three: two other viewers fit.
    const others = await Promise.all(['seat-2', 'seat-3'].map(async (jti) => whepViewer(stage.whepUrl, await f.api.token({ stageArn: stage.stageArn, capability: 'subscribe', jti }))));
    for (const v of others) f.cleanup.push(() => v.stop());
    assert.deepEqual(others.map((v) => v.status), [201, 201]);
    const fourth = await whepViewer(stage.whepUrl, await f.api.token({ stageArn: stage.stageArn, capability: 'subscribe', jti: 'seat-4' }));
    f.cleanup.push(() => fourth.stop());
    assert.equal(fourth.status, 503, 'three seats taken');
  });

});
