/**
 * The seat policy: which stage a new viewer is seated on. One rule, implemented by each store inside its atomic
 * reservation (SQLite: this function in a transaction; Redis: the same loop in Lua) — the store tests check that
 * both agree with this function on the same tables.
 */
import type { StageArn } from '@stagecast/protocol';

export interface SeatCandidate {
  arn: StageArn;
  state: 'active' | 'draining';
  viewers: number;
  capacity: number;
  createdAt: number;
}

/**
 * The FULLEST active stage that still has room: packing keeps the stage count (and the IVS bill) low.
 * Ties go to the older stage (then the one listed first: stores list by createdAt, then arn), so the order is
 * stable. Draining stages are never picked.
 */
export function pickStage<S extends SeatCandidate>(stages: readonly S[]): S | undefined {
  let best: S | undefined;
  for (const s of stages) {
    if (s.state !== 'active' || s.viewers >= s.capacity) continue;
    if (!best || s.viewers > best.viewers || (s.viewers === best.viewers && s.createdAt < best.createdAt)) best = s;
  }
  return best;
}
