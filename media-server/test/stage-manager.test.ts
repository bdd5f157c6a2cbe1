import assert from 'node:assert/strict';
import { test } from 'node:test';
import { localStageArn } from '@stagecast/protocol';
import { Router } from '@stagecast/rtc';
import { SyntheticPublisher } from '@stagecast/rtc/testing';
import { DEFAULT_LEG_TIMING, type LegTiming } from '../src/services/StageLeg.js';
import { StageManager } from '../src/services/StageManager.js';
import { FakeIngestSession, FakeStageApi, fakeConnector, type FakeConnector } from './helpers/fakes.js';
import { testLogger } from './helpers/log.js';
import { waitFor } from './helpers/wait.js';

const FAST: LegTiming = { ...DEFAULT_LEG_TIMING, retryBaseMs: 20, retryCapMs: 100, connectTimeoutMs: 2000 };

async function withManager(
  fn: (x: { sm: StageManager; api: FakeStageApi; conn: FakeConnector; router: Router; logs: ReturnType<typeof testLogger>['logs'] }) => Promise<void>,
  timing: Partial<LegTiming> = {},
): Promise<void> {
  const { log, logs } = testLogger();
  const api = new FakeStageApi();
  const conn = fakeConnector();
  const router = new Router();
  const sm = new StageManager({ serverId: 'me', api, router, connect: conn.connect, log, timing: { ...FAST, ...timing }, syncIntervalMs: 60_000 });
  try {
    await fn({ sm, api, conn, router, logs });
  } finally {
    await sm.stop();
    router.close();
  }
}

const A = localStageArn('stageA');
const B = localStageArn('stageB');
const C = localStageArn('stageC');

function publisher(seed: number): SyntheticPublisher {
  return new SyntheticPublisher({ videoSsrc: 100 + seed, audioSsrc: 200 + seed, videoSeq: 1000 * seed, audioSeq: 500 * seed, videoTs: 90_000 * seed, audioTs: 48_000 * seed, packetsPerFrame: 2, payloadBytes: 200 });
}

test('legs follow the stages: the initial sync, stage_created and stage_deleted, and a resync that repairs missed events — all before any broadcaster', async () => {
  await withManager(async ({ sm, api, conn, router, logs }) => {
    api.stages.add(A);
    api.stages.add(B);
    sm.initialize();
    await sm.syncAllStages();
    await waitFor(() => sm.stats().stagesConnected === 2, { what: 'two legs connected' });
    assert.equal(sm.publisherOnline, false, 'legs come up before the broadcaster');
    assert.equal(router.sinkCount, 2);
    assert.deepEqual(conn.calls.map((c) => c.token), ['tok-1', 'tok-2']);

    api.created(C);
    await waitFor(() => sm.legFor(C)?.state === 'connected', { what: 'leg of the new stage' });
    api.deleted(A);
    assert.equal(sm.legFor(A), undefined);
    assert.equal(conn.live(A).length, 0);

    // Events missed while the WebSocket was down: a stage appeared, another went. 'resync' repairs both.
    api.stages.delete(B);
    const D = localStageArn('stageD');
    api.stages.add(D);
    api.emit('resync');
    await waitFor(() => sm.legFor(D)?.state === 'connected' && !sm.legFor(B), { what: 'resync' });
    assert.deepEqual(sm.stageArns().sort(), [C, D].sort());
    assert.equal(router.sinkCount, 2);
    assert.deepEqual(sm.heartbeatPayload().legs.map((l) => l.state), ['connected', 'connected']);
    for (const ev of ['stages.synced', 'stage.connecting', 'stage.connected', 'stage.disconnected']) assert.ok(logs.count(ev) > 0, ev);
    assert.ok(!logs.text.includes('tok-'), 'no token in the logs');
  });
});

