/** planAssignments: which Media Server publishes into which stage, as a table of cases (pure, no I/O). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { localStageArn, type ServerId, type StageArn } from '@stagecast/protocol';
import { planAssignments, type AssignServer, type AssignStage, type Move } from '../src/services/assignment.js';

const NOW = 1_000_000;
const CFG = { handoverTimeoutMs: 3000 };
const arn = (n: number): StageArn => localStageArn(`s${n}`);
const id = (s: string) => s as ServerId;

function ms(name: string, o: Partial<Omit<AssignServer, 'connected'>> & { connected?: number[] } = {}): AssignServer {
  const { connected, ...rest } = o;
  return { id: id(name), state: 'online', draining: false, socketClosed: false, ...rest, connected: new Set((connected ?? []).map(arn)) };
}
function st(n: number, owner: string | null = null, previous: string | null = null, handoverSince?: number): AssignStage {
  return { arn: arn(n), owner: owner as ServerId | null, previous: previous as ServerId | null, ...(handoverSince !== undefined ? { handoverSince } : {}) };
}
/** Owners after applying the moves: stage number → [owner, previous]. */
function after(stages: AssignStage[], moves: Move[]): Record<number, [string | null, string | null]> {
  const out: Record<number, [string | null, string | null]> = {};
  for (const s of stages) out[Number(s.arn.split('/s').pop())] = [s.owner, s.previous];
  for (const m of moves) out[Number(m.stageArn.split('/s').pop())] = [m.serverId, m.previousServerId];
  return out;
}
const count = (r: Record<number, [string | null, string | null]>, server: string) => Object.values(r).filter(([o]) => o === server).length;

interface Case {
  name: string;
  stages: AssignStage[];
  servers: AssignServer[];
  rebalance?: boolean;
  now?: number;
  /** Expected owners and previous per stage number after the moves (only those listed are checked). */
  expect?: Record<number, [string | null, string | null]>;
  /** Expected stage count per server after the moves. */
  counts?: Record<string, number>;
  reasons?: string[];
}

