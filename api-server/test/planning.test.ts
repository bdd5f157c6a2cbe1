import { test } from 'node:test';
import assert from 'node:assert/strict';
import { localStageArn } from '@stagecast/protocol';
import { pickStage, planScaling, type PlanConfig, type PlanStage } from '../src/services/planning.js';

const cfg: PlanConfig = { capacity: 50, minStages: 1, maxStages: 100, scaleUpThreshold: 0.8, scaleDownCooldownMs: 60_000 };
const NOW = 1_000_000;
let n = 0;
function st(viewers: number, o: Partial<PlanStage> = {}): PlanStage {
  n++;
  return {
    arn: localStageArn(`s${n}`),
    state: 'active',
    viewers,
    capacity: 50,
    createdAt: n,
    emptySince: viewers === 0 ? NOW - 1000 : null,
    ...o,
  };
}
const creates = (a: ReturnType<typeof planScaling>) => a.filter((x) => x.type === 'create').length;
const deletes = (a: ReturnType<typeof planScaling>) => a.flatMap((x) => (x.type === 'delete' ? [x.stageArn] : []));

test('pickStage chooses the fullest active stage that still has room', () => {
  const a = st(10), b = st(49), c = st(50), d = st(30);
  assert.equal(pickStage([a, b, c, d])?.arn, b.arn);
});

test('pickStage never picks a draining or full stage, and returns undefined when none has room', () => {
  const full = st(50), draining = st(0, { state: 'draining' });
  assert.equal(pickStage([full, draining]), undefined);
  assert.equal(pickStage([]), undefined);
  const e = st(0);
  assert.equal(pickStage([full, draining, e])?.arn, e.arn);
});

test('pickStage breaks ties by age (oldest first) so placement is stable', () => {
  const a = st(20), b = st(20);
  assert.equal(pickStage([b, a])?.arn, a.arn);
});

test('planScaling table', async (t) => {
  const cases: Array<{ name: string; stages: PlanStage[]; creating?: number; waiting?: number; cfg?: Partial<PlanConfig>; creates: number; deletes?: number }> = [
    { name: 'empty pool → MIN_STAGES', stages: [], creates: 1 },
    { name: 'empty pool, MIN_STAGES 3 → 3', stages: [], cfg: { minStages: 3 }, creates: 3 },
    { name: 'one empty stage → nothing', stages: [st(0, { emptySince: NOW })], creates: 0 },
    { name: 'one stage at 39/50 (78%) → nothing', stages: [st(39)], creates: 0 },
    { name: 'one stage at 40/50 (80%), no spare → one spare', stages: [st(40)], creates: 1 },
    { name: 'full stage + empty spare → nothing', stages: [st(50), st(0, { emptySince: NOW })], creates: 0 },
    { name: 'full stage + create in flight → nothing', stages: [st(50)], creating: 1, creates: 0 },
    { name: '1,000 joins: 1 full stage, 950 waiting → 19 to seat them + 1 spare', stages: [st(50)], waiting: 950, creates: 20 },
    { name: '1 waiting on a full pool → 1 to seat it + spare', stages: [st(50)], waiting: 1, creates: 2 },
    { name: 'waiting fits the in-flight creates exactly → one more for the spare', stages: [st(50)], creating: 2, waiting: 100, creates: 1 },
    { name: 'waiting fits the partly used stages → the rule of the threshold only', stages: [st(10), st(0, { emptySince: NOW })], waiting: 30, creates: 0 },
    { name: 'never above MAX_STAGES', stages: [st(50), st(50)], waiting: 500, cfg: { maxStages: 5 }, creates: 3 },
    { name: 'MAX reached → nothing', stages: [st(50), st(50)], waiting: 5, cfg: { maxStages: 2 }, creates: 0 },
    { name: 'draining stages count toward MAX but give no seats', stages: [st(50), st(0, { state: 'draining' })], cfg: { maxStages: 3 }, creates: 1 },
  ];
  for (const c of cases) {
    await t.test(c.name, () => {
      const a = planScaling({ stages: c.stages, creating: c.creating ?? 0, waitingJoins: c.waiting ?? 0 }, { ...cfg, ...c.cfg }, NOW);
      assert.equal(creates(a), c.creates);
      assert.equal(deletes(a).length, c.deletes ?? 0);
    });
  }
});

