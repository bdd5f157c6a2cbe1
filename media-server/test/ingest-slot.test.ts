/**
 * The broadcaster slot (IngestService) on fake sessions and a fake clock: one broadcaster at a time, same-token
 * replacement make-before-break, and a silent session taken over by a broadcaster with another token.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Conflict } from '@stagecast/protocol';
import { SyntheticPublisher } from '@stagecast/rtc/testing';
import type { IngestAuth, IngestPrincipal } from '../src/services/IngestAuth.js';
import { IngestService, type PublisherSink } from '../src/services/IngestService.js';
import { FakeIngestSession } from './helpers/fakes.js';
import { testLogger } from './helpers/log.js';

function slot(silenceTakeoverMs?: number) {
  let now = 1_000_000;
  const { log, logs } = testLogger('info');
  const events: string[] = [];
  let fed = 0;
  const publisher: PublisherSink = {
    onPublisherConnected: (s) => {
      events.push(`up:${s.id}`);
      s.onRtp(() => void fed++); // the StageManager pulls the session's RTP into the router
    },
    onPublisherDisconnected: (s) => void events.push(`down:${s?.id}`),
  };
  const ingest = new IngestService({ auth: {} as IngestAuth, publisher, log, now: () => now, ...(silenceTakeoverMs ? { silenceTakeoverMs } : {}) });
  const post = (p: IngestPrincipal) =>
    ingest.admit(p, async () => {
      const s = new FakeIngestSession();
      ingest.onSession(s);
      return s;
    });
  const pub = new SyntheticPublisher({ videoSsrc: 1, audioSsrc: 2, videoSeq: 1, audioSeq: 1, videoTs: 0, audioTs: 0, packetsPerFrame: 2, payloadBytes: 100 });
  const send = (s: FakeIngestSession) => s.deliver('audio', pub.audioPacket());
  return { ingest, logs, events, post, send, fed: () => fed, advance: (ms: number) => (now += ms) };
}
const A: IngestPrincipal = { kind: 'static', tokenHash: 'tokA' };
const B: IngestPrincipal = { kind: 'jwt', tokenHash: 'tokB' };

test('another token while the broadcaster delivers → 409; once its session has been silent 5 s, the newcomer takes the slot', async () => {
  const t = slot();
  const s1 = await t.post(A);
  t.send(s1);
  t.advance(4000);
  t.send(s1);
  await assert.rejects(t.post(B), Conflict);
  t.advance(4999);
  await assert.rejects(t.post(B), Conflict, 'silent for less than 5 s: still the broadcaster');
  t.advance(1);
  const s2 = await t.post(B);
  assert.equal(s1.closed, true, 'the silent session is ended');
  assert.equal(s2.closed, false);
  assert.deepEqual(t.events, [`up:${s1.id}`, `down:${s1.id}`, `up:${s2.id}`]);
  assert.equal(t.logs.count('publisher.taken_over'), 1);
  assert.equal(t.ingest.stats().takeovers, 1);
  assert.equal(t.ingest.stats().sessionId, s2.id);
  t.send(s2);
  assert.equal(t.fed(), 3);
});

test('a session that has not delivered yet holds the slot for the takeover time from its POST; the threshold is configurable', async () => {
  const t = slot(2000);
  const s1 = await t.post(A);
  t.advance(1999);
  await assert.rejects(t.post(B), Conflict);
  t.advance(1);
  await t.post(B);
  assert.equal(s1.closed, true);
  assert.equal(t.ingest.stats().conflicts, 1);
});

test('same token: the new session takes over at its first packet; a newer POST before that drops the pending one, not the live one', async () => {
  const t = slot();
  const s1 = await t.post(A);
  t.send(s1);
  const s2 = await t.post(A);
  const s3 = await t.post(A);
  assert.equal(s2.closed, true, 'the pending replacement that never delivered is dropped');
  assert.equal(s1.closed, false, 'the live session still feeds the router');
  t.send(s1);
  assert.equal(t.fed(), 2);
  t.send(s3);
  assert.equal(s1.closed, true);
  assert.deepEqual(t.events, [`up:${s1.id}`, `up:${s3.id}`]);
  assert.equal(t.fed(), 3);
  assert.equal(t.ingest.stats().replacements, 1);
  // A silent-session takeover does not apply to the same broadcaster's own pending replacement:
  // the live session delivering keeps the slot against another token.
  t.advance(10_000);
  t.send(s3);
  await assert.rejects(t.post(B), Conflict);
  t.ingest.stop();
  assert.equal(s3.closed, true);
  assert.deepEqual(t.events.at(-1), `down:${s3.id}`);
});