test('a sync while the API Server is away keeps every leg; a sync that raced a stage_deleted does not bring the stage back', async () => {
  await withManager(async ({ sm, api }) => {
    api.stages.add(A);
    sm.initialize();
    await sm.syncAllStages();
    await waitFor(() => sm.legFor(A)?.state === 'connected', { what: 'leg A' });
    api.down = true;
    await sm.syncAllStages();
    assert.equal(sm.stats().lastSyncOk, false);
    assert.equal(sm.legFor(A)?.state, 'connected', 'forwarding never stops because the API is away');
    api.down = false;

    // The list is fetched (still holding A), then the deletion event arrives before the list is applied.
    const getActive = api.getStages.bind(api);
    api.getStages = async () => {
      const list = await getActive();
      api.deleted(A);
      return list;
    };
    await sm.syncAllStages();
    assert.equal(sm.legFor(A), undefined);
  });
});

test('a failed leg retries with backoff and a FRESH token each time, then connects', async () => {
  await withManager(async ({ sm, api, conn }) => {
    conn.failNext(3, 503);
    sm.initialize();
    api.created(A);
    await waitFor(() => sm.legFor(A)?.state === 'connected', { what: 'the leg after retries' });
    assert.equal(conn.calls.length, 4);
    assert.deepEqual(conn.calls.map((c) => c.token), ['tok-1', 'tok-2', 'tok-3', 'tok-4']);
    assert.equal(new Set(conn.calls.map((c) => c.id)).size, 4, 'each attempt is a new sink id');
    const st = sm.stats();
    assert.equal(st.legFailures, 3);
    assert.equal(st.legs[0]!.failures, 3);
    assert.match(st.legs[0]!.lastError ?? '', /503/);

    // A connected leg whose transport fails comes back by itself, with a new token.
    conn.live(A)[0]!.setState('failed');
    assert.equal(sm.legFor(A)?.state, 'failed');
    await waitFor(() => sm.legFor(A)?.state === 'connected', { what: 'reconnect after transport failure' });
    assert.equal(conn.calls.at(-1)!.token, 'tok-5');
    assert.equal(conn.live(A).length, 1);
  });
});

test('a deleted stage’s leg is closed within a second: its sink leaves the router and its WHIP session is DELETEd', async () => {
  await withManager(async ({ sm, api, conn, router }) => {
    sm.initialize();
    api.created(A);
    api.created(B);
    await waitFor(() => sm.stats().stagesConnected === 2, { what: 'legs' });
    const legA = conn.live(A)[0]!;
    const t0 = Date.now();
    api.deleted(A);
    await waitFor(() => legA.stopped, { timeoutMs: 1000, what: 'DELETE of the leg' });
    assert.ok(legA.stoppedAt - t0 < 1000);
    assert.equal(router.sinkCount, 1);
    assert.equal(sm.legFor(B)?.state, 'connected');

    // A stage deleted while its leg is still retrying: the retry stops too.
    conn.failNext(100);
    api.created(C);
    await waitFor(() => sm.legFor(C)?.state === 'failed', { what: 'failing leg' });
    const callsBefore = conn.calls.length;
    api.deleted(C);
    await new Promise((r) => setTimeout(r, 250)); // asserting an absence: wait longer than the retry cap
    assert.equal(conn.calls.length, callsBefore);
  });
});

test('a leg due for rotation is replaced make-before-break: the old leg keeps forwarding until the new one is connected', async () => {
  await withManager(
    async ({ sm, api, conn, router, logs }) => {
      sm.initialize();
      api.created(A);
      await waitFor(() => sm.legFor(A)?.state === 'connected', { what: 'first leg' });
      const first = conn.live(A)[0]!;
      const session = new FakeIngestSession();
      sm.onPublisherConnected(session);
      const pub = publisher(1);
      for (const p of pub.videoFrame(true)) session.deliver('video', p);
      assert.ok(first.sinkPort.of('video').length > 0, 'the first leg forwards');

      conn.mode = 'manual';
      // Max age 300 ms: rotation is due shortly after connecting.
      const second = await waitFor(() => conn.conns.find((c) => c !== first), { what: 'the replacement leg' });
      for (const p of pub.videoFrame(false)) session.deliver('video', p);
      assert.equal(first.stopped, false, 'old leg still up while the new one connects');
      assert.equal(router.sinkCount, 1, 'the new leg joins the router only once it is connected');
      const before = first.sinkPort.of('video').length;
      for (const p of pub.videoFrame(false)) session.deliver('video', p);
      assert.ok(first.sinkPort.of('video').length > before, 'no gap: the old leg forwards during the overlap');

      second.setState('connected');
      await waitFor(() => first.stopped, { what: 'old leg closed after the switch' });
      assert.equal(router.sinkCount, 1);
      // The new leg starts with the cached keyframe, then live frames.
      for (const p of pub.videoFrame(false)) session.deliver('video', p);
      assert.ok(second.sinkPort.of('video').length > 0, 'the new leg forwards');
      assert.equal(sm.stats().rotations, 1);
      assert.equal(logs.count('stage.rotated'), 1);
      assert.equal(sm.heartbeatPayload().legs.length, 1);
    },
    { maxAgeMs: 300 },
  );
});

