import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Router, buildNack, buildRtpPacket, parseRtcpCompound } from '../src/core/index.js';
import { FakeSinkPort, FakeSourcePort, H264, OPUS, SyntheticPublisher, mulberry32 } from '../src/core/testing.js';

const H264_NACK = { ...H264, rtcpFeedback: ['nack', 'nack pli'] };

function clock(start = 1_700_000_000_000) {
  const c = { t: start, now: () => c.t };
  return c;
}
function publisher(ppf = 3): SyntheticPublisher {
  return new SyntheticPublisher({ videoSsrc: 0x1111, audioSsrc: 0x2222, videoSeq: 1000, audioSeq: 9, videoTs: 5000, audioTs: 42, packetsPerFrame: ppf });
}
const seqOf = (p: Uint8Array) => (p[2]! << 8) | p[3]!;
function nacks(src: FakeSourcePort): number[] {
  return src.rtcp.flatMap((b) => parseRtcpCompound(b) ?? []).flatMap((p) => (p.type === 'nack' && p.mediaSsrc === 0x1111 ? p.lost : []));
}
function plis(src: FakeSourcePort): number {
  return src.rtcp.flatMap((b) => parseRtcpCompound(b) ?? []).filter((p) => p.type === 'pli').length;
}
/** An RTX packet (RFC 4588) for `orig`: own SSRC / PT / seq, payload = OSN + original payload. */
function rtxOf(orig: Uint8Array, rtxSeq: number): Uint8Array {
  const payload = new Uint8Array(orig.length - 12 + 2);
  payload[0] = orig[2]!;
  payload[1] = orig[3]!;
  payload.set(orig.subarray(12), 2);
  return buildRtpPacket({ payloadType: 97, sequence: rtxSeq, timestamp: ((orig[4]! << 24) | (orig[5]! << 16) | (orig[6]! << 8) | orig[7]!) >>> 0, ssrc: 0x9999, payload });
}

test('a lost packet is NACKed after the reorder window, its RTX retransmission is unwrapped and goes to every sink at once', () => {
  const c = clock();
  const timers: Array<() => void> = [];
  const router = new Router({ now: c.now, random: mulberry32(1), schedule: (fn) => timers.push(fn), replaySpreadMs: 0 });
  try {
    const src = new FakeSourcePort();
    router.setSource(src, { video: H264_NACK });
    const sinks = [new FakeSinkPort('a', { video: { ...H264, ssrc: 11 } }), new FakeSinkPort('b', { video: { ...H264, ssrc: 12 } })];
    for (const s of sinks) router.addSink(s);
    const pub = publisher();
    for (const p of pub.videoFrame(true)) router.pushRtp('video', p);
    c.t += 33;
    const frame = pub.videoFrame(false);
    const lost = frame[1]!;
    router.pushRtp('video', frame[0]!);
    router.pushRtp('video', frame[2]!);
    assert.deepEqual(nacks(src), [], 'not at once: it may only be reordered');
    c.t += 11;
    timers.splice(0).forEach((f) => f());
    assert.deepEqual(nacks(src), [seqOf(lost)]);
    const before = sinks.map((s) => s.of('video').length);
    c.t += 2;
    router.pushRtp('video', rtxOf(lost, 1));
    const st = router.stats().ingress.video;
    assert.equal(st.rtxReceived, 1);
    assert.equal(st.recovered, 1);
    assert.equal(st.lostForGood, 0);
    sinks.forEach((s, i) => {
      const v = s.of('video');
      assert.equal(v.length, before[i]! + 1, 'the recovered packet is forwarded');
      const got = v.at(-1)!;
      assert.equal(got.ssrc, 11 + i);
      assert.equal((got.seq - v.at(-2)!.seq) & 0xffff, 0xffff, 'in its own place: one below the packet after it');
      assert.deepEqual(got.bytes.subarray(12), lost.subarray(12), 'the original payload, OSN removed');
    });
    c.t += 500;
    timers.splice(0).forEach((f) => f());
    assert.equal(nacks(src).length, 1, 'no NACK once recovered');
  } finally {
    router.close();
  }
});

