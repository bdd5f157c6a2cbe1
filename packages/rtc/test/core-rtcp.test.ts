import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  Router,
  buildNack,
  buildReceiverReport,
  buildSenderReport,
  ntpFromUnixMs,
  ntpMiddle32,
  parseRtcpCompound,
  type ReceiverReport,
  type SenderReport,
} from '../src/core/index.js';
import { FakeSinkPort, FakeSourcePort, H264, OPUS, SyntheticPublisher, mulberry32 } from '../src/core/testing.js';

function clock(start = 1_700_000_000_000) {
  const c = { t: start, now: () => c.t };
  return c;
}
function publisher(): SyntheticPublisher {
  return new SyntheticPublisher({ videoSsrc: 0x1111, audioSsrc: 0x2222, videoSeq: 65000, audioSeq: 9, videoTs: 90000, audioTs: 48000 });
}

test('a NACK is answered from the cache with the sink’s own SSRC, sequence number and timestamp; unknown ones count as misses', () => {
  const c = clock();
  const router = new Router({ now: c.now, random: mulberry32(20) });
  try {
    router.setSource(new FakeSourcePort(), { video: H264 });
    const port = new FakeSinkPort('s', { video: { ...H264, ssrc: 0x5150, payloadType: 102 } });
    const sink = router.addSink(port);
    const pub = publisher();
    for (let f = 0; f < 30; f++) {
      for (const p of pub.videoFrame(f === 0)) router.pushRtp('video', p);
      c.t += 33;
    }
    const sent = port.of('video');
    const wanted = [sent[5]!, sent[40]!, sent[80]!];
    const n = port.rtp.length;
    sink.handleRtcp(buildNack(0x9, 0x5150, [...wanted.map((p) => p.seq), (sent.at(-1)!.seq + 500) & 0xffff]));
    const resent = port.rtp.slice(n);
    assert.equal(resent.length, 3);
    resent.forEach((p, i) => {
      assert.equal(p.seq, wanted[i]!.seq);
      assert.equal(p.ts, wanted[i]!.ts);
      assert.equal(p.ssrc, 0x5150);
      assert.equal(p.pt, 102);
      assert.deepEqual(p.bytes, wanted[i]!.bytes, 'byte-identical retransmission');
    });
    const st = sink.stats();
    assert.equal(st.nacksReceived, 4);
    assert.equal(st.retransmitted, 3);
    assert.equal(st.nackMisses, 1);
    // NACK for another SSRC is ignored.
    sink.handleRtcp(buildNack(9, 0xdead, [wanted[0]!.seq]));
    assert.equal(port.rtp.length, n + 3);
  } finally {
    router.close();
  }
});

test('tick() sends each sink an SR with its SSRC, its packet/octet counts and an RTP timestamp on its own timeline', () => {
  const c = clock();
  const router = new Router({ now: c.now, random: mulberry32(21) });
  try {
    router.setSource(new FakeSourcePort(), { audio: OPUS, video: H264 });
    const port = new FakeSinkPort('s', { audio: { ...OPUS, ssrc: 0xa }, video: { ...H264, ssrc: 0xb } });
    router.addSink(port);
    const pub = publisher();
    for (let f = 0; f < 30; f++) {
      for (const p of pub.videoFrame(f === 0)) router.pushRtp('video', p);
      router.pushRtp('audio', pub.audioPacket());
      c.t += 33;
    }
    const lastVideo = port.of('video').at(-1)!;
    const lastAudio = port.of('audio').at(-1)!;
    c.t += 100; // 133 ms after the last packets arrived
    router.tick();
    const srs = port.rtcp.flatMap((b) => parseRtcpCompound(b) ?? []).filter((p): p is SenderReport => p.type === 'sr');
    assert.equal(srs.length, 2);
    const v = srs.find((s) => s.ssrc === 0xb)!;
    const a = srs.find((s) => s.ssrc === 0xa)!;
    assert.equal(v.packetCount, port.of('video').length);
    assert.equal(v.octetCount, port.of('video').reduce((n, p) => n + p.bytes.length - 12, 0));
    assert.equal(a.packetCount, 30);
    const ntp = ntpFromUnixMs(c.t);
    assert.equal(v.ntpSec, ntp.sec);
    // Without a source SR the mapping extrapolates from the last arrival: 133 ms later.
    assert.equal((v.rtpTimestamp - lastVideo.ts) >>> 0, 133 * 90);
    assert.equal((a.rtpTimestamp - lastAudio.ts) >>> 0, 133 * 48);
  } finally {
    router.close();
  }
});

