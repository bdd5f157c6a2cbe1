import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Router, buildRtpPacket, listRtpExtensions, parseRtpHeader } from '../src/core/index.js';
import { FakeSinkPort, FakeSourcePort, H264, OPUS, SyntheticPublisher, mulberry32, type RecordedRtp } from '../src/core/testing.js';

function clock(start = 1_700_000_000_000) {
  const c = { t: start, now: () => c.t };
  return c;
}

function assertContinuous(pkts: RecordedRtp[], label: string): void {
  for (let i = 1; i < pkts.length; i++) {
    assert.equal(pkts[i]!.seq, (pkts[i - 1]!.seq + 1) & 0xffff, `${label}: seq continuous at ${i}`);
    const dts = (pkts[i]!.ts - pkts[i - 1]!.ts) | 0;
    assert.ok(dts >= 0, `${label}: timestamp monotone at ${i} (${dts})`);
  }
}

/** Push `frames` video frames (keyframe every `gop`) with one audio packet per frame, 33 ms apart. */
function run(router: Router, pub: SyntheticPublisher, c: { t: number }, frames: number, gop = 30, firstKey = true): void {
  for (let f = 0; f < frames; f++) {
    for (const p of pub.videoFrame(f % gop === 0 && (firstKey || f > 0))) router.pushRtp('video', p);
    router.pushRtp('audio', pub.audioPacket());
    c.t += 33;
  }
}

test('a sink stays continuous when the publisher reconnects with a new SSRC and random seq/ts: seq+1, ts advanced by the wall-clock gap', () => {
  const c = clock();
  const router = new Router({ now: c.now, random: mulberry32(1) });
  try {
    const sink = new FakeSinkPort('viewer', { audio: { ...OPUS, ssrc: 0xa1 }, video: { ...H264, ssrc: 0xb1 } });
    router.addSink(sink);
    const srcA = new FakeSourcePort();
    router.setSource(srcA, { audio: OPUS, video: H264 });
    // Starts 3 packets before the 16-bit wrap and 100 ticks before the 32-bit timestamp wrap.
    const a = new SyntheticPublisher({ videoSsrc: 111, audioSsrc: 222, videoSeq: 65533, audioSeq: 65534, videoTs: 0xffffff9c, audioTs: 0xffffff00 });
    run(router, a, c, 40);
    const lastA = sink.of('video').at(-1)!;
    const lastAudioA = sink.of('audio').at(-1)!;
    const nA = sink.of('video').length;
    const nAudioA = sink.of('audio').length;
    router.clearSource();
    assert.equal(router.getSink('viewer')!.stats().started, false, 'video waits for the next source keyframe');
    // 1.5 s later the broadcaster is back with everything new.
    c.t += 1500 - 33;
    router.setSource(new FakeSourcePort(), { audio: OPUS, video: H264 });
    const b = new SyntheticPublisher({ videoSsrc: 333, audioSsrc: 444, videoSeq: 12000, audioSeq: 40000, videoTs: 77777777, audioTs: 5555 });
    run(router, b, c, 40);
    const video = sink.of('video');
    const audio = sink.of('audio');
    assertContinuous(video, 'video');
    assertContinuous(audio, 'audio');
    assert.ok(video.every((p) => p.ssrc === 0xb1 && p.pt === 96));
    const firstB = video[nA]!;
    assert.equal(firstB.seq, (lastA.seq + 1) & 0xffff);
    assert.equal((firstB.ts - lastA.ts) >>> 0, 1500 * 90, 'video timestamp advanced by 1.5 s at 90 kHz');
    assert.equal((audio[nAudioA]!.ts - lastAudioA.ts) >>> 0, 1500 * 48, 'audio timestamp advanced by 1.5 s at 48 kHz');
    assert.equal(router.getSink('viewer')!.stats().started, true);
    // Every packet of both sources arrived (the sink joined before the first keyframe of each).
    assert.equal(video.length, 2 * (40 * 3 + 2));
  } finally {
    router.close();
  }
});