test('NACKs are retried at a bounded pace, then the packet is lost for good: the cache is incomplete, a keyframe is asked for, late joiners wait for it', () => {
  const c = clock();
  const timers: Array<() => void> = [];
  const router = new Router({ now: c.now, random: mulberry32(2), schedule: (fn) => timers.push(fn), replaySpreadMs: 0 });
  try {
    const src = new FakeSourcePort();
    router.setSource(src, { video: H264_NACK });
    const pub = publisher();
    for (const p of pub.videoFrame(true)) router.pushRtp('video', p);
    c.t += 33;
    const f1 = pub.videoFrame(false);
    router.pushRtp('video', f1[0]!);
    router.pushRtp('video', f1[2]!);
    src.rtcp.length = 0;
    for (let i = 0; i < 200 && router.stats().ingress.video.lostForGood === 0; i++) {
      c.t += 10;
      timers.splice(0).forEach((f) => f());
    }
    const sent = nacks(src).length;
    assert.ok(sent >= 5 && sent <= 10, `${sent} NACKs before giving up`);
    const st = router.stats();
    assert.equal(st.ingress.video.lostForGood, 1);
    assert.equal(st.cache.video.gopIncomplete, true);
    assert.ok(plis(src) >= 1, 'a keyframe is requested once the packet is given up');
    const late = new FakeSinkPort('late', { video: { ...H264, ssrc: 13 } });
    router.addSink(late);
    assert.equal(late.of('video').length, 0, 'no replay of a GOP with a hole');
    for (const p of pub.videoFrame(false)) router.pushRtp('video', p);
    assert.equal(late.of('video').length, 0);
    c.t += 33;
    for (const p of pub.videoFrame(true)) router.pushRtp('video', p);
    assert.equal(late.of('video').length, 4, 'starts at the next keyframe');
    assert.equal(router.stats().cache.video.gopIncomplete, false);
  } finally {
    router.close();
  }
});

test('after a blackout the gap is not NACKed: it is given up at once and a keyframe is requested', () => {
  const c = clock();
  const timers: Array<() => void> = [];
  const router = new Router({ now: c.now, random: mulberry32(3), schedule: (fn) => timers.push(fn) });
  try {
    const src = new FakeSourcePort();
    router.setSource(src, { video: H264_NACK });
    const pub = publisher();
    for (const p of pub.videoFrame(true)) router.pushRtp('video', p);
    c.t += 600;
    for (let f = 0; f < 60; f++) pub.videoFrame(false); // 2 s the link dropped
    src.rtcp.length = 0;
    c.t += 1400;
    for (const p of pub.videoFrame(false)) router.pushRtp('video', p);
    c.t += 500;
    timers.splice(0).forEach((f) => f());
    assert.deepEqual(nacks(src), []);
    assert.equal(plis(src), 1);
    assert.equal(router.stats().ingress.video.lostForGood, 180);
  } finally {
    router.close();
  }
});

test('a padding packet that arrives before a reordered media packet does not make it unmappable, and sinks see no gap', () => {
  const c = clock();
  const router = new Router({ now: c.now, random: mulberry32(4) });
  try {
    router.setSource(new FakeSourcePort(), { audio: OPUS });
    const sink = new FakeSinkPort('s', { audio: { ...OPUS, ssrc: 9 } });
    router.addSink(sink);
    const pkt = (seq: number, pad = false) =>
      buildRtpPacket({ payloadType: 111, sequence: seq, timestamp: seq * 960, ssrc: 7, payload: pad ? new Uint8Array(0) : Uint8Array.of(seq & 0xff), padding: pad ? 4 : 0 });
    for (const [seq, pad] of [[1, false], [2, false], [4, true], [3, false], [5, false], [7, false], [6, true]] as const) router.pushRtp('audio', pkt(seq, pad));
    const got = sink.rtp.map((p) => (p.bytes[0]! & 0x20 ? 'padding' : p.bytes[12]));
    assert.deepEqual(got, [1, 2, 3, 5, 7, 'padding'], 'media in arrival order; the late padding 6 is forwarded as a filler');
    const base = sink.rtp[0]!.seq;
    assert.deepEqual(
      sink.rtp.map((p) => (p.seq - base) & 0xffff),
      [0, 1, 2, 3, 5, 4],
      'padding 4 compacted out (3 and 5 adjacent); 6 arrived after 7 and keeps its number',
    );
    assert.equal(router.stats().ingress.audio.paddingDropped, 1);
  } finally {
    router.close();
  }
});

test('a hostile sink that NACKs the same packets in a loop gets each resent a bounded number of times, within its budget', () => {
  const c = clock();
  const router = new Router({ now: c.now, random: mulberry32(5) });
  try {
    router.setSource(new FakeSourcePort(), { video: H264 });
    const port = new FakeSinkPort('evil', { video: { ...H264, ssrc: 21 } });
    const sink = router.addSink(port);
    const pub = publisher(10);
    for (let f = 0; f < 30; f++) {
      for (const p of pub.videoFrame(f === 0)) router.pushRtp('video', p);
      c.t += 33;
    }
    const seqs = port.of('video').map((p) => p.seq);
    const sent0 = port.count;
    // 1000 NACKs for the whole window, 1 ms apart.
    for (let i = 0; i < 1000; i++) {
      sink.handleRtcp(buildNack(1, 21, seqs.slice(0, 150)));
      c.t += 1;
    }
    const resent = port.count - sent0;
    const st = sink.stats();
    assert.ok(resent <= 150 * 5, `each packet at most 5 times (${resent} resends)`);
    assert.ok(resent <= 250 + 250 * 1, `within the token bucket: 250 deep, 250/s over 1 s (${resent})`);
    assert.ok(st.retransmitted === resent);
    assert.ok(resent > 0, 'legitimate NACKs are answered');
  } finally {
    router.close();
  }
});

