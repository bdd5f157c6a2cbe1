/**
 * Which Media Server publishes into which stage — a pure decision (like planScaling): plain data in, moves out.
 * StageAssignmentService feeds it the store and applies the moves.
 *
 * Rules: every active stage has one owner among the eligible servers (live, not draining, with room under maxLegs),
 * balanced by the number of stages each owns. A move is make-before-break: the old owner stays `previous` while it
 * may still be alive, until the new owner reports the stage's leg connected (or the handover times out).
 */
import type { ServerId, StageArn } from '@stagecast/protocol';

export interface AssignStage {
  arn: StageArn;
  owner: ServerId | null;
  previous: ServerId | null;
  /** When the current owner was set while a previous still publishes (ms epoch); undefined: no handover. */
  handoverSince?: number;
}

export interface AssignServer {
  id: ServerId;
  /** 'online': heartbeats arrive; 'offline': known dead (missed heartbeats, stopped). */
  state: 'online' | 'offline';
  draining: boolean;
  /** Its WebSocket to the API Server closed (and none reopened): it may be alive, but is not to be trusted with a stage. */
  socketClosed: boolean;
  maxLegs?: number;
  /** Stages whose leg it reports connected. */
  connected: ReadonlySet<StageArn>;
}

export type MoveReason =
  | 'unassigned' // no owner yet (new stage, or none was live)
  | 'rebalance' // a server came online: even out the counts
  | 'drain' // the owner drains
  | 'offline' // the owner is known dead
  | 'socket_closed' // the owner's WebSocket closed
  | 'no_server' // the owner cannot keep it and no other server can take it
  | 'handover_completed' // the new owner's leg is connected
  | 'handover_timeout' // it was not connected in time: completed anyway
  | 'previous_gone'; // the server handing over died first

export interface Move {
  stageArn: StageArn;
  serverId: ServerId | null;
  previousServerId: ServerId | null;
  reason: MoveReason;
}

export interface AssignConfig {
  /** A handover not completed after this long is completed anyway (3 heartbeat intervals). */
  handoverTimeoutMs: number;
}

/** Moves ending handovers: the new owner's leg is connected, the handover timed out, or the old owner died. */
const COMPLETIONS: ReadonlySet<MoveReason> = new Set(['handover_completed', 'handover_timeout', 'previous_gone']);
export const completesHandover = (m: Move): boolean => COMPLETIONS.has(m.reason);

/**
 * The moves that bring `stages` to the rules. `rebalance`: also even out the owned counts (when a server came
 * online; otherwise stages stay where they are). Stages are taken in the given order (oldest first is stable).
 */