test('the source’s SR sets the NTP↔RTP mapping of the sinks’ SRs (A/V sync survives re-timestamping)', () => {
  const c = clock();
  const router = new Router({ now: c.now, random: mulberry32(22) });
  try {
    router.setSource(new FakeSourcePort(), { audio: OPUS, video: H264 });
    const port = new FakeSinkPort('s', { audio: { ...OPUS, ssrc: 0xa }, video: { ...H264, ssrc: 0xb } });
    router.addSink(port);
    const pub = publisher();
    for (let f = 0; f < 10; f++) {
      for (const p of pub.videoFrame(f === 0)) router.pushRtp('video', p);
      router.pushRtp('audio', pub.audioPacket());
      c.t += 33;
    }
    // The publisher says: its video RTP ts 90000 and audio ts 48000 + 4800 (100 ms later) were captured
    // at the same NTP instant, i.e. its audio runs 100 ms ahead of the timestamps we extrapolated.
    const srcNtp = ntpFromUnixMs(1_600_000_000_000);
    router.pushRtcp(buildSenderReport({ ssrc: 0x1111, ...{ ntpSec: srcNtp.sec, ntpFrac: srcNtp.frac }, rtpTimestamp: 90000, packetCount: 1, octetCount: 1 }));
    router.pushRtcp(buildSenderReport({ ssrc: 0x2222, ...{ ntpSec: srcNtp.sec, ntpFrac: srcNtp.frac }, rtpTimestamp: 48000 + 4800, packetCount: 1, octetCount: 1 }));
    const firstVideo = port.of('video')[0]!;
    const firstAudio = port.of('audio')[0]!;
    c.t += 500;
    router.tick();
    const srs = port.rtcp.flatMap((b) => parseRtcpCompound(b) ?? []).filter((p): p is SenderReport => p.type === 'sr');
    const v = srs.find((s) => s.ssrc === 0xb)!;
    const a = srs.find((s) => s.ssrc === 0xa)!;
    // Both SRs share one NTP time; each RTP ts is the sink's mapping of the source's capture clock.
    const vMs = (((v.rtpTimestamp - firstVideo.ts) | 0) * 1000) / 90000;
    const aMs = (((a.rtpTimestamp - firstAudio.ts) | 0) * 1000) / 48000;
    assert.ok(Math.abs(vMs - aMs - -100) < 1, `audio's SR is 100 ms behind video's relative to their first packets (v ${vMs}, a ${aMs})`);
  } finally {
    router.close();
  }
});

test('the router sends the source an RR per RFC 3550: highest seq, cumulative and fraction lost, jitter, LSR/DLSR', () => {
  const c = clock();
  const router = new Router({ now: c.now, random: mulberry32(23) });
  try {
    const src = new FakeSourcePort();
    router.setSource(src, { video: H264 });
    const pub = publisher();
    const srcNtp = ntpFromUnixMs(1_650_000_000_000);
    let sent = 0;
    for (let f = 0; f < 20; f++) {
      const pkts = pub.videoFrame(f === 0);
      for (const p of pkts) {
        sent++;
        if (sent % 10 === 0) continue; // lose every 10th packet
        router.pushRtp('video', p);
      }
      c.t += 33;
      if (f === 10) router.pushRtcp(buildSenderReport({ ssrc: 0x1111, ntpSec: srcNtp.sec, ntpFrac: srcNtp.frac, rtpTimestamp: 0, packetCount: 0, octetCount: 0 }));
    }
    c.t += 250;
    src.rtcp.length = 0;
    router.tick();
    const rr = src.rtcp.flatMap((b) => parseRtcpCompound(b) ?? []).find((p): p is ReceiverReport => p.type === 'rr')!;
    assert.equal(rr.ssrc, router.ssrc);
    const b = rr.reports[0]!;
    assert.equal(b.ssrc, 0x1111);
    const highest = 65000 + sent - 1; // the last packet (sent % 10 !== 0) arrived
    assert.equal(b.extendedHighestSeq, sent % 10 === 0 ? highest - 1 : highest);
    const lost = Math.floor(sent / 10) - (sent % 10 === 0 ? 1 : 0);
    assert.equal(b.cumulativeLost, lost);
    assert.equal(b.fractionLost, Math.floor((lost * 256) / (b.extendedHighestSeq - 65000 + 1)));
    assert.equal(b.lsr, ntpMiddle32(1_650_000_000_000));
    assert.equal(b.dlsr, Math.round(((9 * 33 + 250) * 65536) / 1000), 'delay since the SR arrived, in 1/65536 s');
    assert.ok(b.jitter > 0, 'packets of one frame arrive at once: non-zero interarrival jitter');
  } finally {
    router.close();
  }
});

