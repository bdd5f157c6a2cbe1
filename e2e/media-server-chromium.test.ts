/**
 * The whole system with a real browser broadcaster: inside a private network namespace, the stage server, the API Server and
 * the Media Server run as real processes; headless Chromium (Debian's) publishes its fake camera by WHIP to the
 * Media Server with an ingest token from the API Server, and viewers on every stage of the pool decode it — two
 * Chromium WHEP players (stage A, and stage B created while live) and a node-datachannel viewer.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runScenario } from './helpers/scenario.js';

test('Chromium publishes by WHIP to the Media Server; Chromium viewers on every stage (one created while live) decode 640x480 H.264', { timeout: 120_000 }, async (t) => {
  const { result, output } = await runScenario('e2e/scenarios/media-chromium.ts', 110_000);
  assert.equal(result.ok, true, `${result.error}\n${JSON.stringify({ media: result['media-serverLogs'], api: result['api-serverLogs'], stage: result['stage-serverLogs'] }, null, 1).slice(-6000)}\n${output.slice(-2000)}`);
  assert.equal(result.publish.status, 201);
  assert.equal(result.publish.videoCodec, 'H264', 'Chromium sent H.264');
  assert.equal(result.ingestWhipUrl, result.mediaWhipUrl, "the ingest token names the Media Server's WHIP endpoint");
  assert.match(result.publish.location, /^http:\/\/127\.0\.0\.1:\d+\/whip\/sessions\/[A-Za-z0-9_-]+$/);
  assert.equal(result.playA, 201);
  assert.equal(result.playB, 201);
  assert.notEqual(result.stages.A, result.stages.B);
  for (const [name, v] of [['A', result.viewerA], ['B', result.viewerB]] as const) {
    assert.ok(v.framesDecoded >= 30, `stage ${name}: ${v.framesDecoded} frames decoded`);
    assert.equal(v.frameWidth, 640, `stage ${name} width`);
    assert.equal(v.frameHeight, 480, `stage ${name} height`);
    assert.match(v.codec, /H264/i);
  }
  assert.ok(result.ndcA.frames >= 30 && result.ndcA.keyframes >= 1, `node-datachannel viewer on stage A: ${JSON.stringify(result.ndcA)}`);
  assert.deepEqual(result.states, { publisher: 'connected', A: 'connected', B: 'connected' });
  assert.equal(result.media.legs.length, 2);
  for (const l of result.media.legs) assert.ok(l.state === 'connected' && l.packetsSent > 0 && l.keyframesSent >= 1, `leg into ${l.stageArn}: ${JSON.stringify(l)}`);
  assert.equal(result.media.stream.width, 640);
  assert.ok(result.bFirstKeyframeMs < 1000, `stage B (created while live) got its first keyframe ${result.bFirstKeyframeMs} ms after its creation`);
  assert.equal(result.deleteStatus, 200, 'Chromium ends its WHIP session with DELETE');
  t.diagnostic(`steps (ms since start): ${JSON.stringify(result.phases)}`);
  t.diagnostic(`stage B created while live: first keyframe at the stage ${result.bFirstKeyframeMs} ms after its creation; Chromium viewers: A ${Math.round(result.viewerA.firstFrameMs)} ms, B ${Math.round(result.viewerB.firstFrameMs)} ms from WHEP POST to first frame`);
});