test('a leg joins the router only once connected, and its first video is the cached keyframe (a replay before the tracks open would be lost)', async () => {
  await withManager(async ({ sm, api, conn, router }) => {
    sm.initialize();
    const session = new FakeIngestSession();
    sm.onPublisherConnected(session);
    const pub = publisher(3);
    for (const p of pub.videoFrame(true)) session.deliver('video', p);
    for (const p of pub.videoFrame(false)) session.deliver('video', p);

    conn.mode = 'manual';
    api.created(A);
    const leg = await waitFor(() => conn.live(A)[0], { what: 'the WHIP 201 of the leg' });
    for (const p of pub.videoFrame(false)) session.deliver('video', p);
    assert.equal(router.sinkCount, 0, 'no sink while ICE/DTLS is still connecting');
    assert.equal(leg.sinkPort.rtp.length, 0, 'nothing is sent into a leg that cannot send yet');

    leg.setState('connected');
    await waitFor(() => sm.legFor(A)?.state === 'connected', { what: 'leg connected' });
    assert.equal(router.sinkCount, 1);
    const video = leg.sinkPort.of('video');
    assert.ok(video.length > 0, 'the cached keyframe is replayed at once, without waiting for the next one');
    assert.equal(video[0]!.bytes[12]! & 0x1f, 24, 'the first packet is the STAP-A carrying SPS + PPS');
  });
});

test('a leg is rotated before its token expires (renewal with a fresh token)', async () => {
  await withManager(
    async ({ sm, api, conn }) => {
      api.tokenTtlMs = 1000; // renewBefore 400 ms → due 600 ms after the token was fetched
      sm.initialize();
      api.created(A);
      await waitFor(() => sm.stats().rotations === 1, { what: 'rotation for the token' });
      assert.deepEqual(conn.calls.map((c) => c.token).slice(0, 2), ['tok-1', 'tok-2']);
      assert.equal(conn.live(A).length, 1);
      const rot = sm.stats().legs[0]!;
      assert.ok(rot.rotateAt, 'the next rotation is scheduled');
    },
    { renewBeforeMs: 400 },
  );
});

test('stop() while a leg’s POST is still in flight waits for it and DELETEs the session it made (none is left at the stage)', async () => {
  await withManager(async ({ sm, api, conn }) => {
    const release = conn.holdNext();
    sm.initialize();
    api.created(A);
    await waitFor(() => conn.calls.length === 1, { what: 'the POST in flight' });
    let stopped = false;
    const stopping = sm.stop().then(() => (stopped = true));
    await new Promise((r) => setImmediate(r));
    assert.equal(stopped, false, 'stop() waits for the POST in flight');
    release();
    await stopping;
    assert.equal(conn.conns.length, 1, 'the POST made a session');
    assert.equal(conn.conns[0]!.stopped, true, 'and it was ended before stop() settled');
  });
});

test('a token that lives less than the renewal margin is renewed at half its life, not in a loop of new sessions', async () => {
  await withManager(
    async ({ sm, api, logs }) => {
      api.tokenTtlMs = 800; // renewBefore 60 s ≥ the token's whole life
      sm.initialize();
      const t0 = Date.now();
      api.created(A);
      await waitFor(() => sm.stats().rotations === 1, { what: 'rotation for the short token', timeoutMs: 5000 });
      assert.ok(Date.now() - t0 >= 350, `rotated after ${Date.now() - t0} ms: at half the token's life, not at once`);
      const next = Date.parse(sm.stats().legs.find((l) => l.rotateAt)!.rotateAt!);
      assert.ok(next - Date.now() >= 250, 'the new leg is due at half its own token’s life, not at once');
      assert.equal(logs.count('stage.token_shorter_than_renewal_margin') >= 1, true);
    },
    { renewBeforeMs: 60_000 },
  );
});

