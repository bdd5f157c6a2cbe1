import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Router, buildFir, buildPli, parseRtcpCompound, analyzeH264Payload, H264PayloadInfo, parseRtpHeader } from '../src/core/index.js';
import { FakeSinkPort, FakeSourcePort, H264, OPUS, SPS_CB_640x480, SyntheticPublisher, mulberry32, type RecordedRtp } from '../src/core/testing.js';

function clock(start = 1_700_000_000_000) {
  const c = { t: start, now: () => c.t };
  return c;
}
function publisher(): SyntheticPublisher {
  return new SyntheticPublisher({ videoSsrc: 0x1111, audioSsrc: 0x2222, videoSeq: 500, audioSeq: 9, videoTs: 123456, audioTs: 42 });
}
function frames(router: Router, pub: SyntheticPublisher, c: { t: number }, n: number, keyAt: (f: number) => boolean): void {
  for (let f = 0; f < n; f++) {
    for (const p of pub.videoFrame(keyAt(f))) router.pushRtp('video', p);
    router.pushRtp('audio', pub.audioPacket());
    c.t += 33;
  }
}
function isKeyframeStart(p: RecordedRtp): boolean {
  const i = parseRtpHeader(p.bytes)!;
  const h = new H264PayloadInfo();
  return analyzeH264Payload(p.bytes, i.payloadOffset, i.payloadLength, h) && (h.nalMask & (1 << 7)) !== 0;
}
function upstream(src: FakeSourcePort, type: 'pli' | 'fir') {
  return src.rtcp.flatMap((b) => parseRtcpCompound(b) ?? []).filter((p) => p.type === type);
}

test('a late sink gets the cached GOP: keyframe first, contiguous seqs, compressed monotone timestamps, then live', () => {
  const c = clock();
  const router = new Router({ now: c.now, random: mulberry32(7), replaySpreadMs: 0 });
  try {
    router.setSource(new FakeSourcePort(), { audio: OPUS, video: H264 });
    const pub = publisher();
    frames(router, pub, c, 40, (f) => f === 0 || f === 30); // second GOP starts at frame 30 → 10 frames cached
    const late = new FakeSinkPort('late', { audio: OPUS, video: { ...H264, ssrc: 77, payloadType: 102 } });
    const started: string[] = [];
    router.on('sink-started', (e) => started.push(e.sinkId));
    router.addSink(late);
    const replayed = late.of('video');
    assert.deepEqual(started, ['late']);
    assert.equal(replayed.length, 1 + 10 * 3, 'STAP-A(SPS,PPS) + 10 frames × 3 packets');
    assert.ok(isKeyframeStart(replayed[0]!), 'the first video packet the sink sees starts the keyframe');
    for (let i = 1; i < replayed.length; i++) {
      assert.equal(replayed[i]!.seq, (replayed[i - 1]!.seq + 1) & 0xffff);
      assert.ok(((replayed[i]!.ts - replayed[i - 1]!.ts) | 0) >= 0);
    }
    const span = (replayed.at(-1)!.ts - replayed[0]!.ts) >>> 0;
    assert.ok(span <= 10 * 90, `10 frames compressed into ≤ 10 ms (${span} ticks) instead of 300 ms`);
    assert.ok(replayed.every((p) => p.ssrc === 77 && p.pt === 102));
    // Live continues.
    frames(router, pub, c, 3, () => false);
    const all = late.of('video');
    const firstLive = all[replayed.length]!;
    assert.equal(firstLive.seq, (replayed.at(-1)!.seq + 1) & 0xffff);
    assert.equal((firstLive.ts - replayed.at(-1)!.ts) >>> 0, 3000, 'live cadence resumes from the last replayed frame');
    assert.equal(router.getSink('late')!.stats().keyframesSent, 1);
  } finally {
    router.close();
  }
});

test('no video before a keyframe: a sink joining a live source without a cached keyframe gets audio only, then starts at the keyframe', () => {
  const c = clock();
  const router = new Router({ now: c.now, random: mulberry32(8) });
  try {
    const src = new FakeSourcePort();
    router.setSource(src, { audio: OPUS, video: H264 });
    const pub = publisher();
    frames(router, pub, c, 5, () => false); // the source starts mid-GOP (e.g. a lost first keyframe)
    const sink = new FakeSinkPort('s', { audio: OPUS, video: H264 });
    router.addSink(sink);
    frames(router, pub, c, 5, () => false);
    assert.equal(sink.of('video').length, 0, 'no undecodable delta frames');
    assert.equal(sink.of('audio').length, 5, 'audio flows at once');
    assert.ok(upstream(src, 'pli').length >= 1, 'the router asked the publisher for a keyframe');
    frames(router, pub, c, 2, (f) => f === 0);
    const v = sink.of('video');
    assert.ok(isKeyframeStart(v[0]!));
    assert.equal(v.length, 1 + 6);
  } finally {
    router.close();
  }
});

