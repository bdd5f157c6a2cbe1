/**
 * Media that survives a real network: inside a private network namespace, a Chromium broadcaster and a
 * Chromium viewer, each behind a UDP impairment relay (the kernel has no netem), and the system between them
 * (e2e/scenarios/impair.ts). The goals, as asserted (helpers/impair-cases.ts checkGoal):
 *   ingest-1         1 % loss, broadcaster → Media Server: no freeze (freezeCount 0, and not frozen at the end)
 *   ingest-3-jitter  3 % loss + 0–20 ms jitter, both ways on the ingest hop: frozen ≤ 2 %, frames ≥ 90 % of baseline
 *   viewer-3         3 % loss, stage server → viewer: the same 3 %-loss goal (why not "no freeze": checkGoal)
 *   blackout         2 s of nothing on the ingest hop: the viewer's picture back ≤ 500 ms after the link returns
 * Without loss recovery in the packet path (NACK upstream, RTX, keyframe requests) they fail. To run it alone:
 *   node --import tsx --test e2e/impairment.test.ts        (IMPAIR_SECONDS per case, default 20; ~2 min)
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TABLE_HEADERS, checkGoal, tableRow, type CaseResult } from './helpers/impair-cases.js';
import { runScenario } from './helpers/scenario.js';

const SECONDS = Number(process.env.IMPAIR_SECONDS ?? 20);
/** Start-up, then per case its window and ~12 s of set-up (two pages, ICE, warm-up) and tear-down. */
const TIMEOUT_MS = 40_000 + 5 * (SECONDS * 1000 + 12_000);

test('a viewer keeps playing through 1 % and 3 % ingest loss with jitter, 3 % viewer loss, and a 2 s broadcaster blackout', { timeout: TIMEOUT_MS + 20_000 }, async (t) => {
  const { result, output } = await runScenario('e2e/scenarios/impair.ts', TIMEOUT_MS);
  assert.equal(result.ok, true, `${result.error}\n${JSON.stringify({ media: result['media-serverLogs'], stage: result['stage-serverLogs'] }, null, 1).slice(-5000)}\n${output.slice(-3000)}`);
  const cases = new Map<string, CaseResult>((result.cases as CaseResult[]).map((c) => [c.name, c]));
  t.diagnostic(TABLE_HEADERS.join(' | '));
  for (const c of cases.values()) t.diagnostic(tableRow(c).join(' | '));
  for (const c of cases.values()) t.diagnostic(`${c.name}: ${JSON.stringify({ viewer: c.viewer, broadcaster: c.broadcaster, relays: c.relays, mediaServer: c.mediaServer, stageServer: c.stageServer, blackout: c.blackout })}`);
  const get = (name: string) => {
    const c = cases.get(name);
    assert.ok(c, `case ${name} ran`);
    return c;
  };
  const base = get('baseline');
  // Without loss the harness itself must not freeze the picture, or every other figure is meaningless.
  assert.equal(base.viewer.freezes, 0, `baseline (no loss) froze: ${JSON.stringify(base.viewer)}`);
  // Nor may a relay lose what it was not told to (a full socket buffer): that loss would be the harness's.
  for (const c of cases.values()) assert.deepEqual([c.relays.ingest.kernelDrops, c.relays.viewer.kernelDrops], [0, 0], `${c.name}: datagrams dropped by the kernel at a relay`);

  // The goals as the issue writes them (helpers/impair-cases.ts checkGoal, shared with the bench's table).
  const failures: string[] = [];
  for (const name of ['ingest-1', 'ingest-3-jitter', 'viewer-3', 'blackout']) {
    const g = checkGoal(get(name))!;
    if (!g.met) failures.push(`${name}: ${g.got}; goal: ${g.goal}`);
  }
  assert.deepEqual(failures, [], 'loss-recovery goals');
});
