/**
 * The whole system started as the README says (`npm start`), its three web pages driven in headless Chromium inside a
 * private network namespace: broadcast with the fake camera, two viewers on two stages, the dashboard, Ctrl-C.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runScenario } from './helpers/scenario.js';

test('npm start runs the system; /broadcast goes live, two /watch pages play it from two stages, /dashboard shows it all; a viewer whose seat is gone, or whose stage server dies, joins again by itself; Ctrl-C stops everything', async (t) => {
  const { result, output } = await runScenario('e2e/scenarios/web-pages.ts', 240_000, { signal: 'SIGINT' });
  assert.equal(result.ok, true, `${result.error}\n${result.output ?? ''}\n${output.slice(-2000)}`);
  assert.deepEqual(result.pageStatus, [200, 200, 200], 'the API Server serves the three pages');
  assert.equal(result.keyLeftAddressBar, true, 'the #key fragment is removed from the address bar');
  assert.match(result.broadcast.resolution, /^\d+×\d+$/);
  assert.match(result.broadcast.codec, /H264/i, 'the broadcast page sends H.264');
  const [w1, w2] = result.watch;
  assert.ok(w1.stage && w2.stage, 'each watch page shows its stage');
  assert.notEqual(w1.stage, w2.stage, 'with STAGE_CAPACITY=1 the two viewers are on different stages');
  assert.equal(w1.shown, w1.stage);
  for (const w of [w1, w2]) {
    assert.ok(w.after.frames > w.before.frames && w.after.currentTime > w.before.currentTime, `video advances: ${JSON.stringify(w)}`);
    assert.ok(w.after.width > 0 && w.after.height > 0, 'decoded frames have a size');
    assert.equal(w.after.paused, false);
  }
  const stagesOnDashboard = result.dashboard.stages.map((s: { stage: string }) => s.stage);
  assert.ok(stagesOnDashboard.includes(w1.stage) && stagesOnDashboard.includes(w2.stage), 'the dashboard lists both viewers\' stages');
  assert.equal(result.dashboard.broadcaster, 'online');
  assert.ok(result.dashboard.servers >= 1);
  assert.ok(result.dashboard.events >= 2, 'scaling events listed');
  assert.deepEqual(result.pageErrors, [], 'no uncaught errors in the pages');
  assert.ok(result.leaveMs < 8000);
  assert.equal(result.rejoin.reconnects, '1', 'the watch page joined again by itself once its seat was gone');
  assert.ok(result.rejoin.after.frames > result.rejoin.before.frames, 'and plays on');
  assert.ok(result.stageServerDeath.after.frames > result.stageServerDeath.before.frames, 'after its stage server died (kill -9) the watch page joined again by itself and plays on the other one');
  assert.equal(result.exitCode, 0, 'Ctrl-C: npm start exits 0');
  assert.equal(result.portsFreed, true, 'all three apps stopped');
  t.diagnostic(`npm start ready in ${result.startupMs} ms; stopped in ${result.stopMs} ms; a closed viewer left in ${result.leaveMs} ms; a viewer whose seat was taken played again after ${result.rejoin.ms} ms; one whose stage server died (kill -9) after ${result.stageServerDeath.ms} ms; broadcast ${JSON.stringify(result.broadcast)}; screenshots in test-artifacts/: ${result.screenshots.join(', ')}`);
});
