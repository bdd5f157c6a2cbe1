/**
 * IVS rules at the Media Server, below the network: the pure decisions (tables), the IvsGate on crafted H.264 RTP,
 * and the IngestService's refusal (session ended, token refused for the hold, then admitted again) on a fake clock.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isStagecastError, localStageArn } from '@stagecast/protocol';
import { H264, SyntheticPublisher } from '@stagecast/rtc/testing';
import { CraftedH264Stream, SPS_CB_1080P, SPS_CB_640x480_CRAFTED, SPS_HIGH_640x480, type SliceKind } from '../../e2e/helpers/h264.js';
import type { IngestAuth, IngestPrincipal } from '../src/services/IngestAuth.js';
import { IngestService, type PublisherSink } from '../src/services/IngestService.js';
import { IvsGate } from '../src/services/IvsGate.js';
import { IvsPolicy } from '../src/services/IvsPolicy.js';
import { checkOfferForIvs, ivsEnforcement, isIvsTarget, refusalError, refusalMessage, type IvsRulesMode, type IvsRuleViolation } from '../src/services/IvsRules.js';
import type { IngestSession } from '../src/media/ports.js';
import { FakeIngestSession, fakeConnector } from './helpers/fakes.js';
import { testLogger } from './helpers/log.js';

const IVS_ARN = 'arn:aws:ivs:us-east-1:123456789012:stage/AbCdEf123';

test('isIvsTarget: AWS partitions and live-video.net WHIP hosts are IVS; stagecast ARNs and other hosts are not', () => {
  const cases: [{ stageArn?: string; whipUrl?: string }, boolean][] = [
    [{ stageArn: IVS_ARN }, true],
    [{ stageArn: 'arn:aws-cn:ivs:cn-north-1:123456789012:stage/x' }, true],
    [{ stageArn: 'arn:aws-us-gov:ivs:us-gov-west-1:123456789012:stage/x' }, true],
    [{ stageArn: localStageArn('x') }, false],
    [{ whipUrl: 'https://global.whip.live-video.net' }, true],
    [{ whipUrl: 'https://453fdfd2ad24df.global-bm.whip.live-video.net/' }, true],
    [{ whipUrl: 'https://live-video.net.evil.example/' }, false],
    [{ whipUrl: 'http://127.0.0.1:3002/stages/x/whip' }, false],
    [{ whipUrl: 'not a url' }, false],
    [{ stageArn: localStageArn('x'), whipUrl: 'https://abc.global-bm.whip.live-video.net' }, true],
  ];
  for (const [t, want] of cases) assert.equal(isIvsTarget(t), want, JSON.stringify(t));
});

test('ivsEnforcement: auto enforces only while an IVS target exists; enforce/warn/off are fixed', () => {
  const cases: [IvsRulesMode, number, string][] = [
    ['auto', 0, 'warn'],
    ['auto', 1, 'enforce'],
    ['enforce', 0, 'enforce'],
    ['warn', 3, 'warn'],
    ['off', 3, 'off'],
  ];
  for (const [mode, n, want] of cases) assert.equal(ivsEnforcement(mode, n), want, `${mode}/${n}`);
});

const offer = (video: string) =>
  ['v=0', 'o=- 1 1 IN IP4 0.0.0.0', 's=-', 't=0 0', 'a=group:BUNDLE 0 1', 'a=fingerprint:sha-256 AA:BB', 'a=ice-ufrag:abcd', 'a=ice-pwd:abcdefghijklmnopqrstuv',
   'm=audio 9 UDP/TLS/RTP/SAVPF 111', 'c=IN IP4 0.0.0.0', 'a=mid:0', 'a=sendonly', 'a=rtpmap:111 opus/48000/2', ...video.split('\n')].join('\r\n') + '\r\n';
const OBS_VIDEO = 'm=video 9 UDP/TLS/RTP/SAVPF 96\na=mid:1\na=sendonly\na=rtpmap:96 H264/90000\na=fmtp:96 profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1';

test('checkOfferForIvs: OBS\'s 42e01f offer passes; no H.264, or only High/Main profile-level-ids, are refused; unparsable SDP is left to the endpoint', () => {
  assert.deepEqual(checkOfferForIvs(offer(OBS_VIDEO)), []);
  assert.deepEqual(checkOfferForIvs(offer('m=video 9 UDP/TLS/RTP/SAVPF 96\na=mid:1\na=sendonly\na=rtpmap:96 H264/90000\na=fmtp:96 packetization-mode=1')), [], 'no profile-level-id = 42000a');
  const mixed = 'm=video 9 UDP/TLS/RTP/SAVPF 96 98\na=mid:1\na=sendonly\na=rtpmap:96 H264/90000\na=fmtp:96 profile-level-id=640c1f;packetization-mode=1\na=rtpmap:98 H264/90000\na=fmtp:98 profile-level-id=42e01f;packetization-mode=1';
  assert.deepEqual(checkOfferForIvs(offer(mixed)), [], 'a Baseline choice among others is enough');
  const high = checkOfferForIvs(offer('m=video 9 UDP/TLS/RTP/SAVPF 96 97\na=mid:1\na=sendonly\na=rtpmap:96 H264/90000\na=fmtp:96 profile-level-id=640c1f;packetization-mode=1\na=rtpmap:97 H264/90000\na=fmtp:97 profile-level-id=4d001f;packetization-mode=1'));
  assert.deepEqual(high.map((v) => v.code), ['PROFILE_NOT_BASELINE']);
  assert.match(high[0]!.message, /640c1f, 4d001f/);
  assert.deepEqual(checkOfferForIvs(offer('m=video 9 UDP/TLS/RTP/SAVPF 96\na=mid:1\na=sendonly\na=rtpmap:96 VP8/90000')).map((v) => v.code), ['NO_H264_VIDEO']);
  assert.deepEqual(checkOfferForIvs(offer('')).map((v) => v.code), ['NO_H264_VIDEO'], 'audio only');
  assert.deepEqual(checkOfferForIvs('this is not SDP'), []);
});

test('refusal message and error: a 422 UNPROCESSABLE naming each rule and the OBS setting that fixes it, with Retry-After', () => {
  const v: IvsRuleViolation[] = [
    { code: 'PROFILE_NOT_BASELINE', message: 'H.264 profile High' },
    { code: 'B_FRAMES', message: 'B-frames seen' },
  ];
  const msg = refusalMessage(v);
  assert.match(msg, /Amazon IVS/);
  assert.match(msg, /Profile to "baseline"/);
  assert.match(msg, /B-frames to 0/);
  const err = refusalError(v, 12.2);
  assert.ok(isStagecastError(err));
  assert.equal(err.status, 422);
  assert.equal(err.code, 'UNPROCESSABLE');
  assert.equal(err.retryAfter, 13);
  assert.deepEqual((err.details as { violations: { code: string }[] }).violations.map((x) => x.code), ['PROFILE_NOT_BASELINE', 'B_FRAMES']);
});

// ---- IvsGate on crafted RTP ----------------------------------------------------------------------------

function gated(policy: IvsPolicy) {
  const session = new FakeIngestSession();
  const seen: IvsRuleViolation[] = [];
  const gate = new IvsGate(session, policy, (_g, v) => seen.push(v));
  const out: Uint8Array[] = [];
  gate.onRtp((kind, p) => kind === 'video' && out.push(p));
  const stream = new CraftedH264Stream({ ssrc: 0x1234, payloadType: H264.payloadType, sps: SPS_CB_640x480_CRAFTED });
  const send = (s: CraftedH264Stream, kinds: SliceKind[]) => {
    let n = 0;
    for (const k of kinds) for (const p of s.frame(k)) {
      session.deliver('video', p);
      n++;
    }
    return n;
  };
  return { session, gate, seen, out, stream, send };
}
const policy = (mode: IvsRulesMode) => {
  const p = new IvsPolicy(mode, () => []);
  p.refresh();
  return p;
};

test('IvsGate, enforcing: a Constrained Baseline I/P stream passes whole; video before the first SPS is held back', () => {
  const g = gated(policy('enforce'));
  const pre = g.send(g.stream, ['P', 'P']);
  assert.equal(g.out.length, 0, 'P frames before any SPS are not forwarded');
  assert.equal(g.gate.videoDropped, pre);
  const n = g.send(g.stream, ['I', 'P', 'P', 'I', 'P']);
  assert.equal(g.out.length, n);
  assert.deepEqual(g.seen, []);
});

test('IvsGate, enforcing: the first B slice is dropped and nothing follows it; a High-profile or 1080p SPS is dropped at once', () => {
  const b = gated(policy('enforce'));
  const ok = b.send(b.stream, ['I', 'P']);
  b.send(b.stream, ['B', 'P', 'I', 'P']);
  assert.equal(b.out.length, ok, 'only the conforming frames before the B slice went out');
  assert.deepEqual(b.seen.map((v) => v.code), ['B_FRAMES']);
  assert.equal(b.gate.blocked, true);

  const h = gated(policy('enforce'));
  h.send(new CraftedH264Stream({ ssrc: 1, payloadType: H264.payloadType, sps: SPS_HIGH_640x480 }), ['I', 'P', 'B']);
  assert.equal(h.out.length, 0, 'not one packet of the High-profile stream');
  assert.deepEqual(h.seen.map((v) => v.code), ['PROFILE_NOT_BASELINE']);

  const r = gated(policy('enforce'));
  r.send(new CraftedH264Stream({ ssrc: 1, payloadType: H264.payloadType, sps: SPS_CB_1080P }), ['I', 'P']);
  assert.equal(r.out.length, 0);
  assert.deepEqual(r.seen.map((v) => v.code), ['RESOLUTION_EXCEEDED']);
});

test('IvsGate, warn: every packet is forwarded and each violation is reported once; audio is never held', () => {
  const g = gated(policy('warn'));
  const hs = new CraftedH264Stream({ ssrc: 1, payloadType: H264.payloadType, sps: SPS_HIGH_640x480 });
  const n = g.send(hs, ['P', 'I', 'B', 'B', 'P', 'B', 'I']);
  assert.equal(g.out.length, n);
  assert.deepEqual(g.seen.map((v) => v.code), ['PROFILE_NOT_BASELINE', 'B_FRAMES']);
  assert.equal(g.gate.hasRefusingViolation, true);
  assert.equal(g.gate.blocked, false);
  const audio: Uint8Array[] = [];
  const e = gated(policy('enforce'));
  e.gate.onRtp((kind, p) => kind === 'audio' && audio.push(p));
  const pub = new SyntheticPublisher({ videoSsrc: 1, audioSsrc: 2, videoSeq: 1, audioSeq: 1, videoTs: 1, audioTs: 1 });
  e.session.deliver('audio', pub.audioPacket());
  assert.equal(audio.length, 1, 'audio passes before any SPS');
});

test('IvsGate: an RTX retransmission of a B slice is recognised after its 2-byte original sequence number', () => {
  const g = gated(policy('enforce'));
  g.send(g.stream, ['I']);
  const b = g.stream.frame('B')[0]!;
  // RTX payload: OSN (2 bytes) + original payload; same header with the RTX payload type.
  const rtx = new Uint8Array(b.length + 2);
  rtx.set(b.subarray(0, 12), 0);
  rtx[1] = (rtx[1]! & 0x80) | H264.rtxPayloadType!;
  rtx[12] = b[2]!;
  rtx[13] = b[3]!;
  rtx.set(b.subarray(12), 14);
  g.session.deliver('video', rtx);
  assert.deepEqual(g.seen.map((v) => v.code), ['B_FRAMES']);
  assert.equal(g.gate.blocked, true);
});

// ---- IngestService: refusal, hold, reconnect ------------------------------------------------------------

function ingestWith(mode: IvsRulesMode, stages: string[] = [IVS_ARN]) {
  let now = 1_000_000;
  const { log, logs } = testLogger('info');
  const events: string[] = [];
  const publisher: PublisherSink = {
    onPublisherConnected: (s) => {
      events.push(`up:${s.id}`);
      s.onRtp(() => undefined); // as the StageManager does: the gate inspects what is pulled through it
    },
    onPublisherDisconnected: (s) => events.push(`down:${s?.id}`),
  };
  const ivs = new IvsPolicy(mode, () => stages);
  const auth = { authorizeHeader: async () => ({ kind: 'static', tokenHash: 'h1' }) } as unknown as IngestAuth;
  const ingest = new IngestService({ auth, publisher, log, ivs, refusalHoldMs: 30_000, now: () => now });
  const A: IngestPrincipal = { kind: 'static', tokenHash: 'tokA' };
  const B: IngestPrincipal = { kind: 'static', tokenHash: 'tokB' };
  const post = (p: IngestPrincipal, sdp = offer(OBS_VIDEO)) =>
    ingest.admit(p, async () => {
      const s = new FakeIngestSession();
      ingest.onSession(s);
      return s;
    }, sdp);
  return { ingest, logs, events, A, B, post, advance: (ms: number) => (now += ms) };
}
const feed = (s: FakeIngestSession, sps: Uint8Array, kinds: SliceKind[]) => {
  const st = new CraftedH264Stream({ ssrc: 9, payloadType: H264.payloadType, sps });
  for (const k of kinds) for (const p of st.frame(k)) s.deliver('video', p);
};
const rejects422 = async (p: Promise<unknown>, codes: string[]) => {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isStagecastError(e), String(e));
    assert.equal(e.status, 422);
    assert.deepEqual((e.details as { violations: { code: string }[] }).violations.map((v) => v.code), codes);
    return true;
  });
};

test('IngestService (IVS stage present): B-frames end the session, legs are untouched, the token gets 422 + Retry-After for the hold, other tokens and the same token after the hold are admitted', async () => {
  const t = ingestWith('auto');
  const s1 = await t.post(t.A);
  feed(s1, SPS_CB_640x480_CRAFTED, ['I', 'P', 'B']);
  assert.equal(s1.closed, true, 'the session is ended');
  assert.deepEqual(t.events, [`up:${s1.id}`, `down:${s1.id}`], 'the publisher sink saw connect then disconnect; StageManager keeps its legs');
  const refusedLog = t.logs.lines().find((l) => l.msg === 'ingest.refused');
  assert.deepEqual(refusedLog?.codes, ['B_FRAMES']);
  assert.equal(refusedLog?.level, 40, 'a warn');

  t.advance(10_000);
  await assert.rejects(t.post(t.A), (e: unknown) => isStagecastError(e) && e.status === 422 && e.retryAfter === 20 && /B-frames to 0/.test(e.message));
  const st = t.ingest.stats().ivs!;
  assert.equal(st.enforcing, true);
  assert.equal(st.refusals, 1);
  assert.deepEqual(st.refusalsByCode, { B_FRAMES: 1 });
  assert.equal(st.refusedReconnects, 1);
  assert.deepEqual(st.lastRefusal?.codes, ['B_FRAMES']);

  const sB = await t.post(t.B);
  assert.equal(sB.closed, false, 'another token is not held');
  sB.close();
  t.advance(20_001);
  const s2 = await t.post(t.A);
  feed(s2, SPS_CB_640x480_CRAFTED, ['I', 'P', 'P', 'I']);
  assert.equal(s2.closed, false, 'after the hold, a conforming stream from the same token stays');
});

test('IngestService: an offer with only High profile is refused at POST when enforced, admitted when only warning (no IVS stage)', async () => {
  const highOffer = offer('m=video 9 UDP/TLS/RTP/SAVPF 96\na=mid:1\na=sendonly\na=rtpmap:96 H264/90000\na=fmtp:96 profile-level-id=640c1f;packetization-mode=1');
  const e = ingestWith('auto');
  await rejects422(e.post(e.A, highOffer), ['PROFILE_NOT_BASELINE']);
  assert.equal(e.events.length, 0, 'no session was created');
  const w = ingestWith('auto', [localStageArn('local1')]);
  const s = await w.post(w.A, highOffer);
  feed(s, SPS_HIGH_640x480, ['I', 'B']);
  assert.equal(s.closed, false, 'warn: the stream stays');
  assert.deepEqual(w.ingest.stats().ivs?.warningsByCode, { PROFILE_NOT_BASELINE: 1, B_FRAMES: 1 });
  assert.equal(w.logs.count('ingest.ivs_warning'), 2);
});

test('IngestService: a stream that broke a rule while only warned is refused within one check once an IVS stage appears', async () => {
  const stages: string[] = [localStageArn('local1')];
  const t = ingestWith('auto', stages);
  const s = await t.post(t.A);
  feed(s, SPS_HIGH_640x480, ['I', 'P']);
  assert.equal(s.closed, false);
  stages.push(IVS_ARN);
  t.ingest.checkIvs();
  assert.equal(s.closed, true);
  assert.deepEqual(t.ingest.stats().ivs?.refusalsByCode, { PROFILE_NOT_BASELINE: 1 });
  await rejects422(t.post(t.A), ['PROFILE_NOT_BASELINE']);
});

test('IngestService: bitrate and keyframe interval beyond IVS limits are warnings, once per session, never a refusal', async () => {
  let report: ReturnType<NonNullable<ConstructorParameters<typeof IngestService>[0]['streamReport']>>;
  const { log, logs } = testLogger('info');
  const ivs = new IvsPolicy('enforce', () => []);
  const ingest = new IngestService({ auth: {} as IngestAuth, publisher: { onPublisherConnected() {}, onPublisherDisconnected() {} }, log, ivs, streamReport: () => report });
  const s = new FakeIngestSession();
  await ingest.admit({ kind: 'static', tokenHash: 'x' }, async () => ingest.onSession(s as IngestSession));
  report = { bFramesSeen: false, bSlices: 0, frames: 300, keyframes: 2, bitrateBps: 9_000_000, maxBitrateBps: 9_000_000, spsChanges: 0, keyframeIntervalMs: 4000 };
  ingest.checkIvs();
  ingest.checkIvs();
  assert.equal(s.closed, false);
  assert.deepEqual(ingest.stats().ivs?.warningsByCode, { BITRATE_EXCEEDED: 1, KEYFRAME_INTERVAL: 1 });
  assert.equal(logs.count('ingest.ivs_warning'), 2);
  assert.equal(ingest.stats().ivs?.refusals, 0);
  ingest.stop();
});

test('IvsPolicy.watch: a leg whose WHIP URL is on live-video.net makes auto enforce until the leg stops', async () => {
  const p = new IvsPolicy('auto', () => [localStageArn('a')]);
  assert.equal(p.refresh(), false);
  const fc = fakeConnector();
  const connect = p.watch(fc.connect);
  const conn = await connect({ id: 'l1', whipUrl: 'https://abc.global-bm.whip.live-video.net', token: 't', timeoutMs: 1000 });
  assert.equal(p.enforcing, true);
  assert.equal(p.ivsTargets, 1);
  await conn.stop();
  assert.equal(p.refresh(), false);
  const local = await connect({ id: 'l2', whipUrl: 'http://127.0.0.1:9/stages/a/whip', token: 't', timeoutMs: 1000 });
  assert.equal(p.refresh(), false);
  await local.stop();
});

test('config: IVS_RULES defaults to auto with a 30 s refusal hold; a bad mode or hold is named', async () => {
  const { ConfigError, parseConfig } = await import('../src/config.js');
  const c = parseConfig({ MEDIA_SERVER_SECRET: 'secret-123456' });
  assert.equal(c.ivsRules, 'auto');
  assert.equal(c.ivsRefusalHoldMs, 30_000);
  assert.equal(parseConfig({ MEDIA_SERVER_SECRET: 'secret-123456', IVS_RULES: 'enforce', IVS_REFUSAL_HOLD_S: '5' }).ivsRefusalHoldMs, 5000);
  assert.throws(
    () => parseConfig({ MEDIA_SERVER_SECRET: 'secret-123456', IVS_RULES: 'strict', IVS_REFUSAL_HOLD_S: '0' }),
    (e: unknown) => e instanceof ConfigError && e.message.includes('IVS_RULES') && e.message.includes('IVS_REFUSAL_HOLD_S'),
  );
});
