/** The heartbeat's broadcaster report (for the API Server's dashboard), from the Media Server's own stats. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PublisherReportSchema } from '@stagecast/protocol';
import { publisherReport } from '../src/services/APIClientService.js';

const publisher = (online: boolean, bitrateBps = 0) => ({
  online,
  bitrateBps,
  packetsReceived: 0,
  bytesReceived: 0,
  keyframesReceived: 0,
  lost: 0,
  keyframeRequestsSent: 0,
});
const stream = { profile: 'Constrained Baseline', width: 1280, height: 720, bFrames: false, frames: 10, keyframes: 1, bitrateBps: 1, frameRate: 30, ivsViolations: [] };

test('no broadcaster, no report: an offline publisher is never shown with a stale bitrate', () => {
  assert.equal(publisherReport({ publisher: publisher(false, 5000), stream }), undefined);
});

test('a live broadcaster is reported with bitrate, size, frame rate and profile, valid against the protocol schema', () => {
  const r = publisherReport({ publisher: publisher(true, 2_000_000), stream });
  assert.deepEqual(r, { bitrateBps: 2_000_000, width: 1280, height: 720, frameRate: 30, profile: 'Constrained Baseline' });
  PublisherReportSchema.parse(r);
});

test('before the inspector has read an SPS, only the bitrate is reported', () => {
  assert.deepEqual(publisherReport({ publisher: publisher(true, 1000), stream: null }), { bitrateBps: 1000 });
});