test('a degraded GOP keeps its keyframe packets readable for NACKs while they are in the NACK window', () => {
  const c = clock();
  const router = new Router({ now: c.now, random: mulberry32(6), gopMaxPackets: 20, replaySpreadMs: 0 });
  try {
    router.setSource(new FakeSourcePort(), { video: H264 });
    const port = new FakeSinkPort('s', { video: { ...H264, ssrc: 31 } });
    const sink = router.addSink(port);
    const pub = publisher();
    for (let f = 0; f < 10; f++) {
      for (const p of pub.videoFrame(f === 0)) router.pushRtp('video', p);
      c.t += 33;
    }
    assert.equal(router.stats().cache.video.gopDegraded, true);
    const first = port.of('video')[0]!;
    const before = port.count;
    sink.handleRtcp(buildNack(1, 31, [first.seq]));
    assert.equal(port.count, before + 1, 'the keyframe’s first packet is resent');
    assert.deepEqual(port.rtp.at(-1)!.bytes, first.bytes);
    // The keyframe list and the ring share buffers: a new GOP must not corrupt what the ring still holds.
    for (const p of pub.videoFrame(true)) router.pushRtp('video', p);
    sink.handleRtcp(buildNack(1, 31, [first.seq]));
    c.t += 100;
    sink.handleRtcp(buildNack(1, 31, [first.seq]));
    assert.deepEqual(port.rtp.at(-1)!.bytes, first.bytes);
  } finally {
    router.close();
  }
});

test('a PLI from a playing sink reaches the publisher at most once per 500 ms, however many sinks ask', () => {
  const c = clock();
  const router = new Router({ now: c.now, random: mulberry32(7) });
  try {
    const src = new FakeSourcePort();
    router.setSource(src, { video: H264_NACK });
    const pub = publisher();
    const sinks = Array.from({ length: 20 }, (_, i) => router.addSink(new FakeSinkPort(`s${i}`, { video: { ...H264, ssrc: 100 + i } })));
    for (const p of pub.videoFrame(true)) router.pushRtp('video', p);
    c.t += 1000;
    src.rtcp.length = 0;
    for (let ms = 0; ms < 2000; ms += 10) {
      const s = sinks[(ms / 10) % 20]!;
      s.handleRtcp(Uint8Array.of(0x81, 206, 0, 2, 0, 0, 0, 1, 0, 0, 0, 100 + ((ms / 10) % 20)));
      for (const p of pub.videoFrame(false)) router.pushRtp('video', p);
      c.t += 10;
    }
    const n = plis(src);
    assert.ok(n >= 3 && n <= 4, `${n} PLIs upstream in 2 s`);
  } finally {
    router.close();
  }
});

test('the reorder window follows how late reordered packets come, so jitter does not turn into NACKs for packets that were only late', () => {
  const c = clock();
  const timers: Array<() => void> = [];
  const router = new Router({ now: c.now, random: mulberry32(8), schedule: (fn) => timers.push(fn) });
  try {
    const src = new FakeSourcePort();
    router.setSource(src, { video: H264_NACK });
    const pub = publisher(2);
    for (const p of pub.videoFrame(true)) router.pushRtp('video', p);
    assert.equal(router.stats().ingress.video.nackReorderMs, 10);
    // Every other frame, the first packet comes 25 ms late (after the next one), unasked.
    for (let f = 0; f < 40; f++) {
      const [a, b] = pub.videoFrame(false);
      router.pushRtp('video', b!);
      c.t += 25;
      if (f < 3) timers.splice(0).forEach((fn) => fn()); // the first few are NACKed (window still 10 ms)
      router.pushRtp('video', a!);
      c.t += 8;
    }
    const st = router.stats().ingress.video;
    assert.ok(st.nackReorderMs >= 30 && st.nackReorderMs <= 60, `window ${st.nackReorderMs} ms`);
    const nacked = nacks(src).length;
    src.rtcp.length = 0;
    for (let f = 0; f < 20; f++) {
      const [a, b] = pub.videoFrame(false);
      router.pushRtp('video', b!);
      c.t += 25;
      timers.splice(0).forEach((fn) => fn());
      router.pushRtp('video', a!);
      c.t += 8;
    }
    assert.ok(nacked <= 3, `${nacked} NACKs while learning`);
    assert.equal(nacks(src).length, 0, 'none once the window has learnt the reordering');
  } finally {
    router.close();
  }
});
