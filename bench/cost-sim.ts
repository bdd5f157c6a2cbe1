/**
 * Issue 17: what consolidation saves. A day-shaped audience (rising to --peak viewers in the evening and falling
 * back) is run minute by minute through the real planners — pickStage seats every join, planScaling grows and
 * shrinks the pool, planConsolidation merges sparse stages — once without consolidation and once with it. Viewers
 * leave at random (each with the same chance per minute, wherever they sit), which is what leaves stages sparse as
 * the audience falls. Prints stages over the day and participant-hours (viewers + one publisher leg per stage).
 *
 *   node --import tsx bench/cost-sim.ts [--peak=5000 --capacity=50 --sparse=0.5 --churn=0.02 --price=0.072 --seed=17]
 */
import { localStageArn, type StageArn } from '@stagecast/protocol';
import { planConsolidation, type ConsolidationConfig } from '../api-server/src/services/consolidation.js';
import { pickStage, planScaling, type PlanConfig, type PlanStage } from '../api-server/src/services/planning.js';
import { DEFAULT_PRICE_PER_PARTICIPANT_HOUR } from '../api-server/src/config.js';
import { arg, writeResult } from './lib/env.js';

const MIN = 60_000;
const DAY_MIN = 24 * 60;
const peak = Number(arg('peak', '5000'));
const capacity = Number(arg('capacity', '50'));
const sparseRatio = Number(arg('sparse', '0.5'));
const churn = Number(arg('churn', '0.02')); // share of the audience that leaves (and is replaced) each minute: ~50 min watched
const price = Number(arg('price', String(DEFAULT_PRICE_PER_PARTICIPANT_HOUR)));
const seed = Number(arg('seed', '17'));

const plan: PlanConfig = { capacity, minStages: 1, maxStages: Math.ceil((peak * 1.5) / capacity) + 5, scaleUpThreshold: 0.8, scaleDownCooldownMs: 60_000 };
const cons: ConsolidationConfig = { ...plan, sparseRatio, maxMoves: 500 };

/** The audience at minute m of the day: a quiet night, a lunch bump, an evening peak at 21:00 and a fall to midnight. */
function audience(m: number): number {
  const h = m / 60;
  const bump = (c: number, w: number) => Math.exp(-(((h - c) / w) ** 2));
  const evening = h < 21 ? bump(21, 2.5) : bump(21, 1.2); // slow rise, faster fall
  return Math.round(30 + 0.08 * peak * bump(12.5, 1.2) + (peak - 30) * evening);
}

