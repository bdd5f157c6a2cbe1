import { test } from 'node:test';
import assert from 'node:assert/strict';
import { localStageArn, type StageArn } from '@stagecast/protocol';
import { planConsolidation, settle, type ConsolidationConfig, type ConsolidationStage } from '../src/services/consolidation.js';
import { pickStage, planScaling, type PlanStage } from '../src/services/planning.js';

const cfg: ConsolidationConfig = { capacity: 50, minStages: 1, maxStages: 100, scaleUpThreshold: 0.8, sparseRatio: 0.5, maxMoves: 1000 };
let n = 0;
function st(viewers: number, o: Partial<ConsolidationStage> = {}): ConsolidationStage {
  n++;
  return { arn: localStageArn(`s${n}`), state: 'active', viewers, capacity: o.capacity ?? cfg.capacity, createdAt: n, moving: 0, ...o };
}
const plan = (stages: ConsolidationStage[], c: Partial<ConsolidationConfig> = {}, o: { creating?: number; waiting?: number } = {}) =>
  planConsolidation({ stages, creating: o.creating ?? 0, waitingJoins: o.waiting ?? 0 }, { ...cfg, ...c });

/** The viewers per stage after applying the plan, in the order of `stages`. */
function apply(stages: ConsolidationStage[], p: ReturnType<typeof planConsolidation>): number[] {
  const m = new Map<StageArn, number>(stages.map((s) => [s.arn, s.viewers]));
  for (const mv of p.moves) {
    m.set(mv.from, m.get(mv.from)! - mv.count);
    m.set(mv.to, m.get(mv.to)! + mv.count);
  }
  return stages.map((s) => m.get(s.arn)!);
}

test('planConsolidation table', async (t) => {
  const cases: Array<{
    name: string;
    stages: () => ConsolidationStage[];
    cfg?: Partial<ConsolidationConfig>;
    creating?: number;
    waiting?: number;
    after: number[];
    keptBefore?: number;
    keptAfter?: number;
  }> = [
    { name: 'one stage → nothing', stages: () => [st(3)], after: [3] },
    { name: 'no sparse stage (all above the ratio) → nothing', stages: () => [st(26), st(30), st(40)], after: [26, 30, 40] },
    {
      name: 'the evening fall: 100 stages ≈ 5 viewers each → packed, a stage per 50 viewers',
      stages: () => Array.from({ length: 10 }, () => st(5)),
      after: [50, 0, 0, 0, 0, 0, 0, 0, 0, 0],
      keptBefore: 10,
      keptAfter: 2, // the full stage and one emptied stage kept as the spare (load 100% ≥ 80%)
    },
    {
      name: 'issue e2e shape: 4 viewers on 4 stages of capacity 4 → all on the oldest, one emptied stage stays the spare',
      stages: () => [st(1, { capacity: 4 }), st(1, { capacity: 4 }), st(1, { capacity: 4 }), st(1, { capacity: 4 })],
      cfg: { capacity: 4 },
      after: [4, 0, 0, 0],
      keptBefore: 4,
      keptAfter: 2,
    },
    {
      name: 'never past capacity: 3 × 25/50 can empty only one (into the other two, 50 + 50 would be 100%)',
      stages: () => [st(25), st(25), st(25)],
      after: [50, 25, 0],
      keptBefore: 3,
      keptAfter: 2,
    },
    {
      name: 'whole stages only: a sparse stage that does not fit anywhere whole stays',
      stages: () => [st(45), st(45), st(20)],
      after: [45, 45, 20],
    },
    {
      name: 'a sparse stage split over two targets when neither has room alone',
      stages: () => [st(40), st(40), st(0), st(15)],
      after: [50, 45, 0, 0],
    },
    {
      name: 'hysteresis: 40 + 2 → 42/50 (84%): the emptied stage is the spare planScaling keeps, never deleted and re-created',
      stages: () => [st(40), st(2)],
      after: [42, 0],
      keptBefore: 2,
      keptAfter: 2,
    },
    {
      name: 'with a spare already there, the emptied stage is not needed: one stage fewer',
      stages: () => [st(40), st(2), st(0)],
      after: [42, 0, 0],
      keptBefore: 2,
      keptAfter: 2,
    },
    {
      name: 'a merge never costs a stage: MIN_STAGES keeps the count, nothing is gained, but occupied stages still pack',
      stages: () => [st(10), st(10), st(10)],
      cfg: { minStages: 3 },
      after: [30, 0, 0],
      keptBefore: 3,
      keptAfter: 3,
    },
    { name: 'creates in flight → nothing (the pool is growing)', stages: () => [st(5), st(5)], creating: 1, after: [5, 5] },
    { name: 'joins waiting → nothing', stages: () => [st(5), st(5)], waiting: 1, after: [5, 5] },
    {
      name: 'stages with moves in flight are neither emptied nor filled',
      stages: () => [st(5, { moving: 2 }), st(5), st(5)],
      after: [5, 10, 0],
    },
    { name: 'draining stages are ignored', stages: () => [st(5, { state: 'draining' }), st(5)], after: [5, 5] },
    {
      name: 'sparseRatio sets how sparse is sparse: 0.1 → only stages of ≤ 5 viewers are emptied',
      stages: () => [st(20), st(6), st(5)],
      cfg: { sparseRatio: 0.1 },
      after: [25, 6, 0],
    },
    { name: 'sparseRatio 0 → nothing is sparse', stages: () => [st(1), st(1)], cfg: { sparseRatio: 0 }, after: [1, 1] },
    {
      name: 'maxMoves bounds one plan: the rest waits for the next',
      stages: () => [st(30), st(3), st(3), st(3)],
      cfg: { maxMoves: 6 },
      after: [36, 3, 0, 0],
    },
  ];
  for (const c of cases) {
    await t.test(c.name, () => {
      const stages = c.stages();
      const p = plan(stages, c.cfg, { creating: c.creating ?? 0, waiting: c.waiting ?? 0 });
      assert.deepEqual(apply(stages, p), c.after);
      const emptiedByMoves = stages.filter((s, i) => s.viewers > 0 && c.after[i] === 0).map((s) => s.arn);
      assert.deepEqual([...p.emptied].sort(), emptiedByMoves.sort(), 'emptied = the stages the moves empty');
      if (c.keptBefore !== undefined) assert.equal(p.keptBefore, c.keptBefore, 'kept before');
      if (c.keptAfter !== undefined) assert.equal(p.keptAfter, c.keptAfter, 'kept after');
    });
  }
});