test('1,000 joins at capacity 50 settle at exactly 21 stages whatever the order of planning', () => {
  // Simulate: joins arrive in bursts, the planner runs between bursts, creates land later.
  for (const burst of [1, 7, 50, 333, 1000]) {
    const stages: PlanStage[] = [st(0, { emptySince: NOW })];
    let creating = 0;
    let waiting = 0;
    let arrived = 0;
    for (let round = 0; round < 10_000 && (arrived < 1000 || waiting > 0 || creating > 0); round++) {
      const k = Math.min(burst, 1000 - arrived);
      arrived += k;
      waiting += k;
      // seat what fits (pickStage packs)
      while (waiting > 0) {
        const s = pickStage(stages);
        if (!s) break;
        s.viewers++;
        s.emptySince = null;
        waiting--;
      }
      const actions = planScaling({ stages, creating, waitingJoins: waiting }, cfg, NOW);
      creating += creates(actions);
      // creates land
      for (; creating > 0; creating--) stages.push(st(0, { emptySince: NOW }));
      while (waiting > 0) {
        const s = pickStage(stages);
        if (!s) break;
        s.viewers++;
        s.emptySince = null;
        waiting--;
      }
      const again = planScaling({ stages, creating, waitingJoins: waiting }, cfg, NOW);
      for (let i = creates(again); i > 0; i--) stages.push(st(0, { emptySince: NOW }));
    }
    assert.equal(stages.length, 21, `burst ${burst}`);
    assert.equal(stages.filter((s) => s.viewers === 50).length, 20, `burst ${burst}`);
    assert.ok(stages.every((s) => s.viewers <= s.capacity));
  }
});

test('scale down: a stage empty for the cooldown is deleted; one empty for less is kept', () => {
  const full = st(20);
  const old = st(0, { emptySince: NOW - 60_000 });
  const fresh = st(0, { emptySince: NOW - 59_999 });
  const a = planScaling({ stages: [full, old, fresh], creating: 0, waitingJoins: 0 }, cfg, NOW);
  assert.deepEqual(deletes(a), [old.arn]);
});

test('scale down never deletes a stage with viewers and never goes below MIN_STAGES', () => {
  const a = st(0, { emptySince: NOW - 120_000 });
  const b = st(0, { emptySince: NOW - 120_000 });
  const c = st(0, { emptySince: NOW - 120_000 });
  assert.equal(deletes(planScaling({ stages: [a, b, c], creating: 0, waitingJoins: 0 }, cfg, NOW)).length, 2);
  assert.equal(deletes(planScaling({ stages: [a, b, c], creating: 0, waitingJoins: 0 }, { ...cfg, minStages: 2 }, NOW)).length, 1);
  assert.equal(deletes(planScaling({ stages: [a], creating: 0, waitingJoins: 0 }, cfg, NOW)).length, 0);
  assert.equal(deletes(planScaling({ stages: [st(1, { emptySince: null })], creating: 0, waitingJoins: 0 }, { ...cfg, minStages: 0 }, NOW)).length, 0);
});

test('scale down keeps the last empty spare when removing it would trigger a scale-up (no flapping)', () => {
  const busy = st(45);
  const spare = st(0, { emptySince: NOW - 120_000 });
  assert.deepEqual(deletes(planScaling({ stages: [busy, spare], creating: 0, waitingJoins: 0 }, cfg, NOW)), []);
  // With the busy stage at 30/50 the spare is not needed.
  const calm = st(30);
  assert.deepEqual(deletes(planScaling({ stages: [calm, spare], creating: 0, waitingJoins: 0 }, cfg, NOW)), [spare.arn]);
});

test('draining stages are never picked and never planned for deletion twice', () => {
  const d = st(0, { state: 'draining', emptySince: NOW - 999_999 });
  const a = planScaling({ stages: [st(0, { emptySince: NOW }), d], creating: 0, waitingJoins: 0 }, cfg, NOW);
  assert.deepEqual(a, []);
  assert.equal(pickStage([d]), undefined);
});