test('the broadcaster feeds the router; when it drops the legs stay up, and when it returns it is the source again with no new signalling', async () => {
  await withManager(async ({ sm, api, conn, router, logs }) => {
    sm.initialize();
    api.created(A);
    await waitFor(() => sm.legFor(A)?.state === 'connected', { what: 'leg' });
    const leg = conn.live(A)[0]!;
    const s1 = new FakeIngestSession();
    sm.onPublisherConnected(s1);
    assert.equal(router.hasSource, true);
    const p1 = publisher(1);
    for (const p of p1.videoFrame(true)) s1.deliver('video', p);
    s1.deliver('audio', p1.audioPacket());
    assert.ok(leg.sinkPort.of('video').length >= 3);
    assert.equal(logs.count('publisher.connected'), 1);
    assert.equal(logs.count('publishing.started'), 1);

    sm.onPublisherDisconnected(s1);
    assert.equal(router.hasSource, false);
    assert.equal(leg.stopped, false);
    assert.equal(sm.legFor(A)?.state, 'connected');

    const s2 = new FakeIngestSession();
    sm.onPublisherConnected(s2);
    const p2 = publisher(2);
    const sent = leg.sinkPort.of('video').length;
    for (const p of p2.videoFrame(true)) s2.deliver('video', p);
    const after = leg.sinkPort.of('video');
    assert.ok(after.length > sent, 'frames resume on the same leg');
    // Continuity across the source change: one SSRC, sequence numbers continue.
    assert.equal(new Set(after.map((r) => r.ssrc)).size, 1);
    assert.equal(after[sent]!.seq, (after[sent - 1]!.seq + 1) & 0xffff);
    assert.equal(conn.calls.length, 1, 'no new signalling to the stage');

    // A replaced session that still delivers is ignored.
    const stale = leg.sinkPort.of('video').length;
    for (const p of p1.videoFrame(false)) s1.deliver('video', p);
    assert.equal(leg.sinkPort.of('video').length, stale);
  });
});

test('a leg whose WHIP POST failed says so in its next token request (the API Server re-reads the stage’s endpoints); one that connected does not', async () => {
  await withManager(async ({ sm, api, conn }) => {
    api.stages.add(A);
    conn.failNext(2, 404); // e.g. an IVS endpoint that moved
    sm.initialize();
    await sm.syncAllStages();
    await waitFor(() => sm.legFor(A)?.state === 'connected', { what: 'the leg after two failed POSTs' });
    assert.deepEqual(
      api.tokenRequests.filter((r) => r.arn === A).map((r) => r.whipFailed),
      [false, true, true],
    );
  });
});

test('ownership: with an API Server that assigns stages, legs only for the stages this server owns or hands over; an older one (no owner field) gets a leg for every stage', async () => {
  await withManager(async ({ sm, api, conn }) => {
    api.pool = true;
    api.stages.add(A);
    api.stages.add(B);
    api.stages.add(C);
    api.assignments.set(A, { serverId: 'me' });
    api.assignments.set(B, { serverId: 'other', previous: 'me' });
    api.assignments.set(C, { serverId: 'other' });
    sm.initialize();
    await sm.syncAllStages();
    assert.equal(sm.ownership, 'assigned');
    assert.deepEqual(sm.stageArns().sort(), [A, B].sort());
    await waitFor(() => sm.stats().stagesConnected === 2, { what: 'owned and handed-over legs' });
    assert.equal(conn.live(C).length, 0, 'no leg into a stage another server owns');
  });
  await withManager(async ({ sm, api }) => {
    api.stages.add(A);
    api.stages.add(B);
    sm.initialize();
    await sm.syncAllStages();
    assert.equal(sm.ownership, 'all');
    assert.deepEqual(sm.stageArns().sort(), [A, B].sort(), "today's behaviour: every stage");
  });
});

