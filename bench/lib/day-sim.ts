/**
 * The day of bench/cost-sim.ts as a function: a day-shaped audience run minute by minute through the real planners
 * (pickStage, planScaling, and planConsolidation when `consolidate`). Also used to seed the dashboard screenshot.
 */
import { localStageArn, type StageArn } from '@stagecast/protocol';
import { planConsolidation, type ConsolidationConfig } from '../../api-server/src/services/consolidation.js';
import { pickStage, planScaling, type PlanConfig, type PlanStage } from '../../api-server/src/services/planning.js';

export interface DayParams {
  peak: number;
  capacity: number;
  sparseRatio: number;
  /** Share of the audience that leaves (and is replaced) each minute: 0.02 ≈ 50 min watched. */
  churn: number;
  seed: number;
}

export interface Row {
  hour: number;
  audience: number;
  stages: number;
  viewerHours: number;
  publisherHours: number;
  moves: number;
}

export interface DayResult {
  rows: Row[];
  moves: number;
  /** Moves made by passes that left the pool keeping as many stages as before (packing without a saving yet). */
  movesNeutral: number;
  peakStages: number;
  creates: number;
  deletes: number;
}

const MIN = 60_000;
export const DAY_MIN = 24 * 60;

export function planConfig(p: DayParams): PlanConfig {
  return { capacity: p.capacity, minStages: 1, maxStages: Math.ceil((p.peak * 1.5) / p.capacity) + 5, scaleUpThreshold: 0.8, scaleDownCooldownMs: 60_000 };
}

/** The audience at minute m of the day: a quiet night, a lunch bump, an evening peak at 21:00 and a fall to midnight. */
export function audience(m: number, peak: number): number {
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

/** Runs the day; `onMinute` sees the pool at the end of each minute. */
export function simulateDay(p: DayParams, consolidate: boolean, onMinute?: (minute: number, stages: readonly PlanStage[]) => void): DayResult {
  const { capacity, churn, seed, peak } = p;
  const plan = planConfig(p);
  const cons: ConsolidationConfig = { ...plan, sparseRatio: p.sparseRatio, maxMoves: 500 };
  const rand = rng(seed);
  let n = 0;
  const stages: PlanStage[] = [];
  const newStage = (now: number): PlanStage => ({ arn: localStageArn(`s${++n}`), state: 'active', viewers: 0, capacity, createdAt: now, emptySince: now });
  let creates = 0;
  let deletes = 0;
  let moves = 0;
  let movesNeutral = 0;
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
    const target = audience(m, peak);
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
        if (p.keptAfter >= p.keptBefore) movesNeutral += mv.count;
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
    onMinute?.(m, stages);
  }
  return { rows, moves, movesNeutral, peakStages, creates, deletes };
}

