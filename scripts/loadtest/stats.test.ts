import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseArgs, UsageError } from './cli.js';
import { joinsOnNewerStages, latencySummary, percentile, poolCatchUp, poolShape, promCounter, summarize, summaryTable, type PoolSample } from './stats.js';

const stage = (arn: string, viewers: number, o: { capacity?: number; state?: 'active' | 'draining'; createdAt?: number } = {}) => ({
  stageArn: arn,
  state: o.state ?? ('active' as const),
  capacity: o.capacity ?? 50,
  viewers,
  createdAt: o.createdAt ?? 0,
});

test('percentile is nearest-rank: p50 of 1..100 is 50, p99 is 99, p100 the max; empty is NaN', () => {
  const xs = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(percentile(xs, 50), 50);
  assert.equal(percentile(xs, 99), 99);
  assert.equal(percentile(xs, 100), 100);
  assert.equal(percentile([7], 99), 7);
  assert.ok(Number.isNaN(percentile([], 50)));
  const s = latencySummary([30, 10, 20]);
  assert.deepEqual([s.count, s.p50, s.max, s.mean], [3, 20, 30, 20]);
});

test('poolShape counts empty active stages as spares, never a draining one, and overfill as max seats − capacity', () => {
  const p: PoolSample = { at: 0, stages: [stage('a', 50), stage('b', 0), stage('c', 0, { state: 'draining' }), stage('d', 52)] };
  assert.deepEqual(poolShape(p), { stages: 4, active: 3, emptyActive: 1, seats: 102, capacity: 200, overfill: 2 });
  assert.equal(poolShape({ at: 0, stages: [stage('a', 10)] }).overfill, 0);
});

test('poolCatchUp: time from the last answer to the first poll with the wanted spares; time short while joins were sent', () => {
  const polls: PoolSample[] = [
    { at: 0, stages: [stage('a', 0)] }, // ok
    { at: 100, stages: [stage('a', 50)] }, // short 100..200
    { at: 200, stages: [stage('a', 50), stage('b', 0)] }, // ok
    { at: 300, stages: [stage('a', 50), stage('b', 50)] }, // short 300..400 (the last send is at 400)
    { at: 500, stages: [stage('a', 50), stage('b', 50)] }, // after the storm, still short
    { at: 700, stages: [stage('a', 50), stage('b', 50), stage('c', 0)] }, // caught up
  ];
  const r = poolCatchUp(polls, { firstSentAt: 0, lastSentAt: 400, lastAnsweredAt: 450 }, 1);
  assert.deepEqual(r, { catchUpMs: 250, shortMs: 200 });
  // Caught up at the last poll before the last answer: 0.
  assert.equal(poolCatchUp(polls.slice(0, 3), { firstSentAt: 0, lastSentAt: 200, lastAnsweredAt: 250 }, 1).catchUpMs, 0);
  // Never caught up: null.
  assert.equal(poolCatchUp(polls.slice(0, 5), { firstSentAt: 0, lastSentAt: 400, lastAnsweredAt: 450 }, 1).catchUpMs, null);
  // Two spares wanted: the last poll has one only.
  assert.equal(poolCatchUp(polls, { firstSentAt: 0, lastSentAt: 400, lastAnsweredAt: 450 }, 2).catchUpMs, null);
});

test('joinsOnNewerStages counts joins seated on a stage created after the join was sent', () => {
  const created = new Map([
    ['old', 0],
    ['new', 1000],
  ]);
  const j = (sentAt: number, stageArn?: string) => ({ api: 'x', sentAt, answeredAt: sentAt + 5, status: 201, ...(stageArn ? { stageArn } : {}) });
  assert.equal(joinsOnNewerStages([j(10, 'old'), j(500, 'new'), j(1500, 'new'), j(20)], created), 1);
});

test('promCounter sums a counter over the series matching the labels', () => {
  const text = [
    '# HELP stagecast_joins_total Viewer joins by result',
    '# TYPE stagecast_joins_total counter',
    'stagecast_joins_total{result="seated"} 9950',
    'stagecast_joins_total{result="waited"} 50',
    'stagecast_joins_total_other{result="waited"} 7',
    'stagecast_api_process_cpu_seconds_total 12.5',
  ].join('\n');
  assert.equal(promCounter(text, 'stagecast_joins_total', { result: 'waited' }), 50);
  assert.equal(promCounter(text, 'stagecast_joins_total', {}), 10_000);
  assert.equal(promCounter(text, 'stagecast_api_process_cpu_seconds_total', {}), 12.5);
  assert.equal(promCounter(text, 'missing_total', {}), 0);
});

