/**
 * The Media Server publishing into an "Amazon IVS" stage: the stage's ARN is arn:aws:ivs:… and its WHIP URL is a
 * chain of three 307 redirects over three origins that each check the Bearer token; behind it, a real stage of our
 * stage server, played by headless Chromium over WHEP — a real decoder. Chromium's H.264 (Constrained Baseline)
 * is decoded at 640x480; a broadcaster sending High profile with B-frames is refused before one packet reaches
 * the stage, its reconnect gets 422 with the reason, and the leg into the stage never moves. In a network namespace.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runScenario } from './helpers/scenario.js';

test('IVS-shaped stage behind a 307 chain with the Bearer checked at every hop: Chromium decodes the broadcast at 640x480; High profile + B-frames are refused with a 422 on reconnect and never reach the stage', async (t) => {
  const { result: r, output } = await runScenario('e2e/scenarios/ivs-stage.ts', 180_000);
  assert.equal(r.ok, true, `${r.error}\n${output.slice(-3000)}`);
  // The redirect chain: one POST per hop, each carrying the offer and an issued token, each answered 307.
  assert.deepEqual(r.chainPosts.filter((h: any) => h.status === 307).map((h: any) => h.hop).slice(0, 3), [0, 1, 2]);
  assert.ok(r.chainPosts.every((h: any) => h.status === 307 && h.bodyBytes > 100), JSON.stringify(r.chainPosts));
  assert.equal(r.noToken, 401);
  assert.equal(r.wrongToken, 403);
  // A real decoder behind the chain.
  assert.equal(r.publish.status, 201);
  assert.equal(r.play.status, 201);
  assert.ok(r.decoded.framesDecoded >= 30, JSON.stringify(r.decoded));
  assert.equal(r.decoded.frameWidth, 640);
  assert.equal(r.decoded.frameHeight, 480);
  assert.match(r.decoded.codec, /H264/i);
  assert.equal(r.good.stream.profile, 'Constrained Baseline', 'Chromium\'s H.264 read from the bitstream');
  assert.deepEqual(r.good.stream.ivsViolations, []);
  assert.equal(r.good.ivs.enforcing, true, 'IVS_RULES=auto enforces: the stage is IVS');
  assert.equal(r.deleteStatus, 200);
  // The refused broadcaster.
  assert.deepEqual(r.refused.codes, ['PROFILE_NOT_BASELINE'], 'cut at its SPS, before its first B slice');
  assert.equal(r.refused.level, 40, 'ingest.refused is a warning');
  assert.equal(r.legAfter.legId, r.legBefore.legId, 'the same leg');
  assert.equal(r.legAfter.state, 'connected');
  assert.equal(r.legAfter.packetsSent, r.legBefore.packetsSent, 'not one packet of the refused stream went into the stage');
  assert.equal(r.reconnect.status, 422);
  assert.equal(r.reconnect.body.error.code, 'UNPROCESSABLE');
  assert.match(r.reconnect.body.error.message, /Amazon IVS would disconnect it/);
  assert.match(r.reconnect.body.error.message, /Profile to "baseline"/);
  assert.deepEqual(r.ivsAfter.refusalsByCode, { PROFILE_NOT_BASELINE: 1 });
  assert.deepEqual(r.metricsLine, ['stagecast_media_ivs_refusals_total{code="PROFILE_NOT_BASELINE"} 1']);
  assert.equal(r.viewerAfter.state, 'connected', 'the viewer stays connected to the stage');
  t.diagnostic(`chain hops: ${JSON.stringify(r.chainPosts)}; viewer decoded ${r.decoded.framesDecoded} frames`);
});