test('a sink that joins before any source starts with the first keyframe the source sends', () => {
  const c = clock();
  const router = new Router({ now: c.now, random: mulberry32(9) });
  try {
    const sink = new FakeSinkPort('early', { video: H264 });
    router.addSink(sink);
    router.setSource(new FakeSourcePort(), { video: H264 });
    const pub = publisher();
    frames(router, pub, c, 3, () => false);
    frames(router, pub, c, 3, (f) => f === 0);
    const v = sink.of('video');
    assert.equal(v.length, 1 + 9);
    assert.ok(isKeyframeStart(v[0]!));
  } finally {
    router.close();
  }
});

test('100 PLIs from sinks within 900 ms become two PLIs upstream (one per 500 ms)', () => {
  const c = clock();
  const router = new Router({ now: c.now, random: mulberry32(10) });
  try {
    const src = new FakeSourcePort();
    router.setSource(src, { video: H264 });
    const pub = publisher();
    frames(router, pub, c, 2, (f) => f === 0);
    const sinks = Array.from({ length: 10 }, (_, i) => router.addSink(new FakeSinkPort(`s${i}`, { video: { ...H264, ssrc: 1000 + i } })));
    c.t += 1000; // away from the setSource request
    src.rtcp.length = 0;
    for (let i = 0; i < 100; i++) {
      const s = sinks[i % 10]!;
      s.handleRtcp(buildPli(9, 1000 + (i % 10)));
      c.t += 9; // 100 × 9 ms < 1 s
      router.tick(c.t);
    }
    assert.equal(upstream(src, 'pli').length, 2);
    assert.equal(upstream(src, 'pli')[0]!.type === 'pli' && (upstream(src, 'pli')[0] as { mediaSsrc: number }).mediaSsrc, 0x1111);
    assert.equal(router.stats().sinks.reduce((n, s) => n + s.plisReceived, 0), 100);
  } finally {
    router.close();
  }
});

test('with ccm fir negotiated the router sends FIR with an increasing sequence number, one per second', () => {
  const c = clock();
  const router = new Router({ now: c.now, random: mulberry32(11) });
  try {
    const src = new FakeSourcePort();
    router.setSource(src, { video: { ...H264, rtcpFeedback: ['nack', 'nack pli', 'ccm fir'] } });
    const pub = publisher();
    frames(router, pub, c, 1, () => false); // learns the SSRC, flushes the pending request
    const s = router.addSink(new FakeSinkPort('s', { video: { ...H264, ssrc: 5 } }));
    for (let i = 0; i < 3; i++) {
      c.t += 1000;
      s.handleRtcp(i % 2 ? buildPli(9, 5) : buildFir(9, 5, i)); // sinks may ask either way
    }
    const firs = upstream(src, 'fir') as Array<{ entries: Array<{ ssrc: number; seq: number }> }>;
    assert.ok(firs.length >= 3);
    const seqs = firs.map((f) => f.entries[0]!.seq);
    assert.deepEqual(seqs, seqs.map((_, i) => seqs[0]! + i));
    assert.ok(firs.every((f) => f.entries[0]!.ssrc === 0x1111));
    assert.equal(upstream(src, 'pli').length, 0);
  } finally {
    router.close();
  }
});

test('a PLI from a playing sink goes upstream and is never answered by replaying the cache into it', () => {
  const c = clock();
  const router = new Router({ now: c.now, random: mulberry32(12) });
  try {
    const src = new FakeSourcePort();
    router.setSource(src, { video: H264 });
    const port = new FakeSinkPort('s', { video: { ...H264, ssrc: 5 } });
    const sink = router.addSink(port);
    const pub = publisher();
    frames(router, pub, c, 35, (f) => f === 0);
    c.t += 600;
    src.rtcp.length = 0;
    const before = port.of('video').length;
    sink.handleRtcp(buildPli(9, 5));
    assert.equal(port.of('video').length, before, 'nothing replayed into a playing sink');
    assert.equal(upstream(src, 'pli').length, 1, 'the publisher is asked');
    assert.equal(sink.stats().replays, 1, 'only the replay at its start');
    frames(router, pub, c, 2, () => false);
    const all = port.of('video');
    for (let i = 1; i < all.length; i++) assert.equal(all[i]!.seq, (all[i - 1]!.seq + 1) & 0xffff, `seq at ${i}`);
  } finally {
    router.close();
  }
});

