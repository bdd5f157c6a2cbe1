/**
 * STAGE_PROVIDER=whip: the API Server treats WHIP_TARGETS as stages and the Media Server forwards one broadcast to all
 * of them at once. Two independent WHIP servers (two stage-server processes, one behind a 307 redirect that checks
 * its Bearer token), a Chromium broadcaster, and a Chromium WHEP viewer at each destination that must decode frames.
 * In a network namespace.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runScenario } from './helpers/scenario.js';

test('the whip provider forwards one Chromium broadcast to two independent WHIP servers at once (one behind a 307), each decoding 640x480 frames', async (t) => {
  const { result: r, output } = await runScenario('e2e/scenarios/whip-targets.ts', 180_000);
  assert.equal(r.ok, true, `${r.error}\n${output.slice(-3000)}`);
  assert.equal(r.stagesAtApi.length, 2, 'one stage per WHIP_TARGETS entry');
  assert.ok(r.stagesAtApi.every((a: string) => a.startsWith('arn:stagecast:ivs:whip:')), JSON.stringify(r.stagesAtApi));
  assert.equal(r.legs.length, 2);
  assert.ok(r.legs.every((l: any) => l.state === 'connected' && l.keyframesSent > 0), JSON.stringify(r.legs));
  assert.equal(r.publish.status, 201);
  for (const d of [r.decodedA, r.decodedB]) {
    assert.ok(d.framesDecoded >= 30, JSON.stringify(d));
    assert.equal(d.frameWidth, 640);
    assert.equal(d.frameHeight, 480);
    assert.match(d.codec, /H264/i);
  }
  assert.deepEqual(r.chainPosts, [{ hop: 0, status: 307 }], 'the redirected destination was reached through its 307 with its token');
  assert.equal(r.ivs.enforcing, false, 'WHIP destinations are not IVS: rules are reported, not enforced');
  assert.equal(r.deleteStatus, 200);
  t.diagnostic(`decoded: A ${r.decodedA.framesDecoded}, B ${r.decodedB.framesDecoded} frames`);
});