export function planAssignments(
  stages: readonly AssignStage[],
  servers: readonly AssignServer[],
  now: number,
  cfg: AssignConfig,
  opts: { rebalance?: boolean } = {},
): Move[] {
  const byId = new Map(servers.map((s) => [s.id, s]));
  const eligible = (id: ServerId | null): boolean => {
    const s = id === null ? undefined : byId.get(id);
    return !!s && s.state === 'online' && !s.draining && !s.socketClosed;
  };
  /** May still publish: not known dead. */
  const mayBeAlive = (id: ServerId | null): boolean => {
    const s = id === null ? undefined : byId.get(id);
    return !!s && s.state === 'online';
  };
  const owned = new Map<ServerId, number>();
  const legs = new Map<ServerId, number>();
  const bump = (m: Map<ServerId, number>, id: ServerId | null, d: number) => {
    if (id !== null) m.set(id, (m.get(id) ?? 0) + d);
  };
  const cur = new Map(stages.map((s) => [s.arn, { ...s }]));
  for (const s of cur.values()) {
    bump(owned, s.owner, 1);
    bump(legs, s.owner, 1);
    if (s.previous !== s.owner) bump(legs, s.previous, 1);
  }
  const hasRoom = (s: AssignServer) => s.maxLegs === undefined || (legs.get(s.id) ?? 0) < s.maxLegs;
  const candidates = servers.filter((s) => eligible(s.id)).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  /** The eligible server with room owning the fewest stages (ties: by id, so the choice is stable). */
  const leastLoaded = (except?: ServerId): AssignServer | undefined => {
    let best: AssignServer | undefined;
    for (const s of candidates) {
      if (s.id === except || !hasRoom(s)) continue;
      if (!best || (owned.get(s.id) ?? 0) < (owned.get(best.id) ?? 0)) best = s;
    }
    return best;
  };

  const moves: Move[] = [];
  const moved = new Set<StageArn>();
  const apply = (s: AssignStage, to: ServerId | null, previous: ServerId | null, reason: MoveReason) => {
    if (previous === to) previous = null;
    if (s.owner === to && s.previous === previous) return;
    bump(owned, s.owner, -1);
    bump(legs, s.owner, -1);
    if (s.previous !== null && s.previous !== s.owner) bump(legs, s.previous, -1);
    bump(owned, to, 1);
    bump(legs, to, 1);
    if (previous !== null) bump(legs, previous, 1);
    s.owner = to;
    s.previous = previous;
    moves.push({ stageArn: s.arn, serverId: to, previousServerId: previous, reason });
    moved.add(s.arn);
  };

  // 1. Stages whose owner cannot keep them (none, dead, socket closed, draining) go to the least-loaded eligible server
  //    (or back to the one still publishing, when it is eligible).
  for (const s of cur.values()) {
    if (eligible(s.owner)) continue;
    const owner = s.owner === null ? undefined : byId.get(s.owner);
    const reason: MoveReason =
      s.owner === null ? 'unassigned' : !owner || owner.state !== 'online' ? 'offline' : owner.draining ? 'drain' : 'socket_closed';
    const previous = handingOver(s, mayBeAlive, byId);
    // The server still publishing takes the stage back when it can: no handover at all.
    const keeper = previous === null ? undefined : candidates.find((c) => c.id === previous && hasRoom(c));
    const to = keeper ?? leastLoaded();
    if (to) apply(s, to.id, previous, reason);
    else if (s.owner !== null) apply(s, null, previous, 'no_server');
  }

  // 2. A server came online: move stages from the most to the least loaded until the counts differ by one at most.
  //    Stages in a handover stay put (one handover at a time per stage).
  if (opts.rebalance) {
    for (let guard = stages.length; guard > 0; guard--) {
      let most: AssignServer | undefined;
      for (const s of candidates) if (!most || (owned.get(s.id) ?? 0) > (owned.get(most.id) ?? 0)) most = s;
      if (!most) break;
      const to = leastLoaded(most.id);
      if (!to || (owned.get(most.id) ?? 0) - (owned.get(to.id) ?? 0) <= 1) break;
      const from = most.id;
      const pick = [...cur.values()].reverse().find((s) => s.owner === from && s.previous === null && !moved.has(s.arn));
      if (!pick) break;
      apply(pick, to.id, from, 'rebalance');
    }
  }

  // 3. Handovers end when the new owner's leg is connected, after the timeout, or when the old owner died.
  for (const s of cur.values()) {
    if (s.previous === null || moved.has(s.arn)) continue;
    const owner = s.owner === null ? undefined : byId.get(s.owner);
    if (owner?.connected.has(s.arn)) apply(s, s.owner, null, 'handover_completed');
    else if (!mayBeAlive(s.previous)) apply(s, s.owner, null, 'previous_gone');
    else if (s.owner !== null && s.handoverSince !== undefined && now - s.handoverSince >= cfg.handoverTimeoutMs)
      apply(s, s.owner, null, 'handover_timeout');
  }
  return moves;
}

/**
 * Who keeps publishing while a stage changes owner: of the current owner and the one it was taking over from,
 * the one whose leg is connected, else the owner, else the old one — as long as it may be alive; null otherwise.
 */
function handingOver(s: AssignStage, mayBeAlive: (id: ServerId | null) => boolean, byId: Map<ServerId, AssignServer>): ServerId | null {
  const alive = [s.owner, s.previous].filter((id): id is ServerId => id !== null && mayBeAlive(id));
  return alive.find((id) => byId.get(id)?.connected.has(s.arn)) ?? alive[0] ?? null;
}
