/**
 * Consolidation applied: over a real SQLite file (moves in the store, what the heartbeat answers), and through a real
 * API Server on a real stage backend (the emptied stages are deleted only once their viewers have switched).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  localStageArn,
  ScalingEventsResponseSchema,
  StageListResponseSchema,
  ViewerHeartbeatResponseSchema,
  ViewerJoinResponseSchema,
  type StageArn,
  type StageId,
  type ViewerId,
  type ViewerJoinResponse,
} from '@stagecast/protocol';
import { createLogger } from '../src/logger.js';
import { Metrics } from '../src/metrics.js';
import { ConsolidationService } from '../src/services/ConsolidationService.js';
import type { StageAutoScalingService } from '../src/services/StageAutoScalingService.js';
import { SqliteStore } from '../src/store/sqlite.js';
import { apiKey, call, SECRETS, startApi } from './helpers/api.js';
import { startStageBackend, type StageBackend } from './helpers/stage-backend.js';
import { waitFor } from './helpers/wait.js';

const log = createLogger('silent');
const T0 = 1_770_000_000_000;

/** The service over a real store, with a scaler that is settled (reconciled, nothing in flight). */
function service(store: SqliteStore, enabled: boolean, now?: () => number): ConsolidationService {
  const scaling = { isLeader: true, isReconciled: true, fixedPool: false, creatingCount: 0, waitingJoins: 0 } as unknown as StageAutoScalingService;
  return new ConsolidationService({
    store,
    scaling,
    metrics: new Metrics(store),
    log,
    config: { enabled, capacity: 10, minStages: 1, maxStages: 10, scaleUpThreshold: 0.8, sparseRatio: 0.5, maxMoves: 100, intervalMs: 1000, moveTimeoutMs: 30_000 },
    ...(now ? { now } : {}),
  });
}

