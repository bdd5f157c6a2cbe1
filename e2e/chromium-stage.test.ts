/**
 * Headless Chromium (Debian's) publishes H.264 by WHIP into a stage of the real stage server, and plays it by WHEP,
 * inside a private network namespace: Chromium never gathers on loopback, so the namespace gives it 127.0.0.2.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runScenario } from './helpers/scenario.js';

const loopbackOnly = (cands: string[]) => cands.every((c) => / (127\.\d+\.\d+\.\d+) \d+ typ /.test(c));

test('Chromium publishes H.264 by WHIP into a stage and Chromium plays it by WHEP: frames decoded at 640x480, first frame timed', async (t) => {
  const { result, output } = await runScenario('e2e/scenarios/chromium-stage.ts', 90_000);
  assert.equal(result.ok, true, `${result.error}\n${output.slice(-2000)}`);
  assert.equal(result.publish.status, 201);
  assert.equal(result.publish.videoCodec, 'H264', 'Chromium sent H.264');
  assert.match(result.publish.location, /^http:\/\/127\.0\.0\.1:\d+\/stages\/[A-Za-z0-9]+\/whip\/sessions\/[A-Za-z0-9_-]{24}$/);
  assert.equal(result.play.status, 201);
  assert.ok(result.viewer.framesDecoded >= 30);
  assert.equal(result.viewer.frameWidth, 640);
  assert.equal(result.viewer.frameHeight, 480);
  assert.match(result.viewer.codec, /H264/i);
  assert.ok(result.lateViewer.framesDecoded >= 1, 'a viewer joining while live decodes frames');
  assert.ok(result.lateViewer.firstFrameMs < 3000, `late viewer's first frame after ${result.lateViewer.firstFrameMs} ms`);
  assert.equal(result.deleteStatus, 200, 'the publisher ends its session with DELETE');
  for (const c of [result.publish.offerCandidates, result.publish.answerCandidates, result.play.offerCandidates, result.play.answerCandidates]) {
    assert.ok(c.length > 0 && loopbackOnly(c), `candidates stay on 127.0.0.0/8: ${JSON.stringify(c)} in ${JSON.stringify({ publish: result.publish, play: result.play })}`);
  }
  t.diagnostic(`first frame: viewer waiting before publish ${result.firstFrameAfterPublishMs} ms after the WHIP 201; late viewer ${Math.round(result.lateViewer.firstFrameMs)} ms after its WHEP POST`);
});
