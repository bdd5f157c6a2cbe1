/**
 * Scaling decisions as pure functions: plain data in, plain data out. The service applies them.
 */
import type { StageArn } from '@stagecast/protocol';

export { pickStage, type SeatCandidate } from '../store/seat-policy.js';
import type { SeatCandidate } from '../store/seat-policy.js';

export interface PlanStage extends SeatCandidate {
  /** ms epoch since when the stage has had no viewers; null while it has some. */
  emptySince: number | null;
}

export interface PlanInput {
  stages: readonly PlanStage[];
  /** Creates in flight: each will be an empty stage of `capacity` seats. */
  creating: number;
  /** Joins that found no seat and are waiting for one. */
  waitingJoins: number;
  /** Joins per second lately (see JoinRate); absent or 0: no prediction, the spare rule alone. */
  joinRatePerS?: number;
}

export interface PlanConfig {
  capacity: number;
  minStages: number;
  maxStages: number;
  scaleUpThreshold: number;
  scaleDownCooldownMs: number;
  /**
   * Predictive spares: the pool keeps free seats (in stages being created too) for this long of joins at the recent
   * rate — how long a create takes to land, with a margin — so a storm finds seats instead of waiting for stages.
   * 0 or absent: off.
   */
  spareLeadMs?: number;
  /**
   * Warm spares: empty active stages (creates in flight included) the pool always holds, so the first second of a
   * storm — before its rate is known — lands on ready stages too. 0 or absent: off (the one-spare rule alone).
   */
  warmSpares?: number;
}

export type ScalingAction =
  | { type: 'create'; reason: string }
  | { type: 'delete'; stageArn: StageArn; reason: string };

interface Shape {
  active: PlanStage[];
  creating: number;
  waiting: number;
}

/** How many stages to create for this shape of pool (before MIN/MAX), and why. */
function scaleUpNeed(s: Shape, cfg: PlanConfig): { count: number; reason: string } {
  const empties = s.active.filter((x) => x.viewers === 0).length + s.creating;
  const partialFree = s.active.reduce((n, x) => n + (x.viewers > 0 ? Math.max(0, x.capacity - x.viewers) : 0), 0);
  const used = s.active.reduce((n, x) => n + x.viewers, 0);
  const seats = s.active.reduce((n, x) => n + x.capacity, 0) + s.creating * cfg.capacity;
  // Waiting joins fill the partly used stages first (pickStage packs), then the empty ones.
  const remaining = Math.max(0, s.waiting - partialFree);
  const emptiesConsumed = Math.ceil(remaining / cfg.capacity);
  const emptiesLeft = empties - emptiesConsumed;
  if (emptiesLeft >= 1) return { count: 0, reason: '' };
  const load = seats === 0 ? 1 : (used + s.waiting) / seats;
  const toSeat = Math.max(0, emptiesConsumed - empties);
  if (load >= cfg.scaleUpThreshold) {
    const reason =
      toSeat > 0
        ? `${s.waiting} joins waiting; ${toSeat} stage(s) to seat them plus a spare`
        : `load ${(load * 100).toFixed(0)}% ≥ ${(cfg.scaleUpThreshold * 100).toFixed(0)}% and no empty stage`;
    return { count: toSeat + 1, reason };
  }
  return toSeat > 0 ? { count: toSeat, reason: `${s.waiting} joins waiting` } : { count: 0, reason: '' };
}

/**
 * Stages to create so that the free seats (partly used, empty and in-flight stages, less the waiting joins) cover
 * `rate × lead` more joins: the joins that will come before a create started now has landed.
 */
/** Stages to create so that `warmSpares` empty stages remain once the waiting joins are seated. */
function warmNeed(s: Shape, cfg: PlanConfig): number {
  const want = cfg.warmSpares ?? 0;
  if (want <= 0) return 0;
  const empties = s.active.filter((x) => x.viewers === 0).length + s.creating;
  const partialFree = s.active.reduce((n, x) => n + (x.viewers > 0 ? Math.max(0, x.capacity - x.viewers) : 0), 0);
  const emptiesConsumed = Math.ceil(Math.max(0, s.waiting - partialFree) / cfg.capacity);
  return Math.max(0, want - (empties - emptiesConsumed));
}

function predictiveNeed(s: Shape, cfg: PlanConfig, joinRatePerS: number): number {
  const lead = cfg.spareLeadMs ?? 0;
  if (lead <= 0 || joinRatePerS <= 0) return 0;
  const free = s.active.reduce((n, x) => n + Math.max(0, x.capacity - x.viewers), 0) + s.creating * cfg.capacity - s.waiting;
  const expected = Math.ceil((joinRatePerS * lead) / 1000);
  return Math.max(0, Math.ceil((expected - free) / cfg.capacity));
}

export function planScaling(input: PlanInput, cfg: PlanConfig, now: number): ScalingAction[] {
  const active = input.stages.filter((s) => s.state === 'active');
  const existing = input.stages.length + input.creating;
  const room = Math.max(0, cfg.maxStages - existing);
  const shape: Shape = { active, creating: input.creating, waiting: input.waitingJoins };

  let create = 0;
  let reason = '';
  const belowMin = cfg.minStages - (active.length + input.creating);
  if (belowMin > 0) {
    create = belowMin;
    reason = `below MIN_STAGES (${cfg.minStages})`;
  }
  const up = scaleUpNeed(shape, cfg);
  if (up.count > create) {
    create = up.count;
    reason = up.reason;
  }
  const ahead = predictiveNeed(shape, cfg, input.joinRatePerS ?? 0);
  if (ahead > create) {
    create = ahead;
    reason = `${Math.round(input.joinRatePerS ?? 0)} joins/s: seats for the next ${((cfg.spareLeadMs ?? 0) / 1000).toFixed(1)} s`;
  }
  const warm = warmNeed(shape, cfg);
  if (warm > create) {
    create = warm;
    reason = `fewer than ${cfg.warmSpares} warm spare stage(s)`;
  }
  create = Math.min(create, room);
  if (create > 0) return Array.from({ length: create }, () => ({ type: 'create' as const, reason }));
  if (input.creating > 0 || input.waitingJoins > 0) return [];

  // Scale down: stages empty for the whole cooldown, oldest-empty first, never below MIN_STAGES,
  // and never one whose removal would make the scale-up rule fire again (no flapping).
  const actions: ScalingAction[] = [];
  const candidates = active
    .filter((s) => s.viewers === 0 && s.emptySince !== null && now - s.emptySince >= cfg.scaleDownCooldownMs)
    .sort((a, b) => a.emptySince! - b.emptySince! || a.createdAt - b.createdAt);
  let remaining = active;
  for (const c of candidates) {
    if (remaining.length - 1 < cfg.minStages) break;
    const after = remaining.filter((s) => s !== c);
    const shapeAfter = { active: after, creating: 0, waiting: 0 };
    if (scaleUpNeed(shapeAfter, cfg).count > 0 || warmNeed(shapeAfter, cfg) > 0 || predictiveNeed(shapeAfter, cfg, input.joinRatePerS ?? 0) > 0) continue;
    remaining = after;
    actions.push({ type: 'delete', stageArn: c.arn, reason: `empty for ${Math.round((now - c.emptySince!) / 1000)} s` });
  }
  return actions;
}