test('sequence numbers and timestamps wrap around cleanly for the sink', () => {
  const c = clock();
  const router = new Router({ now: c.now, random: () => 0.9999 }); // sink starts near 0x7fff
  try {
    router.setSource(new FakeSourcePort(), { video: H264 });
    const sink = new FakeSinkPort('s', { video: { ...H264, ssrc: 5 } });
    router.addSink(sink);
    const pub = new SyntheticPublisher({ videoSsrc: 1, audioSsrc: 2, videoSeq: 65000, audioSeq: 0, videoTs: 0xfff00000, audioTs: 0 });
    run(router, pub, c, 800, 60);
    const v = sink.of('video');
    assert.equal(v.length, 800 * 3 + 14);
    assertContinuous(v, 'video');
    assert.ok(v.some((p, i) => i > 0 && p.seq < v[i - 1]!.seq), 'the source wrapped and the sink stayed continuous');
  } finally {
    router.close();
  }
});

test('each sink gets its own SSRC, payload type and extension ids; hop-by-hop and unnegotiated extensions are stripped', () => {
  const c = clock();
  const router = new Router({ now: c.now, random: mulberry32(2) });
  try {
    const AUDIO_LEVEL = 'urn:ietf:params:rtp-hdrext:ssrc-audio-level';
    const TWCC = 'http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01';
    const MID = 'urn:ietf:params:rtp-hdrext:sdes:mid';
    router.setSource(new FakeSourcePort(), { audio: { ...OPUS, extensions: { [AUDIO_LEVEL]: 1, [TWCC]: 3, [MID]: 4 } } });
    const s1 = new FakeSinkPort('s1', { audio: { ...OPUS, ssrc: 1001, payloadType: 109, extensions: { [AUDIO_LEVEL]: 10, [TWCC]: 5 } } });
    const s2 = new FakeSinkPort('s2', { audio: { ...OPUS, ssrc: 1002, payloadType: 111, extensions: { [AUDIO_LEVEL]: 1, [TWCC]: 3, [MID]: 4 } } });
    const s3 = new FakeSinkPort('s3', { audio: { ...OPUS, ssrc: 1003, payloadType: 100, extensions: { [AUDIO_LEVEL]: 1, [TWCC]: 3, [MID]: 4 } } });
    for (const s of [s1, s2, s3]) router.addSink(s);
    for (let i = 0; i < 5; i++) {
      const pkt = buildRtpPacket({
        payloadType: 111,
        sequence: 100 + i,
        timestamp: 960 * i,
        ssrc: 42,
        extensions: [
          { id: 1, data: Uint8Array.of(0x80 | i) },
          { id: 3, data: Uint8Array.of(0, i) },
          { id: 4, data: Uint8Array.of(0x30) },
        ],
        payload: Uint8Array.of(0xfc, i, i, i),
      });
      router.pushRtp('audio', pkt);
      c.t += 20;
    }
    const ids = (s: FakeSinkPort) =>
      s.rtp.map((p) => {
        const info = parseRtpHeader(p.bytes)!;
        return listRtpExtensions(p.bytes, info).map((e) => [e.id, p.bytes[e.offset]]);
      });
    assert.ok(s1.rtp.every((p) => p.ssrc === 1001 && p.pt === 109));
    assert.ok(s2.rtp.every((p) => p.ssrc === 1002 && p.pt === 111));
    assert.ok(s3.rtp.every((p) => p.ssrc === 1003 && p.pt === 100));
    assert.deepEqual(ids(s1)[2], [[10, 0x82]], 's1: audio level remapped 1→10, TWCC (hop-by-hop) and MID (not negotiated) stripped');
    assert.deepEqual(ids(s2)[2], [[1, 0x82], [4, 0x30]], 's2: same ids, TWCC still stripped');
    assert.deepEqual(ids(s3)[2], ids(s2)[2], 's3 shares s2 extension class');
    for (const s of [s1, s2, s3]) {
      assert.equal(s.rtp.length, 5);
      for (const p of s.rtp) {
        const info = parseRtpHeader(p.bytes)!;
        assert.deepEqual([...p.bytes.subarray(info.payloadOffset, info.payloadOffset + info.payloadLength)].slice(0, 1), [0xfc]);
      }
    }
  } finally {
    router.close();
  }
});