test('the service moves the newest seats of sparse stages in the store, records the move, and expires moves never confirmed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sc-cons-'));
  const store = new SqliteStore(dir);
  try {
    const arns: StageArn[] = [];
    for (const id of ['a', 'b', 'c']) {
      const arn = localStageArn(id);
      arns.push(arn);
      await store.insertStage({ arn, id: id as StageId, name: id, capacity: 10, state: 'active', whipUrl: 'http://127.0.0.1:1/w', playback: { type: 'whep', url: 'http://127.0.0.1:1/e' }, tags: {}, createdAt: T0 + arns.length, emptySince: T0 });
    }
    const seat = (id: string, arn: StageArn, at: number) => store.reserveSeat({ id: id as ViewerId, userId: null, now: at }, { stageArn: arn });
    await seat('a1', arns[0]!, T0);
    await seat('a2', arns[0]!, T0);
    await seat('b1', arns[1]!, T0);
    await seat('c1', arns[2]!, T0);
    await seat('c2', arns[2]!, T0 + 1);
    const clock = { t: T0 + 1000 };
    const svc = service(store, true, () => clock.t);
    const plan = (await svc.run())!;
    // b (1) → a; then c (2, youngest of the rest) → a: everyone on a.
    assert.deepEqual(plan.emptied.sort(), [arns[1], arns[2]].sort());
    assert.deepEqual((await store.listStages()).map((s) => s.viewers), [5, 0, 0]);
    const moves = await store.listPendingMoves();
    assert.deepEqual(moves.map((m) => m.viewerId).sort(), ['b1', 'c1', 'c2']);
    assert.ok(moves.every((m) => m.to === arns[0] && m.at === clock.t));
    assert.equal((await store.getViewer('c2' as ViewerId))!.movedFrom, arns[2]);
    const events = (await store.listScalingEvents(10)).filter((e) => e.action === 'consolidate');
    assert.deepEqual(events.map((e) => e.stageArn).sort(), [arns[1], arns[2]].sort());
    // A pass while moves are pending leaves those stages alone.
    assert.equal((await svc.run())!.moves.length, 0);
    // Confirmed moves are done; the others expire after moveTimeoutMs.
    assert.equal(await store.completeMove('b1' as ViewerId), true);
    assert.equal(await store.completeMove('b1' as ViewerId), false);
    clock.t += 30_001;
    await svc.run();
    assert.deepEqual(await store.listPendingMoves(), []);
    assert.equal((await store.getViewer('c1' as ViewerId))!.stageArn, arns[0], 'an expired move keeps the new seat');
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('disabled (CONSOLIDATION_ENABLED=false) → never moves anyone', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sc-cons-'));
  const store = new SqliteStore(dir);
  try {
    const svc = service(store, false);
    assert.equal(await svc.run(), undefined);
    svc.start();
    svc.stop();
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

let stage: StageBackend;
before(async () => {
  stage = await startStageBackend(SECRETS.stage);
});
after(async () => {
  await stage?.close();
});

test('through a real API Server: 4 viewers on 4 stages of 4 → told to move in the heartbeat answer; the emptied stages go only after they switched', async (t) => {
  t.diagnostic(`stage backend: ${stage.kind}`);
  const api = await startApi({
    stageUrl: stage.url,
    env: { STAGE_CAPACITY: '4', STAGE_POOL_ID: 'cons', SCALE_DOWN_COOLDOWN: '0', CONSOLIDATION_INTERVAL_S: '3600', MAX_STAGES: '10' },
    logLevel: 'warn',
  });
  const s = api.server.services;
  try {
    const stages = async () => StageListResponseSchema.parse((await call(`${api.url}/api/stages`, { headers: apiKey })).body).stages;
    const joins: ViewerJoinResponse[] = [];
    for (let i = 0; i < 16; i++) joins.push(ViewerJoinResponseSchema.parse((await call(`${api.url}/api/viewers/join`, { headers: apiKey, json: {} })).body));
    const byStage = new Map<string, ViewerJoinResponse[]>();
    for (const j of joins) byStage.set(j.stageArn, [...(byStage.get(j.stageArn) ?? []), j]);
    assert.deepEqual([...byStage.values()].map((v) => v.length), [4, 4, 4, 4]);
    // 3 leave each stage: 1 viewer on each of 4 stages.
    const stay = [...byStage.values()].map((v) => v[0]!);
    for (const v of [...byStage.values()].flatMap((v) => v.slice(1))) assert.equal((await call(`${api.url}/api/viewers/${v.viewerId}`, { method: 'DELETE', headers: apiKey })).status, 204);
    // The spare goes (not needed at 4/16); the 4 stages stay: none is empty.
    await waitFor(async () => (await stages()).length === 4, { what: '4 stages', timeoutMs: 10_000 });

    const plan = (await s.consolidation.run())!;
    assert.equal(plan.emptied.length, 3);
    const target = stay[0]!.stageArn; // the oldest stage takes everyone
    const hb = async (v: ViewerJoinResponse, playing?: string) => {
      const r = await call(`${api.url}/api/viewers/${v.viewerId}/heartbeat`, { headers: apiKey, json: playing ? { playingStageArn: playing } : {} });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return ViewerHeartbeatResponseSchema.parse(r.body);
    };
    assert.equal((await hb(stay[0]!)).move, undefined, 'the viewer on the target is not moved');
    for (const v of stay.slice(1)) {
      const r = await hb(v);
      assert.equal(r.stageArn, target);
      assert.equal(r.move?.stageArn, target);
      assert.equal(r.move?.playback.type, 'whep');
      assert.ok(r.move!.token.length > 20);
      // Not confirmed yet: the old stage is still there, with its viewer playing it, however often the planner runs.
      await s.scaling.plan();
      assert.ok((await stages()).some((x) => x.stageArn === v.stageArn && x.state === 'active'), 'old stage kept while the move is pending');
    }
    // A heartbeat body that names no stage ARN is refused as such.
    const bad = await call(`${api.url}/api/viewers/${stay[1]!.viewerId}/heartbeat`, { headers: apiKey, json: { playingStageArn: 'not an arn' } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'INVALID_INPUT');
    // Old clients (an empty heartbeat) keep being told; naming the new stage confirms.
    for (const v of stay.slice(1)) assert.equal((await hb(v, v.stageArn)).move?.stageArn, target, 'naming the old stage is no confirmation');
    for (const v of stay.slice(1)) assert.equal((await hb(v, target)).move, undefined);
    // Now the emptied stages go, except one kept as the spare (4/4 would make the scale-up rule create one).
    const final = await waitFor(async () => {
      const l = await stages();
      return l.length === 2 && l.every((x) => x.state === 'active') ? l : undefined;
    }, { what: 'two stages: the full one and the spare', timeoutMs: 10_000 });
    assert.deepEqual(final.map((x) => x.viewers).sort(), [0, 4]);
    assert.equal(final.find((x) => x.viewers === 4)!.stageArn, target);
    const events = ScalingEventsResponseSchema.parse((await call(`${api.url}/api/scaling/events?limit=100`, { headers: apiKey })).body).events;
    assert.equal(events.filter((e) => e.action === 'consolidate').length, 3);
    const metrics = (await call(`${api.url}/metrics`)).body as string;
    assert.match(metrics, /^stagecast_consolidation_moves_total\{result="moved"\} 3$/m);
    assert.match(metrics, /^stagecast_consolidation_moves_total\{result="switched"\} 3$/m);
    // The stage server's side: the deleted stages are gone there too.
    const remaining = new Set(final.map((x) => x.stageId));
    await waitFor(async () => (await stage.list()).filter((x) => x.tags['stagecast:pool'] === 'cons').every((x) => remaining.has(x.stageId as StageId)), { what: 'stage server in step' });
  } finally {
    await api.stop();
  }
});
