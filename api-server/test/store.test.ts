/**
 * One Store suite, run against both implementations: SqliteStore (a real file) and RedisStore (a real redis-server
 * on a free port). Whatever a service can observe through the interface must be the same on both.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServerId, StageArn, StageId, ViewerId } from '@stagecast/protocol';
import { startRedis, type RedisServer } from '../../e2e/helpers/redis.js';
import { pickStage } from '../src/store/seat-policy.js';
import { RedisStore } from '../src/store/redis.js';
import { SqliteStore } from '../src/store/sqlite.js';
import type { MediaServerRecord, StageRecord, Store } from '../src/store/store.js';

const T0 = Date.parse('2026-12-05T20:00:30.000Z');
const arn = (id: string) => `arn:aws:ivs:us-east-1:000000000000:stage/${id}` as StageArn;
const vid = (n: string | number) => `v_${String(n).padStart(16, '0')}` as ViewerId;
const stage = (id: string, o: Partial<StageRecord> = {}): StageRecord => ({
  arn: arn(id),
  id: id as StageId,
  name: `sc-${id}`,
  capacity: 3,
  state: 'active',
  whipUrl: `http://127.0.0.1:1/whip/${id}`,
  playback: { type: 'whep', url: `http://127.0.0.1:1/whep/${id}` },
  tags: { 'stagecast:pool': 'p' },
  createdAt: T0,
  emptySince: T0,
  ...o,
});
const server = (id: string, o: Partial<MediaServerRecord> = {}): MediaServerRecord => ({
  id: id as ServerId,
  ip: '127.0.0.1',
  port: 3001,
  state: 'online',
  registeredAt: T0,
  lastHeartbeat: T0,
  publisherOnline: false,
  legs: [],
  ...o,
});
/** Deterministic pseudo-random numbers (mulberry32), so a failing table can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let redis: RedisServer;
const dirs: string[] = [];
const opened: Store[] = [];
let pools = 0;
before(async () => {
  redis = await startRedis();
});
after(async () => {
  for (const s of opened) await s.close();
  await redis.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const IMPLEMENTATIONS: { name: string; open: () => Promise<Store>; /** A second client on the same data (another API Server). */ twin?: (s: Store) => Promise<Store> }[] = [
  {
    name: 'SqliteStore',
    open: async () => {
      const d = mkdtempSync(join(tmpdir(), 'sc-store-'));
      dirs.push(d);
      const s = new SqliteStore(d);
      opened.push(s);
      return s;
    },
  },
  {
    name: 'RedisStore',
    open: async () => {
      const s = new RedisStore(redis.url, `pool${++pools}`);
      assert.equal(await s.open(), true);
      opened.push(s);
      return s;
    },
    twin: async (s) => {
      const t = new RedisStore(redis.url, `pool${pools}`);
      assert.equal(await t.open(), true);
      opened.push(t);
      void s;
      return t;
    },
  },
];