test('duplicates are dropped, reordered packets keep their place, padding-only packets vanish without a gap, an RTX copy of a held packet is a duplicate', () => {
  const c = clock();
  const router = new Router({ now: c.now, random: mulberry32(3) });
  try {
    router.setSource(new FakeSourcePort(), { audio: { ...OPUS, rtxPayloadType: 112 } });
    const sink = new FakeSinkPort('s', { audio: { ...OPUS, ssrc: 9 } });
    router.addSink(sink);
    const pkt = (seq: number, pad = false) =>
      buildRtpPacket({ payloadType: 111, sequence: seq, timestamp: seq * 960, ssrc: 7, payload: pad ? new Uint8Array(0) : Uint8Array.of(seq & 0xff), padding: pad ? 4 : 0 });
    const order = [1, 2, 2, 4, 3, 5];
    for (const s of order) router.pushRtp('audio', pkt(s));
    router.pushRtp('audio', pkt(6, true)); // padding-only, in order
    router.pushRtp('audio', pkt(7));
    router.pushRtp('audio', buildRtpPacket({ payloadType: 112, sequence: 1, timestamp: 0, ssrc: 8, payload: Uint8Array.of(0, 5, 1) }));
    const got = sink.rtp.map((p) => p.bytes[12]);
    assert.deepEqual(got, [1, 2, 4, 3, 5, 7]);
    const seqs = sink.rtp.map((p) => p.seq);
    const base = seqs[0]!;
    assert.deepEqual(
      seqs.map((s) => (s - base) & 0xffff),
      [0, 1, 3, 2, 4, 5],
      'reordered packet keeps its relative place; padding gap closed (7 follows 5)',
    );
    const st = router.stats().ingress.audio;
    assert.equal(st.duplicates, 2, 'the second 2, and the RTX copy of 5');
    assert.equal(st.paddingDropped, 1);
    assert.equal(st.rtxReceived, 1);
  } finally {
    router.close();
  }
});

test('malformed packets, wrong payload types and packets with no source are counted, never thrown', () => {
  const router = new Router();
  try {
    router.pushRtp('video', Uint8Array.of(1, 2, 3));
    router.setSource(new FakeSourcePort(), { video: H264 });
    router.pushRtp('video', Uint8Array.of(0x80));
    router.pushRtp('video', buildRtpPacket({ payloadType: 50, sequence: 1, timestamp: 1, ssrc: 1, payload: Uint8Array.of(1) }));
    router.pushRtp('audio', buildRtpPacket({ payloadType: 111, sequence: 1, timestamp: 1, ssrc: 1, payload: Uint8Array.of(1) }));
    const st = router.stats();
    assert.equal(st.ingress.video.malformed, 1);
    assert.equal(st.ingress.video.unknownPayloadType, 1);
    assert.equal(st.droppedNoSource, 2);
  } finally {
    router.close();
  }
});

test('close() is idempotent, detaches sinks, and later calls are harmless', () => {
  const router = new Router();
  const sink = router.addSink(new FakeSinkPort('s', { video: H264 }));
  let closes = 0;
  router.on('close', () => closes++);
  router.close();
  router.close();
  assert.equal(closes, 1);
  assert.equal(sink.closed, true);
  assert.equal(router.sinkCount, 0);
  router.pushRtp('video', new Uint8Array(20));
  router.pushRtcp(new Uint8Array(20));
  router.tick();
  sink.handleRtcp(new Uint8Array(8));
  assert.throws(() => router.addSink(new FakeSinkPort('t', {})));
});

test('removeSink stops delivery to that sink only', () => {
  const c = clock();
  const router = new Router({ now: c.now });
  try {
    router.setSource(new FakeSourcePort(), { audio: OPUS });
    const a = new FakeSinkPort('a', { audio: OPUS });
    const b = new FakeSinkPort('b', { audio: OPUS });
    router.addSink(a);
    router.addSink(b);
    const pub = new SyntheticPublisher({ videoSsrc: 1, audioSsrc: 2, videoSeq: 0, audioSeq: 0, videoTs: 0, audioTs: 0 });
    router.pushRtp('audio', pub.audioPacket());
    router.removeSink('a');
    router.pushRtp('audio', pub.audioPacket());
    assert.equal(a.rtp.length, 1);
    assert.equal(b.rtp.length, 2);
    assert.throws(() => router.addSink(new FakeSinkPort('b', {})), /already/);
  } finally {
    router.close();
  }
});