test('stage_assigned acts at once: a stage given to this server gets a leg, one given away loses it after the handover, stage_created alone waits for the assignment', async () => {
  await withManager(async ({ sm, api, conn, logs }) => {
    api.pool = true;
    sm.initialize();
    await sm.syncAllStages();
    api.created(A);
    await new Promise((r) => setImmediate(r));
    assert.equal(sm.legFor(A), undefined, 'stage_created waits for stage_assigned');
    api.assigned(A, 'me');
    await waitFor(() => sm.legFor(A)?.state === 'connected', { what: 'leg of the assigned stage' });
    // A handover to another server: this one keeps publishing until the new owner's leg is connected.
    api.assigned(A, 'other', 'me');
    assert.equal(sm.legFor(A)?.state, 'connected', 'make-before-break: kept while handing over');
    api.assigned(A, 'other', null);
    assert.equal(sm.legFor(A), undefined);
    assert.equal(conn.live(A).length, 0);
    assert.equal(sm.stats().released, 1);
    assert.equal(logs.count('stage.released'), 1);
    // A stage handed over TO this server (previous = another) gets a leg at once.
    api.stages.add(B);
    api.assigned(B, 'me', 'other');
    await waitFor(() => sm.legFor(B)?.state === 'connected', { what: 'leg of the stage handed to us' });
  });
});

test('a token refused with 409 (the stage is another server\'s) drops the leg without a retry storm; the periodic sync does not bring it back', async () => {
  await withManager(async ({ sm, api, conn }) => {
    api.pool = true;
    api.stages.add(A);
    api.assignments.set(A, { serverId: 'me' });
    sm.initialize();
    await sm.syncAllStages();
    assert.ok(sm.legFor(A));
    // The API Server moved the stage; this server missed the event and its leg retries.
    await waitFor(() => sm.legFor(A)?.state === 'connected', { what: 'leg A' });
    api.assignments.set(A, { serverId: 'other' });
    // Its next token request (a rotation, a reconnect) is refused.
    sm.legFor(A)!.emit('rotate-due', { reason: 'token-expiry' });
    await waitFor(() => sm.legFor(A) === undefined, { what: 'the leg dropped on 409' });
    const requests = api.tokenRequests.length;
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(api.tokenRequests.length, requests, 'no retries after the 409');
    await sm.syncAllStages();
    assert.equal(sm.legFor(A), undefined, 'the list says the stage is another server\'s');
    assert.equal(conn.live(A).length, 0);
  }, { retryBaseMs: 10, retryCapMs: 20 });
});

test('waitForHandovers (drain): moved once every stage has gone to another server, nowhere when no server can take them, timeout otherwise, at once with an API Server that assigns nothing', async () => {
  await withManager(async ({ sm, api }) => {
    api.pool = true;
    api.stages.add(A);
    api.stages.add(B);
    api.assignments.set(A, { serverId: 'me' });
    api.assignments.set(B, { serverId: 'me' });
    sm.initialize();
    await sm.syncAllStages();
    assert.equal(await sm.waitForHandovers(50), 'timeout', 'times out while stages are still ours');
    const drained = sm.waitForHandovers(5000);
    api.assigned(A, 'other', 'me');
    api.assigned(B, 'other', 'me');
    api.assigned(A, 'other');
    api.assigned(B, 'other');
    assert.equal(await drained, 'moved');
    // The only server drains: the API Server finds no owner for its stages (null, this one still publishing).
    api.stages.add(C);
    api.assigned(C, 'me');
    await waitFor(() => sm.legFor(C) !== undefined, { what: 'leg C' });
    const nowhere = sm.waitForHandovers(5000);
    api.assigned(C, null, 'me');
    assert.equal(await nowhere, 'nowhere');
    assert.ok(sm.legFor(C), 'the leg keeps serving: nothing took the stage');
  });
  await withManager(async ({ sm, api }) => {
    api.stages.add(A);
    sm.initialize();
    await sm.syncAllStages();
    const t0 = Date.now();
    assert.equal(await sm.waitForHandovers(5000), 'not-assigning');
    assert.ok(Date.now() - t0 < 1000, 'nothing will move the stages: no wait');
  });
});