for (const impl of IMPLEMENTATIONS) {
  describe(impl.name, () => {
    test('stages: listed by creation then ARN, with counts; state, endpoints and assignment updates; a duplicate is refused', async () => {
      const s = await impl.open();
      await s.insertStage(stage('b', { createdAt: T0 + 1 }));
      await s.insertStage(stage('a', { createdAt: T0 + 1, endpointsAt: T0 + 5, mediaServerId: 'ms-1' as ServerId }));
      await s.insertStage(stage('c', { createdAt: T0, emptySince: null }));
      assert.deepEqual((await s.listStages()).map((x) => x.id), ['c', 'a', 'b']);
      const a = (await s.getStage(arn('a')))!;
      assert.deepEqual(
        { ...a },
        { ...stage('a', { createdAt: T0 + 1 }), endpointsAt: T0 + 5, mediaServerId: 'ms-1', previousMediaServerId: null, viewers: 0, connected: 0 },
      );
      assert.equal((await s.getStage(arn('b')))!.endpointsAt, T0 + 1, 'endpointsAt defaults to createdAt');
      assert.equal((await s.getStage(arn('c')))!.emptySince, null);
      assert.equal(await s.getStage(arn('zz')), undefined);
      await assert.rejects(s.insertStage(stage('a')));
      await s.setStageState(arn('a'), 'draining');
      assert.equal((await s.getStage(arn('a')))!.state, 'draining');
      assert.equal(await s.updateStageEndpoints(arn('b'), 'http://127.0.0.1:2/whip', T0 + 9), true);
      assert.equal(await s.updateStageEndpoints(arn('zz'), 'http://x', 1), false);
      assert.deepEqual(
        [(await s.getStage(arn('b')))!.whipUrl, (await s.getStage(arn('b')))!.endpointsAt],
        ['http://127.0.0.1:2/whip', T0 + 9],
      );
      assert.equal(await s.setStageAssignment(arn('b'), 'ms-2' as ServerId, 'ms-1' as ServerId), true);
      assert.equal(await s.setStageAssignment(arn('zz'), null, null), false);
      const b = (await s.getStage(arn('b')))!;
      assert.deepEqual([b.mediaServerId, b.previousMediaServerId], ['ms-2', 'ms-1']);
    });

    test('seat policy: on 40 random pools, reserveSeat picks exactly what pickStage picks (fullest active with room, ties to the older)', async () => {
      const s = await impl.open();
      const rand = rng(7);
      let n = 0;
      for (let round = 0; round < 40; round++) {
        for (const st of await s.listStages()) await s.removeStage(st.arn);
        const count = 1 + Math.floor(rand() * 5);
        for (let i = 0; i < count; i++) {
          const id = `r${round}-${i}`;
          const capacity = 1 + Math.floor(rand() * 4);
          // Equal createdAt now and then: the tie then goes by ARN, as listed.
          await s.insertStage(stage(id, { capacity, createdAt: T0 + Math.floor(rand() * 3), state: rand() < 0.2 ? 'draining' : 'active' }));
          const seated = Math.floor(rand() * (capacity + 1));
          for (let k = 0; k < seated; k++) if (!(await s.reserveSeat({ id: vid(++n), userId: null, now: T0 }, { stageArn: arn(id) }))) break;
        }
        const expected = pickStage(await s.listStages());
        const got = await s.reserveSeat({ id: vid(++n), userId: 'u', now: T0 + 1 });
        assert.equal(got?.arn, expected?.arn, `round ${round}`);
        if (got) {
          assert.equal(got.viewers, expected!.viewers + 1);
          assert.equal(got.emptySince, null);
        }
      }
    });

    test('seats: 120 joins at once (from two clients where the store is shared) fill 3 stages of 10 exactly, never more', async () => {
      const s = await impl.open();
      const other = impl.twin ? await impl.twin(s) : s;
      for (const id of ['x', 'y', 'z']) await s.insertStage(stage(id, { capacity: 10, createdAt: T0 + id.charCodeAt(0) }));
      const got = await Promise.all(Array.from({ length: 120 }, (_, i) => (i % 2 ? other : s).reserveSeat({ id: vid(`c${i}`), userId: null, now: T0 })));
      assert.equal(got.filter(Boolean).length, 30);
      const stages = await s.listStages();
      assert.deepEqual(stages.map((x) => x.viewers), [10, 10, 10]);
      assert.equal(await s.countViewers(), 30);
      // Packing: the first stage filled before the next one was opened.
      const order = got.filter(Boolean).map((x) => x!.viewers);
      assert.ok(order.every((v) => v >= 1 && v <= 10));
      assert.equal(await s.reserveSeat({ id: vid('late'), userId: null, now: T0 }), undefined);
    });

    test('viewers: touch, connected, release marks the stage empty, stale seats expire, removeStage releases its seats', async () => {
      const s = await impl.open();
      await s.insertStage(stage('a'));
      await s.insertStage(stage('b', { createdAt: T0 + 1 }));
      const v1 = vid(1);
      const v2 = vid(2);
      await s.reserveSeat({ id: v1, userId: 'alice', now: T0 }, { stageArn: arn('a') });
      await s.reserveSeat({ id: v2, userId: null, now: T0 + 10 }, { stageArn: arn('b') });
      assert.deepEqual(await s.getViewer(v1), { id: v1, stageArn: arn('a'), userId: 'alice', joinedAt: T0, lastSeen: T0, connected: false, movedFrom: null, movedAt: null });
      assert.equal((await s.touchViewer(v1, T0 + 100))!.lastSeen, T0 + 100);
      assert.equal(await s.touchViewer(vid(99), T0), undefined);
      assert.equal(await s.setViewerConnected(v1, arn('a'), true), true);
      assert.equal(await s.setViewerConnected(v1, arn('b'), true), false, 'not its stage');
      assert.equal((await s.getStage(arn('a')))!.connected, 1);
      assert.equal((await s.getViewer(v1))!.connected, true);
      assert.equal(await s.releaseViewer(v1, T0 + 200), true);
      assert.equal(await s.releaseViewer(v1, T0 + 200), false);
      const a = (await s.getStage(arn('a')))!;
      assert.deepEqual([a.viewers, a.connected, a.emptySince], [0, 0, T0 + 200]);
      await s.reserveSeat({ id: vid(3), userId: null, now: T0 + 500 }, { stageArn: arn('a') });
      const stale = await s.releaseStaleViewers(T0 + 300, T0 + 600);
      assert.deepEqual(stale.map((v) => v.id), [v2]);
      assert.equal((await s.getStage(arn('b')))!.emptySince, T0 + 600);
      assert.equal(await s.countViewers(), 1);
      assert.deepEqual(await s.removeStage(arn('a')), [vid(3)]);
      assert.equal(await s.getViewer(vid(3)), undefined);
      assert.equal(await s.countViewers(), 0);
      assert.deepEqual((await s.listStages()).map((x) => x.id), ['b']);
    });

    test('media servers: upsert returns the previous record; heartbeat, state, stale and own-shutdown offline; listed by id', async () => {
      const s = await impl.open();
      assert.equal(await s.upsertMediaServer(server('ms-b', { url: 'http://127.0.0.1:3001', maxLegs: 8, ingest: 'broadcaster' })), undefined);
      const prev = await s.upsertMediaServer(server('ms-b', { port: 3005 }));
      assert.equal(prev?.maxLegs, 8);
      assert.equal(prev?.ingest, 'broadcaster');
      await s.upsertMediaServer(server('ms-a'));
      assert.deepEqual((await s.listMediaServers()).map((m) => m.id), ['ms-a', 'ms-b']);
      const legs = [{ stageArn: arn('a'), state: 'connected' as const }];
      const hb = (await s.updateMediaServerHeartbeat('ms-a' as ServerId, T0 + 50, true, legs))!;
      assert.deepEqual([hb.lastHeartbeat, hb.publisherOnline, hb.legs], [T0 + 50, true, legs]);
      const kept = (await s.updateMediaServerHeartbeat('ms-a' as ServerId, T0 + 60, undefined, undefined))!;
      assert.deepEqual([kept.publisherOnline, kept.legs], [true, legs], 'undefined leaves the field alone');
      assert.equal(await s.updateMediaServerHeartbeat('nope' as ServerId, T0, true, []), undefined);
      const st = (await s.updateMediaServerState('ms-a' as ServerId, { draining: true, ingest: 'relay' }))!;
      assert.deepEqual([st.draining, st.ingest], [true, 'relay']);
      assert.equal((await s.updateMediaServerState('ms-a' as ServerId, {}))!.ingest, 'relay');
      assert.equal(await s.updateMediaServerState('nope' as ServerId, { draining: true }), undefined);
      const gone = await s.markStaleMediaServersOffline(T0 + 55);
      assert.deepEqual(gone.map((m) => [m.id, m.state]), [['ms-b', 'offline']]);
      assert.deepEqual(await s.markStaleMediaServersOffline(T0 + 55), [], 'offline once');
      assert.equal((await s.markMediaServerOffline('ms-a' as ServerId))!.state, 'offline');
      assert.equal(await s.markMediaServerOffline('nope' as ServerId), undefined);
      assert.equal((await s.getMediaServer('ms-a' as ServerId))!.state, 'offline');
      assert.equal((await s.updateMediaServerHeartbeat('ms-a' as ServerId, T0 + 90, undefined, undefined))!.state, 'online');
    });

    test('moves: newest seats first, no more than the target has room for, never into a draining stage; complete and expire', async () => {
      const s = await impl.open();
      await s.insertStage(stage('from', { capacity: 10 }));
      await s.insertStage(stage('to', { capacity: 4, createdAt: T0 + 1 }));
      await s.insertStage(stage('drain', { capacity: 10, createdAt: T0 + 2, state: 'draining' }));
      for (let i = 1; i <= 5; i++) await s.reserveSeat({ id: vid(i), userId: null, now: T0 + i }, { stageArn: arn('from') });
      await s.reserveSeat({ id: vid(9), userId: null, now: T0 }, { stageArn: arn('to') });
      await s.setViewerConnected(vid(5), arn('from'), true);
      assert.deepEqual(await s.moveViewers(arn('from'), arn('drain'), 3, T0 + 100), []);
      assert.deepEqual(await s.moveViewers(arn('from'), arn('from'), 3, T0 + 100), []);
      const moved = await s.moveViewers(arn('from'), arn('to'), 5, T0 + 100);
      assert.deepEqual(moved, [vid(5), vid(4), vid(3)].map((viewerId) => ({ viewerId, from: arn('from'), to: arn('to'), at: T0 + 100 })));
      const [from, to] = [(await s.getStage(arn('from')))!, (await s.getStage(arn('to')))!];
      assert.deepEqual([from.viewers, from.connected, to.viewers, to.emptySince], [2, 0, 4, null]);
      assert.deepEqual(await s.getViewer(vid(5)), { id: vid(5), stageArn: arn('to'), userId: null, joinedAt: T0 + 5, lastSeen: T0 + 5, connected: false, movedFrom: arn('from'), movedAt: T0 + 100 });
      assert.deepEqual((await s.listPendingMoves()).map((m) => m.viewerId), [vid(3), vid(4), vid(5)]);
      assert.equal(await s.completeMove(vid(4)), true);
      assert.equal(await s.completeMove(vid(4)), false);
      assert.deepEqual((await s.expireMoves(T0 + 100)).map((m) => m.viewerId), [], 'not older than');
      assert.deepEqual((await s.expireMoves(T0 + 101)).map((m) => [m.viewerId, m.from, m.to]), [
        [vid(3), arn('from'), arn('to')],
        [vid(5), arn('from'), arn('to')],
      ]);
      assert.deepEqual(await s.listPendingMoves(), []);
      assert.equal((await s.getViewer(vid(3)))!.stageArn, arn('to'), 'an expired move keeps the new seat');
      // Moving the last seats out marks the old stage empty.
      await s.insertStage(stage('big', { capacity: 50, createdAt: T0 + 3 }));
      assert.equal((await s.moveViewers(arn('from'), arn('big'), 10, T0 + 200)).length, 2);
      assert.equal((await s.getStage(arn('from')))!.emptySince, T0 + 200);
    });

    test('usage: split at minute boundaries, per stage; meteredUntil; a window lists only its own minutes', async () => {
      const s = await impl.open();
      assert.equal(await s.usageMeteredUntil(), undefined);
      await s.accrueUsage(T0, T0 + 90_000, [
        { stageArn: arn('b'), viewers: 2, publishers: 1 },
        { stageArn: arn('a'), viewers: 1, publishers: 0 },
        { stageArn: arn('c'), viewers: 0, publishers: 0 },
      ]);
      await s.accrueUsage(T0 + 90_000, T0 + 90_000, [{ stageArn: arn('a'), viewers: 9, publishers: 9 }]);
      assert.equal(await s.usageMeteredUntil(), T0 + 90_000);
      const m0 = T0 - 30_000;
      assert.deepEqual(await s.listUsage(T0, T0 + 120_000), [
        { minute: m0, stageArn: arn('a'), viewerMs: 30_000, publisherMs: 0 },
        { minute: m0, stageArn: arn('b'), viewerMs: 60_000, publisherMs: 30_000 },
        { minute: m0 + 60_000, stageArn: arn('a'), viewerMs: 60_000, publisherMs: 0 },
        { minute: m0 + 60_000, stageArn: arn('b'), viewerMs: 120_000, publisherMs: 60_000 },
      ]);
      assert.deepEqual((await s.listUsage(m0 + 60_000, m0 + 120_000)).map((b) => b.minute), [m0 + 60_000, m0 + 60_000]);
    });

    test('scaling events: ids ascend, listed newest first up to the limit, detail kept', async () => {
      const s = await impl.open();
      const e1 = await s.addScalingEvent({ at: T0, action: 'create', stageArn: arn('a'), reason: 'below MIN_STAGES', detail: { tookMs: 12 } });
      const e2 = await s.addScalingEvent({ at: T0 + 1, action: 'delete', stageArn: null, reason: 'empty "quoted" ✓' });
      assert.ok(e2.id > e1.id);
      assert.deepEqual(await s.listScalingEvents(10), [e2, e1]);
      assert.deepEqual(await s.listScalingEvents(1), [e2]);
      await s.ping();
    });
  });
}