test('every plan respects capacity, moves only from sparse stages, and leaves planScaling with nothing to create', () => {
  // A seeded random sweep of shapes: the invariants hold for all of them.
  let seed = 42;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  for (let round = 0; round < 500; round++) {
    const capacity = 1 + Math.floor(rnd() * 60);
    const c: ConsolidationConfig = { ...cfg, capacity, sparseRatio: rnd(), minStages: Math.floor(rnd() * 3), scaleUpThreshold: 0.5 + rnd() * 0.5 };
    const stages = Array.from({ length: 1 + Math.floor(rnd() * 12) }, () => st(Math.floor(rnd() * (capacity + 1)), { capacity }));
    const p = planConsolidation({ stages, creating: 0, waitingJoins: 0 }, c);
    const after = apply(stages, p);
    after.forEach((v, i) => assert.ok(v >= 0 && v <= capacity, `round ${round}: stage ${i} at ${v}/${capacity}`));
    for (const m of p.moves) {
      const from = stages.find((s) => s.arn === m.from)!;
      assert.ok(from.viewers <= Math.floor(c.sparseRatio * capacity), `round ${round}: moved from a stage that was not sparse`);
      assert.ok(!p.emptied.includes(m.to), `round ${round}: moved into an emptied stage`);
    }
    assert.ok(p.keptAfter <= p.keptBefore, `round ${round}: a merge cost a stage`);
    if (p.moves.length) {
      const shape = stages.map((s, i) => ({ ...s, viewers: after[i]! }));
      assert.equal(settle(shape, c).grows, false, `round ${round}: scale-up would fire after the merge`);
    }
  }
});

test('after consolidation the real planners settle: scale-down deletes the emptied stages, keeps one spare, creates nothing', () => {
  const stages = [st(1, { capacity: 4 }), st(1, { capacity: 4 }), st(1, { capacity: 4 }), st(1, { capacity: 4 })];
  const c4 = { ...cfg, capacity: 4 };
  const p = planConsolidation({ stages, creating: 0, waitingJoins: 0 }, c4);
  const after = apply(stages, p);
  const NOW = 1_000_000;
  const pool: PlanStage[] = stages.map((s, i) => ({ ...s, viewers: after[i]!, emptySince: after[i] === 0 ? NOW - 60_000 : null }));
  const actions = planScaling({ stages: pool, creating: 0, waitingJoins: 0 }, { ...c4, scaleDownCooldownMs: 60_000 }, NOW);
  assert.equal(actions.filter((a) => a.type === 'create').length, 0);
  assert.equal(actions.filter((a) => a.type === 'delete').length, 2, 'two of the three emptied stages go; one stays the spare');
  // A new join lands on the spare, not on a full stage.
  const left = pool.filter((s) => !actions.some((a) => a.type === 'delete' && a.stageArn === s.arn));
  assert.equal(pickStage(left)?.viewers, 0);
});