test('summarize: rate, latency, errors by status, stages created and overfill from the polls', () => {
  const before: PoolSample = { at: 0, stages: [stage('a', 0, { createdAt: -5 })] };
  const joins = [
    { api: 'http://a', sentAt: 0, answeredAt: 10, status: 201, stageArn: 'a' },
    { api: 'http://b', sentAt: 500, answeredAt: 530, status: 201, stageArn: 'b' },
    { api: 'http://a', sentAt: 900, answeredAt: 1000, status: 503 },
    { api: 'http://b', sentAt: 950, answeredAt: 960, status: 0 },
  ];
  const polls: PoolSample[] = [
    { at: 400, stages: [stage('a', 1, { createdAt: -5 }), stage('b', 0, { createdAt: 300 })] },
    { at: 1100, stages: [stage('a', 1, { createdAt: -5 }), stage('b', 51, { createdAt: 300 }), stage('c', 0, { createdAt: 1050 })] },
  ];
  const s = summarize({
    startedAt: 0,
    endedAt: 2000,
    config: { apis: ['http://a', 'http://b'], viewers: 4, ratePerSecond: 4, holdS: 0, leave: true, whep: 0, spares: 1 },
    joins,
    heartbeats: { ok: 3, errors: { '404': 1 } },
    leaves: { ok: 2, errors: {} },
    polls,
    before,
    serverWaited: 0,
    serverCpuS: 0.5,
    clientCpuPercent: 12,
    createMs: [20, 40],
    whep: { viewers: 0, connected: 0, frames: 0, perViewer: [], errors: [] },
    timedOut: false,
  });
  assert.equal(s.joins.ok, 2);
  assert.deepEqual(s.joins.errors, { '503': 1, network: 1 });
  assert.equal(s.joins.perSecond, 2); // 2 answered 201 over 1 s (first send → last answer)
  assert.equal(s.joins.latencyMs.count, 3); // the network error has no latency
  assert.equal(s.joins.latencyMs.max, 100);
  assert.deepEqual(s.joins.perApi.map((a) => [a.api, a.ok]), [['http://a', 1], ['http://b', 1]]);
  assert.deepEqual(s.stages, { before: 1, after: 3, created: 2, peak: 3, createMs: latencySummary([20, 40]) });
  assert.equal(s.pool.overfill, 1);
  assert.deepEqual(s.waitedForStage, { server: 0, clientEstimate: 0 });
  assert.equal(s.serverCpu.msPerJoin, 250);
  // Well-formed JSON, and a table that names each figure.
  assert.deepEqual(JSON.parse(JSON.stringify(s)), s);
  const table = summaryTable(s);
  for (const label of ['joins per second', 'join latency p50 / p90 / p99 / max', 'overfill', 'joins that waited for a new stage', 'pool catch-up'])
    assert.ok(table.includes(label), label);
});

test('parseArgs: defaults, --duration sets the rate, bad options are named', () => {
  const o = parseArgs(['--api=http://a:1/,http://b:2', '--viewers=10000', '--duration=10', '--hold=15', '--whep=2'], { STAGECAST_API_KEY: 'k-123456789' });
  assert.ok(o !== 'help');
  assert.deepEqual(o.apis, ['http://a:1', 'http://b:2']);
  assert.equal(o.ratePerSecond, 1000);
  assert.equal(o.holdMs, 15_000);
  assert.equal(o.apiKey, 'k-123456789');
  assert.equal(o.operatorKey, 'k-123456789');
  assert.equal(o.leave, true);
  assert.equal(o.whep, 2);
  assert.equal(o.timeoutMs, 10_000 + 15_000 + 60_000);
  assert.equal((parseArgs(['--no-leave', '--api-key=x'], {}) as { leave: boolean }).leave, false);
  assert.equal(parseArgs(['--help'], {}), 'help');
  assert.throws(() => parseArgs(['--viewers=-1', '--api-key=x'], {}), UsageError);
  assert.throws(() => parseArgs(['--rate=5', '--duration=2', '--api-key=x'], {}), /not both/);
  assert.throws(() => parseArgs(['--api=ftp://x', '--api-key=x'], {}), /http/);
  assert.throws(() => parseArgs([], {}), /api-key/);
  assert.throws(() => parseArgs(['--frobnicate', '--api-key=x'], {}), /unknown option --frobnicate/);
});
