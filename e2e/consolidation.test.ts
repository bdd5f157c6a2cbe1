/**
 * Stage consolidation end to end, in a private network namespace: 8 real /watch pages in Chromium on 4 stages of capacity 4;
 * 4 leave; consolidation moves the others onto one stage, make-before-break (no page freezes > 300 ms), the emptied
 * stages are deleted, and the cost meter's participant-minutes match what the scenario created.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runScenario } from './helpers/scenario.js';

test('8 viewers on 4 stages of 4, 4 leave → the rest end on 1 stage, no freeze over 300 ms during the move, emptied stages deleted, the meter matches', async (t) => {
  const { result, output } = await runScenario('e2e/scenarios/consolidation.ts', 420_000);
  assert.equal(result.ok, true, `${result.error}\n${result.apiLog ?? ''}\n${output.slice(-3000)}`);
  // The figures (decoded-frame traces left out: they are in the RESULT line when a run fails).
  t.diagnostic(`RESULT ${JSON.stringify({ ...result, apiLog: undefined, viewers: result.viewers?.map((v: Record<string, unknown>) => ({ ...v, decoded: undefined })) })}`);
  assert.deepEqual(result.pagesPerStage, [2, 2, 2, 2], 'two real viewers on each of 4 stages before');
  const viewers = result.viewers as { viewer: string; from: string; to: string; moves: number; switchMs: number | null; reconnects: string; maxGapMs: number; frames: number }[];
  assert.equal(viewers.length, 4);
  assert.equal(new Set(viewers.map((v) => v.to)).size, 1, 'all on one stage');
  assert.equal(viewers.filter((v) => v.moves >= 1).length, 3, 'three viewers were moved, one stayed');
  for (const v of viewers) {
    assert.equal(v.reconnects, '0', `${v.viewer} switched without a reconnect`);
    assert.ok(v.maxGapMs <= 300, `${v.viewer} froze for ${v.maxGapMs} ms (from ${v.from} to ${v.to})`);
    assert.ok(v.frames > 30, `${v.viewer} kept presenting frames (${v.frames})`);
  }
  const pool = result.final.pool as { stage: string; viewers: number }[];
  assert.ok(pool.length <= 2, 'emptied stages deleted (at most the spare stays)');
  const actions = (result.eventsAfterLeave as { action: string }[]).map((e) => e.action);
  assert.equal(actions.filter((a) => a === 'consolidate').length, 3);
  assert.ok(actions.filter((a) => a === 'delete').length >= 2, `deletes after the move: ${JSON.stringify(result.eventsAfterLeave)}`);
  const m = result.meter;
  // Viewers: the scenario's own seat-time, within 1.5 s a seat (the meter's 1-s tick and request latency).
  assert.ok(Math.abs(m.viewerMinutesMetered - m.viewerMinutesCreated) <= (1.5 * m.seats) / 60, `viewer-minutes ${m.viewerMinutesMetered} metered vs ${m.viewerMinutesCreated} created`);
  // Publishers: a connected leg per stage, never longer than the stage lived, and most of its life.
  assert.ok(m.publisherMinutesMetered <= m.publisherMinutesStageLifeMax + 1 / 60, `publisher-minutes ${m.publisherMinutesMetered} > stage life ${m.publisherMinutesStageLifeMax}`);
  assert.ok(m.publisherMinutesMetered >= m.publisherMinutesStageLifeMax - (5 * m.stages) / 60, `publisher-minutes ${m.publisherMinutesMetered} ≪ stage life ${m.publisherMinutesStageLifeMax}`);
  assert.deepEqual(result.pageErrors, []);
  assert.match(result.costTile[0], /^\$\d+\.\d\d\/h$/, 'the dashboard shows the cost per hour');
  assert.match(result.costTile[1], /^5 participants \(4 viewers \+ 1 stage legs\)|^6 participants \(4 viewers \+ 2 stage legs\)/, `live participants on the dashboard: ${result.costTile[1]}`);
  t.diagnostic(
    `moved in ${result.moveMs} ms; per viewer ${viewers.map((v) => `${v.viewer.slice(0, 8)} moves=${v.moves} switch=${v.switchMs ?? '–'} ms max gap=${v.maxGapMs} ms`).join('; ')}; ` +
      `meter: ${m.participantMinutes.toFixed(2)} participant-minutes (viewers ${m.viewerMinutesMetered.toFixed(2)} metered / ${m.viewerMinutesCreated.toFixed(2)} created; publishers ${m.publisherMinutesMetered.toFixed(2)} metered / ≤ ${m.publisherMinutesStageLifeMax.toFixed(2)} stage life), $${m.estimatedCost.toFixed(4)}`,
  );
});