test('a replay is paced: a first chunk at once, the rest spread over ticks, live packets only after it caught up', () => {
  const c = clock();
  const timers: Array<() => void> = [];
  const router = new Router({ now: c.now, random: mulberry32(14), schedule: (fn) => timers.push(fn), replaySpreadMs: 200 });
  try {
    router.setSource(new FakeSourcePort(), { video: H264 });
    const pub = new SyntheticPublisher({ videoSsrc: 0x1111, audioSsrc: 0x2222, videoSeq: 65500, audioSeq: 9, videoTs: 1, audioTs: 1, packetsPerFrame: 10 });
    frames(router, pub, c, 30, (f) => f === 0); // 1 + 300 packets cached, across a sequence wrap
    const port = new FakeSinkPort('late', { video: { ...H264, ssrc: 77 } });
    const started: number[] = [];
    router.on('sink-started', (e) => started.push(e.replayedPackets));
    router.addSink(port);
    const first = port.of('video').length;
    assert.ok(first >= 11 && first <= 20, `first chunk ${first} packets: the whole keyframe (11), not the whole GOP`);
    assert.equal(router.replaysRunning, 1);
    let ticks = 0;
    while (timers.length > 0 && ticks < 100) {
      c.t += 10;
      // Live packets keep coming while the replay runs.
      if (ticks % 3 === 0) for (const p of pub.videoFrame(false)) router.pushRtp('video', p);
      timers.shift()!();
      ticks++;
    }
    assert.equal(router.replaysRunning, 0);
    assert.ok(ticks >= 10 && ticks <= 20, `spread over ${ticks} ticks of 10 ms (at most 200 ms, live packets included)`);
    const v = port.of('video');
    assert.ok(isKeyframeStart(v[0]!));
    for (let i = 1; i < v.length; i++) assert.equal(v[i]!.seq, (v[i - 1]!.seq + 1) & 0xffff, `seq at ${i}`);
    for (let i = 1; i < v.length; i++) assert.ok(((v[i]!.ts - v[i - 1]!.ts) | 0) >= 0, `ts at ${i}`);
    assert.equal(started.length, 1);
    assert.equal(started[0], v.length);
    frames(router, pub, c, 1, () => false);
    assert.equal(port.of('video').length, v.length + 10, 'live after the replay');
  } finally {
    router.close();
  }
});

test('SPS and PPS from sprop-parameter-sets start a replay whose keyframe carries none in-band', () => {
  const c = clock();
  const router = new Router({ now: c.now, random: mulberry32(15), replaySpreadMs: 0 });
  try {
    const pps = Uint8Array.of(0x68, 0xce, 0x3c, 0x80);
    router.setSource(new FakeSourcePort(), { video: { ...H264, parameterSets: [SPS_CB_640x480, pps] } });
    const pub = publisher();
    // Keyframes without the STAP-A: drop the first packet of each keyframe (the SPS/PPS aggregate).
    for (let f = 0; f < 5; f++) {
      const pkts = pub.videoFrame(f === 0);
      for (const p of f === 0 ? pkts.slice(1) : pkts) router.pushRtp('video', p);
      c.t += 33;
    }
    const port = new FakeSinkPort('late', { video: { ...H264, ssrc: 78 } });
    router.addSink(port);
    const v = port.of('video');
    assert.ok(isKeyframeStart(v[0]!), 'the first packet is a STAP-A with the SPS');
    assert.equal(v[0]!.ts, v[1]!.ts, 'with the keyframe’s timestamp');
    assert.equal(v.length, 1 + 5 * 3);
    for (let i = 1; i < v.length; i++) assert.equal(v[i]!.seq, (v[i - 1]!.seq + 1) & 0xffff);
  } finally {
    router.close();
  }
});

test('a GOP beyond its bounds keeps only the keyframe, replayed contiguously right before live', () => {
  const c = clock();
  const router = new Router({ now: c.now, random: mulberry32(13), gopMaxPackets: 50, replaySpreadMs: 0 });
  try {
    router.setSource(new FakeSourcePort(), { video: H264 });
    const pub = publisher();
    frames(router, pub, c, 40, (f) => f === 0); // 121 packets > 50
    const st = router.stats().cache.video;
    assert.equal(st.gopDegraded, true);
    const port = new FakeSinkPort('late', { video: H264 });
    router.addSink(port);
    assert.equal(port.of('video').length, 4, 'keyframe only: STAP-A + 3 IDR fragments');
    frames(router, pub, c, 1, () => false);
    const v = port.of('video');
    for (let i = 1; i < v.length; i++) assert.equal(v[i]!.seq, (v[i - 1]!.seq + 1) & 0xffff);
    assert.ok(((v[4]!.ts - v[3]!.ts) | 0) > 0);
  } finally {
    router.close();
  }
});

test("'keyframe' events report the keyframe interval", () => {
  const c = clock();
  const router = new Router({ now: c.now });
  try {
    router.setSource(new FakeSourcePort(), { video: H264 });
    const events: Array<number | undefined> = [];
    router.on('keyframe', (e) => events.push(e.intervalMs));
    frames(router, publisher(), c, 61, (f) => f % 30 === 0);
    assert.deepEqual(events, [undefined, 990, 990]);
    assert.equal(router.sourceStats().keyframesReceived, 3);
  } finally {
    router.close();
  }
});