const cases: Case[] = [
  { name: 'a new stage goes to the only server', stages: [st(1)], servers: [ms('a')], expect: { 1: ['a', null] }, reasons: ['unassigned'] },
  {
    name: 'single server gets every stage (the seed contract)',
    stages: [st(1), st(2), st(3), st(4)],
    servers: [ms('a')],
    counts: { a: 4 },
  },
  {
    name: 'new stages are balanced by count (least loaded first, ties by id)',
    stages: [st(1, 'a'), st(2, 'a'), st(3, 'b'), st(4), st(5), st(6)],
    servers: [ms('a'), ms('b'), ms('c')],
    counts: { a: 2, b: 2, c: 2 },
    expect: { 4: ['c', null], 5: ['b', null], 6: ['c', null] },
  },
  {
    name: 'maxLegs is respected: a full server takes no more, the rest go elsewhere',
    stages: [st(1), st(2), st(3), st(4)],
    servers: [ms('a', { maxLegs: 1 }), ms('b')],
    counts: { a: 1, b: 3 },
  },
  {
    name: 'every server full: the stage has no owner',
    stages: [st(1, 'a'), st(2)],
    servers: [ms('a', { maxLegs: 1 })],
    expect: { 1: ['a', null], 2: [null, null] },
    reasons: [],
  },
  {
    name: 'a leg kept for a handover counts toward maxLegs',
    stages: [st(1, 'b', 'a', NOW), st(2)],
    servers: [ms('a', { maxLegs: 1 }), ms('b', { maxLegs: 5 })],
    expect: { 2: ['b', null] },
  },
  {
    name: 'no live server: nothing is assigned',
    stages: [st(1), st(2)],
    servers: [ms('a', { state: 'offline' }), ms('b', { draining: true }), ms('c', { socketClosed: true })],
    expect: { 1: [null, null], 2: [null, null] },
    reasons: [],
  },
  {
    name: 'a server joins: rebalance moves stages from the most loaded until counts differ by one at most',
    stages: [st(1, 'a'), st(2, 'a'), st(3, 'a'), st(4, 'a'), st(5, 'a')],
    servers: [ms('a'), ms('b')],
    rebalance: true,
    counts: { a: 3, b: 2 },
    reasons: ['rebalance', 'rebalance'],
  },
  {
    name: 'a rebalance move is make-before-break: the old owner stays previous',
    stages: [st(1, 'a'), st(2, 'a')],
    servers: [ms('a'), ms('b')],
    rebalance: true,
    expect: { 1: ['a', null], 2: ['b', 'a'] },
  },
  {
    name: 'without rebalance, an uneven pool stays as it is',
    stages: [st(1, 'a'), st(2, 'a'), st(3, 'a')],
    servers: [ms('a'), ms('b')],
    reasons: [],
  },
  {
    name: 'a draining server gives all its stages away, staying previous (alive)',
    stages: [st(1, 'a'), st(2, 'a'), st(3, 'b')],
    servers: [ms('a', { draining: true }), ms('b'), ms('c')],
    expect: { 1: ['c', 'a'], 2: ['b', 'a'], 3: ['b', null] },
    reasons: ['drain', 'drain'],
  },
  {
    name: 'a dead server (offline) gives its stages away with no previous',
    stages: [st(1, 'a'), st(2, 'a'), st(3, 'b')],
    servers: [ms('a', { state: 'offline' }), ms('b'), ms('c')],
    expect: { 1: ['c', null], 2: ['b', null] },
    reasons: ['offline', 'offline'],
  },
  {
    name: 'an unknown owner (forgotten) counts as dead',
    stages: [st(1, 'gone')],
    servers: [ms('b')],
    expect: { 1: ['b', null] },
    reasons: ['offline'],
  },
  {
    name: 'a closed WebSocket moves the stages, the old owner stays previous (it may be alive)',
    stages: [st(1, 'a'), st(2, 'b')],
    servers: [ms('a', { socketClosed: true }), ms('b')],
    expect: { 1: ['b', 'a'], 2: ['b', null] },
    reasons: ['socket_closed'],
  },
  {
    name: 'the only server drains: owner none, it keeps publishing as previous',
    stages: [st(1, 'a')],
    servers: [ms('a', { draining: true })],
    expect: { 1: [null, 'a'] },
    reasons: ['no_server'],
  },
  {
    name: 'a stage with no owner but a previous gets an owner when one appears, the previous kept',
    stages: [st(1, null, 'a')],
    servers: [ms('a', { draining: true }), ms('b')],
    expect: { 1: ['b', 'a'] },
    reasons: ['unassigned'],
  },
  {
    name: 'the only server comes back after its socket closed: it owns its stage again, no handover',
    stages: [st(1, null, 'a')],
    servers: [ms('a')],
    expect: { 1: ['a', null] },
  },
  {
    name: 'handover completes when the new owner reports the leg connected',
    stages: [st(1, 'b', 'a', NOW - 10)],
    servers: [ms('a', { connected: [1] }), ms('b', { connected: [1] })],
    expect: { 1: ['b', null] },
    reasons: ['handover_completed'],
  },
  {
    name: 'handover waits while the new leg is not connected and the timeout has not passed',
    stages: [st(1, 'b', 'a', NOW - 2999)],
    servers: [ms('a', { connected: [1] }), ms('b')],
    reasons: [],
  },
  {
    name: 'handover is completed anyway after the timeout',
    stages: [st(1, 'b', 'a', NOW - 3000)],
    servers: [ms('a', { connected: [1] }), ms('b')],
    expect: { 1: ['b', null] },
    reasons: ['handover_timeout'],
  },
  {
    name: 'handover ends at once when the server handing over dies',
    stages: [st(1, 'b', 'a', NOW)],
    servers: [ms('a', { state: 'offline' }), ms('b')],
    expect: { 1: ['b', null] },
    reasons: ['previous_gone'],
  },
  {
    name: 'the new owner dies mid-handover: the one still publishing stays previous of the next owner',
    stages: [st(1, 'b', 'a', NOW)],
    servers: [ms('a', { connected: [1], draining: true }), ms('b', { state: 'offline' }), ms('c')],
    expect: { 1: ['c', 'a'] },
    reasons: ['offline'],
  },
  {
    name: 'the new owner dies mid-handover: the old one, still publishing and eligible, takes the stage back',
    stages: [st(1, 'b', 'a', NOW), st(2, 'c'), st(3, 'c')],
    servers: [ms('a', { connected: [1] }), ms('b', { state: 'offline' }), ms('c'), ms('d')],
    expect: { 1: ['a', null] },
    reasons: ['offline'],
  },
  {
    name: 'a stage in a handover is not moved again by a rebalance',
    stages: [st(1, 'a', 'x', NOW), st(2, 'a', 'x', NOW), st(3, 'a', 'x', NOW)],
    servers: [ms('a'), ms('b'), ms('x')],
    rebalance: true,
    reasons: [],
  },
];

test('planAssignments table', async (t) => {
  for (const c of cases) {
    await t.test(c.name, () => {
      const moves = planAssignments(c.stages, c.servers, c.now ?? NOW, CFG, { rebalance: c.rebalance === true });
      const r = after(c.stages, moves);
      for (const [n, want] of Object.entries(c.expect ?? {})) assert.deepEqual(r[Number(n)], want, `stage ${n}`);
      for (const [server, n] of Object.entries(c.counts ?? {})) assert.equal(count(r, server), n, `stages owned by ${server}`);
      if (c.reasons) assert.deepEqual(moves.map((m) => m.reason), c.reasons);
      for (const m of moves) assert.notEqual(m.serverId, m.previousServerId ?? undefined, 'never its own previous');
    });
  }
});

test('planAssignments is stable: applying its moves and planning again moves nothing', () => {
  const stages = [st(1, 'a'), st(2, 'a'), st(3, 'a'), st(4), st(5, 'gone')];
  const servers = [ms('a'), ms('b'), ms('c', { draining: true })];
  const moves = planAssignments(stages, servers, NOW, CFG, { rebalance: true });
  const next = stages.map((s) => {
    const m = moves.find((x) => x.stageArn === s.arn);
    return m ? { ...s, owner: m.serverId, previous: m.previousServerId, handoverSince: NOW } : s;
  });
  assert.deepEqual(planAssignments(next, servers, NOW, CFG, { rebalance: true }), []);
});
