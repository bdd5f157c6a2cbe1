/**
 * The StageRoom's policy through the real HTTP edge, on an in-memory media plane: token checks, the publisher slot
 * (handover / 409 while one is set up), the viewer limit (503), participant events, stats, and what deleting a stage ends.
 * (The same room on the real WebRTC plane is covered by media.test.ts.)
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import {
  CreateStageResponseSchema,
  StageServerStatsResponseSchema,
  type ErrorBody,
  type LocalStage,
  type ParticipantId,
} from '@stagecast/protocol';
import type { StageServer } from '../src/app.js';
import { decidePublisher, viewerFits } from '../src/services/StageRoom.js';
import { startFakeApi, type FakeApi } from './fake-api.js';
import { FakePlane } from './fake-plane.js';
import { admin, startInProcess, tempDir, waitFor } from './helpers.js';

const P = (s: string) => s as ParticipantId;

test('decidePublisher: an empty slot accepts, any new publish token hands over from the live publisher, another participant while one is being set up conflicts', () => {
  assert.equal(decidePublisher({}, P('a')), 'accept');
  assert.equal(decidePublisher({ live: P('a') }, P('a')), 'handover');
  assert.equal(decidePublisher({ live: P('a') }, P('b')), 'handover');
  assert.equal(decidePublisher({ settingUp: P('a') }, P('b')), 'conflict');
  assert.equal(decidePublisher({ settingUp: P('a'), live: P('c') }, P('b')), 'conflict');
  assert.equal(decidePublisher({ settingUp: P('a') }, P('a')), 'handover');
});

test('viewerFits: 0 means unlimited; pending answers count against the limit', () => {
  const table: Array<[number, number, number, boolean]> = [
    [0, 0, 0, true],
    [1000, 5, 0, true],
    [0, 0, 1, true],
    [1, 0, 1, false],
    [0, 1, 1, false],
    [1, 0, 2, true],
    [1, 1, 2, false],
  ];
  for (const [viewers, pending, max, fits] of table) assert.equal(viewerFits(viewers, pending, max), fits, `${viewers}+${pending}/${max}`);
});

describe('stage media routes on an in-memory media plane', () => {
  /** The server's log records, as JSON objects. */
  const logs: Array<Record<string, unknown>> = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    }),
  );
  let api: FakeApi;
  let server: StageServer;
  let base: string;
  let plane: FakePlane;
  let dir: Awaited<ReturnType<typeof tempDir>>;

  before(async () => {
    api = await startFakeApi();
    dir = await tempDir();
    plane = new FakePlane();
    ({ server, base } = await startInProcess(
      { DATA_DIR: dir.path, API_SERVER_URL: api.url, MAX_VIEWERS_PER_STAGE: '2' },
      { plane, reporter: { flushDelayMs: 10 } },
      logger,
    ));
  });
  after(async () => {
    await server?.stop();
    await api?.close();
    await dir?.remove();
  });

  async function newStage(): Promise<LocalStage> {
    return CreateStageResponseSchema.parse(await (await admin(base).create()).json()).stage;
  }
  function post(url: string, token?: string, contentType = 'application/sdp') {
    return fetch(url, {
      method: 'POST',
      headers: { 'content-type': contentType, ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
      body: 'v=0\r\n',
    });
  }
  async function code(res: Response): Promise<string> {
    return ((await res.json()) as ErrorBody).error.code;
  }

  test('WHIP without a token → 401 + WWW-Authenticate; a forged or expired token → 401', async () => {
    const stage = await newStage();
    const none = await post(stage.whipUrl);
    assert.equal(none.status, 401);
    assert.equal(none.headers.get('www-authenticate'), 'Bearer');
    assert.equal(await code(none), 'UNAUTHORIZED');
    const forged = await post(stage.whipUrl, await api.forgedToken({ stageArn: stage.stageArn, capability: 'publish' }));
    assert.equal(forged.status, 401);
    const expired = await post(stage.whipUrl, await api.token({ stageArn: stage.stageArn, capability: 'publish', expiresInSec: -60 }));
    assert.equal(expired.status, 401);
    assert.equal(plane.of('whip').filter((s) => s.closedWith === undefined).length, 0);
  });

  test('WHIP with a subscribe token, or a publish token of another stage → 403', async () => {
    const stage = await newStage();
    const other = await newStage();
    const sub = await post(stage.whipUrl, await api.token({ stageArn: stage.stageArn, capability: 'subscribe' }));
    assert.equal(sub.status, 403);
    assert.equal(await code(sub), 'FORBIDDEN');
    const wrongStage = await post(stage.whipUrl, await api.token({ stageArn: other.stageArn, capability: 'publish' }));
    assert.equal(wrongStage.status, 403);
  });

  test('WHEP with a publish token → 403; with a subscribe token of the stage → 201 + Location under the stage', async () => {
    const stage = await newStage();
    const pub = await post(stage.whepUrl, await api.token({ stageArn: stage.stageArn, capability: 'publish' }));
    assert.equal(pub.status, 403);
    const ok = await post(stage.whepUrl, await api.token({ stageArn: stage.stageArn, capability: 'subscribe' }));
    assert.equal(ok.status, 201);
    assert.ok(ok.headers.get('location')!.startsWith(`${stage.whepUrl}/`));
  });

  test('a new publish token (another Media Server) takes the slot make-before-break: the old publisher feeds the stage until the new one delivers, then it is ended', async () => {
    const stage = await newStage();
    const first = await post(stage.whipUrl, await api.token({ stageArn: stage.stageArn, capability: 'publish', jti: 'pub-A' }));
    assert.equal(first.status, 201);
    const s1 = plane.of('whip').at(-1)!;
    s1.connect();
    const router = plane.routers.get(stage.stageId)!;
    assert.equal(router.source, s1.sourcePort);

    const next = await post(stage.whipUrl, await api.token({ stageArn: stage.stageArn, capability: 'publish', jti: 'pub-B' }));
    assert.equal(next.status, 201);
    const s2 = plane.of('whip').at(-1)!;
    assert.notEqual(s2, s1);
    // Answered and even connected, the new one does not cut the old one off: viewers keep its media.
    s2.connect();
    assert.equal(s1.closedWith, undefined);
    assert.equal(router.source, s1.sourcePort);
    s1.sendRtp('video', new Uint8Array(100));
    assert.deepEqual(router.rtp, [['video', 100]]);
    // The new publisher's first packet: it takes the slot, the old session is ended and no longer reaches the router.
    s2.sendRtp('video', new Uint8Array(200));
    assert.equal(router.source, s2.sourcePort);
    assert.match(s1.closedWith ?? '', /handed over/);
    s1.sendRtp('video', new Uint8Array(101));
    assert.deepEqual(router.rtp, [['video', 100], ['video', 200]]);
    assert.ok(logs.some((l) => l.msg === 'publisher.replaced' && l.stageId === stage.stageId && l.replaced === 'pub-A'));

    // The same participant reconnecting (OBS) is a handover too.
    const again = await post(stage.whipUrl, await api.token({ stageArn: stage.stageArn, capability: 'publish', jti: 'pub-B' }));
    assert.equal(again.status, 201);
    const s3 = plane.of('whip').at(-1)!;
    s3.connect();
    s3.sendRtp('video', new Uint8Array(300));
    assert.equal(router.source, s3.sourcePort);
    assert.match(s2.closedWith ?? '', /handed over/);

    // When the publisher leaves, the slot is free for anyone.
    s3.close('peer gone');
    assert.equal(router.source, undefined);
    const other = await post(stage.whipUrl, await api.token({ stageArn: stage.stageArn, capability: 'publish', jti: 'pub-C' }));
    assert.equal(other.status, 201);
  });

  test('handover: a new publisher that dies before delivering leaves the old one in place; the old one leaving first hands the slot to the new one', async () => {
    const stage = await newStage();
    const router = () => plane.routers.get(stage.stageId)!;
    assert.equal((await post(stage.whipUrl, await api.token({ stageArn: stage.stageArn, capability: 'publish', jti: 'h-A' }))).status, 201);
    const s1 = plane.of('whip').at(-1)!;
    s1.connect();
    assert.equal((await post(stage.whipUrl, await api.token({ stageArn: stage.stageArn, capability: 'publish', jti: 'h-B' }))).status, 201);
    const s2 = plane.of('whip').at(-1)!;
    s2.close('ice failed');
    assert.equal(s1.closedWith, undefined, 'the failed successor did not end the live publisher');
    assert.equal(router().source, s1.sourcePort);
    assert.ok(logs.some((l) => l.msg === 'publisher.handover_failed' && l.stageId === stage.stageId));

    assert.equal((await post(stage.whipUrl, await api.token({ stageArn: stage.stageArn, capability: 'publish', jti: 'h-C' }))).status, 201);
    const s3 = plane.of('whip').at(-1)!;
    s3.connect();
    // The old Media Server lets go first (its leg is DELETEd): the successor takes the slot at once.
    s1.close('deleted by client');
    s3.sendRtp('video', new Uint8Array(50));
    assert.equal(router().source, s3.sourcePort);
  });

  test('a publisher session’s first keyframe is logged once (publisher.first_keyframe), and not for a replaced session', async () => {
    const stage = await newStage();
    const firsts = () => logs.filter((l) => l.msg === 'publisher.first_keyframe' && l.stageId === stage.stageId);
    assert.equal((await post(stage.whipUrl, await api.token({ stageArn: stage.stageArn, capability: 'publish', jti: 'kf-A' }))).status, 201);
    const s1 = plane.of('whip').at(-1)!;
    s1.connect();
    const router = plane.routers.get(stage.stageId)!;
    router.keyframe();
    router.keyframe();
    await waitFor(() => firsts().length === 1, { what: 'first keyframe logged' });
    assert.equal(firsts()[0]!.participantId, 'kf-A');
    assert.equal(typeof firsts()[0]!.sinceConnectedMs, 'number');
    // The same participant reconnects (OBS): the new session logs its own first keyframe, the old one nothing more.
    assert.equal((await post(stage.whipUrl, await api.token({ stageArn: stage.stageArn, capability: 'publish', jti: 'kf-A' }))).status, 201);
    const s2 = plane.of('whip').at(-1)!;
    s2.connect();
    router.keyframe(); // still the old session's: it feeds the stage until the new one delivers
    assert.equal(firsts().length, 1);
    s2.sendRtp('video', new Uint8Array(10));
    router.keyframe();
    router.keyframe();
    await waitFor(() => firsts().length === 2, { what: 'the new session’s first keyframe logged' });
    assert.equal(firsts().length, 2);
  });

  test('two different publishers racing for an empty stage: one holds the slot in the end, never two (a 409 while the other is set up, or a handover)', async () => {
    const stage = await newStage();
    const before = plane.of('whip').length;
    const [a, b] = await Promise.all([
      post(stage.whipUrl, await api.token({ stageArn: stage.stageArn, capability: 'publish', jti: 'race-A' })),
      post(stage.whipUrl, await api.token({ stageArn: stage.stageArn, capability: 'publish', jti: 'race-B' })),
    ]);
    assert.ok([a.status, b.status].every((x) => x === 201 || x === 409));
    assert.ok([a.status, b.status].includes(201));
    const sessions = plane.of('whip').slice(before);
    for (const s of sessions) s.connect();
    for (const s of sessions) s.sendRtp('video', new Uint8Array(10));
    const open = sessions.filter((s) => s.closedWith === undefined);
    assert.equal(open.length, 1, 'one publisher feeds the stage');
    assert.equal(plane.routers.get(stage.stageId)!.source, open[0]!.sourcePort);
  });

  test('viewers beyond MAX_VIEWERS_PER_STAGE → 503 CAPACITY_EXCEEDED + Retry-After; a leaving viewer frees a place', async () => {
    const stage = await newStage();
    const tok = () => api.token({ stageArn: stage.stageArn, capability: 'subscribe' });
    const ok = await Promise.all([post(stage.whepUrl, await tok()), post(stage.whepUrl, await tok())]);
    assert.deepEqual(ok.map((r) => r.status), [201, 201]);
    const full = await post(stage.whepUrl, await tok());
    assert.equal(full.status, 503);
    assert.ok(Number(full.headers.get('retry-after')) > 0);
    assert.equal(await code(full), 'CAPACITY_EXCEEDED');

    const del = await fetch(ok[0]!.headers.get('location')!, { method: 'DELETE' });
    assert.equal(del.status, 200);
    assert.equal((await post(stage.whepUrl, await tok())).status, 201);
  });

  test('WHEP POSTs of one token at once: one set up at a time, four in flight at most (more get 429); each supersedes the last; one seat', async () => {
    const stage = await newStage();
    const token = await api.token({ stageArn: stage.stageArn, capability: 'subscribe', jti: 'flood-1' });
    const before = plane.of('whep').length;
    let release!: () => void;
    plane.answerGate = new Promise<void>((r) => (release = r));
    const statuses: number[] = [];
    const posts = Array.from({ length: 8 }, () => post(stage.whepUrl, token).then((r) => (statuses.push(r.status), r)));
    try {
      await waitFor(() => statuses.length === 4, { what: 'the POSTs beyond four refused at once' });
      assert.deepEqual(statuses, [429, 429, 429, 429]);
      assert.equal(plane.of('whep').length - before, 1, 'one session set up at a time, the others wait their turn');
    } finally {
      plane.answerGate = undefined;
      release();
    }
    const answered = await Promise.all(posts);
    assert.equal(answered.filter((r) => r.status === 201).length, 4);
    assert.ok(answered.filter((r) => r.status === 429).every((r) => Number(r.headers.get('retry-after')) > 0));
    const mine = plane.of('whep').slice(before);
    assert.equal(mine.length, 4);
    assert.equal(mine.filter((s) => s.closedWith === undefined).length, 1, 'each answered session superseded the one before');
    assert.equal(server.stages.room(stage.stageId).stats().viewers, 1);
    // MAX_VIEWERS_PER_STAGE=2: the flood took one seat.
    assert.equal((await post(stage.whepUrl, await api.token({ stageArn: stage.stageArn, capability: 'subscribe' }))).status, 201);
  });

  test('viewer joins and leaves reach the API Server as participant events (participantId = token jti)', async () => {
    const stage = await newStage();
    const res = await post(stage.whepUrl, await api.token({ stageArn: stage.stageArn, capability: 'subscribe', jti: 'viewer-42' }));
    assert.equal(res.status, 201);
    const session = plane.of('whep').at(-1)!;
    const mine = () => api.events.filter((e) => e.stageArn === stage.stageArn);
    // Only a real connection counts: nothing is reported for the POST alone.
    session.connect();
    await waitFor(() => mine().length === 1, { what: 'joined event' });
    assert.deepEqual([mine()[0]!.participantId, mine()[0]!.kind, mine()[0]!.type], ['viewer-42', 'subscriber', 'joined']);
    assert.equal((await fetch(res.headers.get('location')!, { method: 'DELETE' })).status, 200);
    await waitFor(() => mine().length === 2, { what: 'left event' });
    assert.deepEqual([mine()[1]!.participantId, mine()[1]!.type], ['viewer-42', 'left']);
    assert.ok(api.eventAuth.every((a) => a.startsWith('Bearer ') && a.length > 20));
  });

  test('a viewer that connects before any publisher is a sink at once and stays', async () => {
    const stage = await newStage();
    assert.equal((await post(stage.whepUrl, await api.token({ stageArn: stage.stageArn, capability: 'subscribe' }))).status, 201);
    const v = plane.of('whep').at(-1)!;
    v.connect();
    const router = plane.routers.get(stage.stageId)!;
    assert.equal(router.sinks.get(v.id)?.closed, false);
    // RTCP from the viewer goes to its sink.
    v.sendRtcp(new Uint8Array(12));
    assert.equal(router.sinks.get(v.id)?.rtcp, 1);
    assert.equal(v.closedWith, undefined);
  });

  test('/stats shows the publisher state and viewers of a stage', async () => {
    const stage = await newStage();
    await post(stage.whipUrl, await api.token({ stageArn: stage.stageArn, capability: 'publish', jti: 'stats-pub' }));
    const pub = plane.of('whip').at(-1)!;
    await post(stage.whepUrl, await api.token({ stageArn: stage.stageArn, capability: 'subscribe' }));
    const statsOf = async () =>
      StageServerStatsResponseSchema.parse(await (await fetch(`${base}/stats`)).json()).stages.find((s) => s.stageId === stage.stageId)!;
    assert.equal((await statsOf()).publisher.state, 'connecting');
    pub.connect();
    pub.sendRtp('video', new Uint8Array(1200));
    const s = await statsOf();
    assert.equal(s.publisher.state, 'connected');
    assert.equal(s.publisher.participantId, 'stats-pub');
    assert.equal(s.viewers, 1);
    assert.equal(s.packetsReceived, 1);
    assert.equal(s.bytesReceived, 1200);
  });

  test('deleting a stage closes its publisher and viewer sessions and reports the leaves; its URLs then 404', async () => {
    const stage = await newStage();
    await post(stage.whipUrl, await api.token({ stageArn: stage.stageArn, capability: 'publish', jti: 'del-pub' }));
    const pub = plane.of('whip').at(-1)!;
    await post(stage.whepUrl, await api.token({ stageArn: stage.stageArn, capability: 'subscribe', jti: 'del-viewer' }));
    const viewer = plane.of('whep').at(-1)!;
    pub.connect();
    viewer.connect();
    assert.equal((await admin(base).delete(stage.stageId)).status, 204);
    assert.ok(pub.closedWith !== undefined);
    assert.ok(viewer.closedWith !== undefined);
    assert.equal(plane.routers.get(stage.stageId)!.closed, true);
    const left = () => api.events.filter((e) => e.stageArn === stage.stageArn && e.type === 'left').map((e) => e.participantId).sort();
    await waitFor(() => left().length === 2, { what: 'left events' });
    assert.deepEqual(left(), ['del-pub', 'del-viewer']);
    const after = await post(stage.whepUrl, await api.token({ stageArn: stage.stageArn, capability: 'subscribe' }));
    assert.equal(after.status, 404);
  });

  test('WHIP/WHEP of an unknown stage → 404', async () => {
    const res = await post(`${base}/stages/NoSuchStage1/whip`, 'x');
    assert.equal(res.status, 404);
    assert.equal(await code(res), 'NOT_FOUND');
  });
});