test('no deletes while creates are in flight or joins are waiting', () => {
  const old = st(0, { emptySince: NOW - 999_999 });
  const old2 = st(0, { emptySince: NOW - 999_999 });
  assert.deepEqual(deletes(planScaling({ stages: [old, old2], creating: 1, waitingJoins: 0 }, cfg, NOW)), []);
});

test('predictive spares: at 1,000 joins/s with a 2 s lead the pool asks for 2,000 free seats (40 stages), counting creates in flight', () => {
  const c = { ...cfg, maxStages: 300, spareLeadMs: 2000 };
  // One stage half full: 25 free seats; 2,000 expected → ceil(1975 / 50) = 40 creates.
  assert.equal(creates(planScaling({ stages: [st(25)], creating: 0, waitingJoins: 0, joinRatePerS: 1000 }, c, NOW)), 40);
  // 30 already in flight cover 1,500 seats: 10 more.
  assert.equal(creates(planScaling({ stages: [st(25)], creating: 30, waitingJoins: 0, joinRatePerS: 1000 }, c, NOW)), 10);
  // Off (no lead, or no rate): the spare rule alone — a half-full stage at 50% load asks for nothing.
  assert.equal(creates(planScaling({ stages: [st(25)], creating: 0, waitingJoins: 0, joinRatePerS: 1000 }, cfg, NOW)), 0);
  assert.equal(creates(planScaling({ stages: [st(25)], creating: 0, waitingJoins: 0, joinRatePerS: 0 }, c, NOW)), 0);
  // A trickle fits in the free seats: nothing more.
  assert.equal(creates(planScaling({ stages: [st(25)], creating: 0, waitingJoins: 0, joinRatePerS: 2 }, c, NOW)), 0);
  // Never past MAX_STAGES.
  assert.equal(creates(planScaling({ stages: [st(25)], creating: 0, waitingJoins: 0, joinRatePerS: 1000 }, { ...c, maxStages: 10 }, NOW)), 9);
});

test('predictive spares: an empty stage the recent join rate still needs is not scaled down', () => {
  const c = { ...cfg, spareLeadMs: 2000 };
  const idle = [st(0, { emptySince: NOW - 120_000 }), st(0, { emptySince: NOW - 120_000 }), st(0, { emptySince: NOW - 120_000 })];
  assert.equal(deletes(planScaling({ stages: idle, creating: 0, waitingJoins: 0 }, c, NOW)).length, 2, 'no rate: down to the one spare');
  assert.equal(deletes(planScaling({ stages: idle, creating: 0, waitingJoins: 0, joinRatePerS: 50 }, c, NOW)).length, 1, '100 seats wanted: two kept');
  assert.equal(deletes(planScaling({ stages: idle, creating: 0, waitingJoins: 0, joinRatePerS: 100 }, c, NOW)).length, 0, '200 seats wanted: all three kept');
});

test('warm spares: the pool holds SCALE_WARM_SPARES empty stages (in-flight creates count, waiting joins consume), and keeps them on scale-down', () => {
  const c = { ...cfg, warmSpares: 3 };
  assert.equal(creates(planScaling({ stages: [st(10)], creating: 0, waitingJoins: 0 }, c, NOW)), 3);
  assert.equal(creates(planScaling({ stages: [st(10), st(0)], creating: 1, waitingJoins: 0 }, c, NOW)), 1);
  // 60 waiting: 40 fit on the partly used stage, 20 take one of the empties.
  assert.equal(creates(planScaling({ stages: [st(10), st(0), st(0), st(0)], creating: 0, waitingJoins: 60 }, c, NOW)), 1);
  const idle = Array.from({ length: 5 }, () => st(0, { emptySince: NOW - 120_000 }));
  assert.equal(deletes(planScaling({ stages: idle, creating: 0, waitingJoins: 0 }, c, NOW)).length, 2, 'down to the 3 warm spares');
  assert.equal(creates(planScaling({ stages: [st(10)], creating: 0, waitingJoins: 0 }, cfg, NOW)), 0, 'off by default');
});