function rng(s: number): () => number {
  let x = s >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

interface Row {
  hour: number;
  audience: number;
  stages: number;
  viewerHours: number;
  publisherHours: number;
  moves: number;
}

function run(consolidate: boolean): { rows: Row[]; moves: number; peakStages: number; creates: number; deletes: number } {
  const rand = rng(seed);
  let n = 0;
  const stages: PlanStage[] = [];
  const newStage = (now: number): PlanStage => ({ arn: localStageArn(`s${++n}`), state: 'active', viewers: 0, capacity, createdAt: now, emptySince: now });
  let creates = 0;
  let deletes = 0;
  let moves = 0;
  let peakStages = 0;
  const rows: Row[] = [];
  let row: Row | undefined;
  let total = 0;
  const leaveOne = () => {
    let r = Math.floor(rand() * total);
    for (const s of stages) {
      if (r < s.viewers) {
        s.viewers--;
        total--;
        return;
      }
      r -= s.viewers;
    }
  };
  for (let m = 0; m < DAY_MIN; m++) {
    const now = m * MIN;
    const target = audience(m);
    // Leaves: the churn plus the fall; joins: the churn plus the rise.
    const churned = Math.round(total * churn);
    const leaves = Math.min(total, churned + Math.max(0, total - target));
    for (let i = 0; i < leaves; i++) leaveOne();
    for (const s of stages) if (s.viewers === 0 && s.emptySince === null) s.emptySince = now;
    let waiting = target - total;
    // Seat the joins, growing the pool as planScaling says (creates land within the minute).
    for (let guard = 0; guard < 1000; guard++) {
      while (waiting > 0) {
        const s = pickStage(stages);
        if (!s) break;
        s.viewers++;
        s.emptySince = null;
        total++;
        waiting--;
      }
      const actions = planScaling({ stages, creating: 0, waitingJoins: waiting }, plan, now);
      const c = actions.filter((a) => a.type === 'create').length;
      for (let i = 0; i < c; i++) stages.push(newStage(now));
      creates += c;
      if (c === 0) break;
    }
    if (consolidate) {
      const p = planConsolidation({ stages: stages.map((s) => ({ ...s, moving: 0 })), creating: 0, waitingJoins: Math.max(0, waiting) }, cons);
      const byArn = new Map<StageArn, PlanStage>(stages.map((s) => [s.arn, s]));
      for (const mv of p.moves) {
        byArn.get(mv.from)!.viewers -= mv.count;
        byArn.get(mv.to)!.viewers += mv.count;
        byArn.get(mv.to)!.emptySince = null;
        moves += mv.count;
        if (row) row.moves += mv.count;
      }
      for (const arn of p.emptied) byArn.get(arn)!.emptySince = now;
    }
    // Scale down (empty for the cooldown), as the service's timer would within this minute.
    for (const a of planScaling({ stages, creating: 0, waitingJoins: 0 }, plan, now)) {
      if (a.type !== 'delete') continue;
      stages.splice(stages.findIndex((s) => s.arn === a.stageArn), 1);
      deletes++;
    }
    peakStages = Math.max(peakStages, stages.length);
    if (m % 60 === 0) {
      row = { hour: m / 60, audience: total, stages: stages.length, viewerHours: 0, publisherHours: 0, moves: 0 };
      rows.push(row);
    }
    row!.viewerHours += total / 60;
    row!.publisherHours += stages.length / 60;
  }
  return { rows, moves, peakStages, creates, deletes };
}

const without = run(false);
const withC = run(true);
const sum = (rows: Row[], k: 'viewerHours' | 'publisherHours') => rows.reduce((a, r) => a + r[k], 0);
const f1 = (x: number) => x.toFixed(1);

console.log(`Day-shaped audience, peak ${peak}, STAGE_CAPACITY=${capacity}, SCALE_UP_THRESHOLD=0.8, SCALE_DOWN_COOLDOWN=60 s, churn ${churn * 100}%/min, CONSOLIDATION_SPARSE_RATIO=${sparseRatio}`);
console.log('');
console.log('| hour | audience at :00 | stages without | stages with | publisher-h without | publisher-h with | viewers moved |');
console.log('|---:|---:|---:|---:|---:|---:|---:|');
for (let i = 0; i < without.rows.length; i++) {
  const a = without.rows[i]!;
  const b = withC.rows[i]!;
  console.log(`| ${String(a.hour).padStart(2, '0')}:00 | ${a.audience} | ${a.stages} | ${b.stages} | ${f1(a.publisherHours)} | ${f1(b.publisherHours)} | ${b.moves} |`);
}
const totals = (r: ReturnType<typeof run>) => {
  const viewerHours = sum(r.rows, 'viewerHours');
  const publisherHours = sum(r.rows, 'publisherHours');
  return { viewerHours, publisherHours, participantHours: viewerHours + publisherHours, estimatedCost: (viewerHours + publisherHours) * price, peakStages: r.peakStages, creates: r.creates, deletes: r.deletes, viewersMoved: r.moves };
};
const t0 = totals(without);
const t1 = totals(withC);
console.log('');
console.log('| over the day | without consolidation | with consolidation | saved |');
console.log('|---|---:|---:|---:|');
console.log(`| viewer-hours | ${f1(t0.viewerHours)} | ${f1(t1.viewerHours)} | |`);
console.log(`| publisher-hours (one leg per stage) | ${f1(t0.publisherHours)} | ${f1(t1.publisherHours)} | ${f1(t0.publisherHours - t1.publisherHours)} (${((100 * (t0.publisherHours - t1.publisherHours)) / t0.publisherHours).toFixed(0)} %) |`);
console.log(`| participant-hours | ${f1(t0.participantHours)} | ${f1(t1.participantHours)} | ${f1(t0.participantHours - t1.participantHours)} (${((100 * (t0.participantHours - t1.participantHours)) / t0.participantHours).toFixed(1)} %) |`);
console.log(`| estimated bill at $${price}/participant-hour | $${t0.estimatedCost.toFixed(2)} | $${t1.estimatedCost.toFixed(2)} | $${(t0.estimatedCost - t1.estimatedCost).toFixed(2)} |`);
console.log(`| peak stages | ${t0.peakStages} | ${t1.peakStages} | |`);
console.log(`| stages created / deleted | ${t0.creates} / ${t0.deletes} | ${t1.creates} / ${t1.deletes} | |`);
console.log(`| viewers moved | 0 | ${t1.viewersMoved} | |`);

const result = {
  bench: 'cost-sim',
  at: new Date().toISOString(),
  params: { peak, capacity, sparseRatio, churn, price, seed, plan },
  without: { ...t0, hourly: without.rows },
  with: { ...t1, hourly: withC.rows },
};
const file = writeResult('cost-sim', result);
console.log(JSON.stringify({ bench: 'cost-sim', without: t0, with: t1 }));
console.error(`written ${file}`);