test('a sink’s RR feeds its stats: fraction lost, cumulative lost, jitter in ms, RTT from LSR/DLSR', () => {
  const c = clock();
  const router = new Router({ now: c.now, random: mulberry32(24) });
  try {
    router.setSource(new FakeSourcePort(), { video: H264 });
    const sink = router.addSink(new FakeSinkPort('s', { video: { ...H264, ssrc: 0xb } }));
    const srAt = c.t;
    c.t += 300; // the sink held our SR 250 ms, the network took 50 ms
    sink.handleRtcp(
      buildReceiverReport({
        ssrc: 0x77,
        reports: [{ ssrc: 0xb, fractionLost: 64, cumulativeLost: 12, extendedHighestSeq: 1, jitter: 900, lsr: ntpMiddle32(srAt), dlsr: Math.round(0.25 * 65536) }],
      }),
    );
    const st = sink.stats();
    assert.equal(st.fractionLost, 0.25);
    assert.equal(st.cumulativeLost, 12);
    assert.equal(st.jitter, 10);
    assert.ok(Math.abs(st.rttMs! - 50) < 1, `rtt ${st.rttMs}`);
  } finally {
    router.close();
  }
});

test('caches stay bounded: 100,000 packets through a router keep memory flat', () => {
  const c = clock();
  const router = new Router({ now: c.now, random: mulberry32(25) });
  try {
    router.setSource(new FakeSourcePort(), { audio: OPUS, video: H264 });
    const ports = [new FakeSinkPort('a', { audio: OPUS, video: H264 }, false), new FakeSinkPort('b', { audio: OPUS, video: H264 }, false)];
    for (const p of ports) router.addSink(p);
    const pub = publisher();
    pub.payloadBytes = 1100;
    let pushed = 0;
    let footprintAt25k = 0;
    let heapAt25k = 0;
    let maxRetained = 0;
    for (let f = 0; pushed < 100_000; f++) {
      for (const p of pub.videoFrame(f % 60 === 0)) {
        router.pushRtp('video', p);
        pushed++;
      }
      router.pushRtp('audio', pub.audioPacket());
      pushed++;
      c.t += 33;
      if (f % 30 === 0) router.tick();
      const fp = router.stats().cache;
      if (f % 100 === 0) maxRetained = Math.max(maxRetained, fp.video.retained + fp.video.keyframePackets);
      if (pushed >= 25_000 && footprintAt25k === 0) {
        footprintAt25k = fp.video.bytesAllocated + fp.audio.bytesAllocated;
        globalThis.gc?.();
        heapAt25k = process.memoryUsage().heapUsed;
      }
    }
    const cache = router.stats().cache;
    assert.ok(maxRetained <= 1024 + 4000, `video packets retained ${maxRetained}`);
    assert.ok(cache.audio.retained <= 256);
    assert.equal(cache.video.bytesAllocated + cache.audio.bytesAllocated, footprintAt25k, 'no buffer allocated after warm-up');
    assert.ok(cache.video.bytesAllocated <= (1024 + 4000 + 64) * 1500);
    globalThis.gc?.();
    const growth = process.memoryUsage().heapUsed - heapAt25k;
    assert.ok(growth < 16 * 1024 * 1024, `heap grew ${growth} bytes over 75,000 packets`);
    assert.ok(ports.every((p) => p.count > 90_000));
  } finally {
    router.close();
  }
});
