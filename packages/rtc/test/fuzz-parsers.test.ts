/**
 * Seeded fuzzing of every parser of untrusted bytes and of the router's packet entry points:
 * random bytes and mutations of valid packets must never throw, and results stay within bounds.
 * Fixed seeds and bounded iterations keep it reproducible and quick.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  H264PayloadInfo,
  NalBitReader,
  Router,
  RtcpCursor,
  RtpExtCursor,
  RtpInfo,
  analyzeH264Payload,
  buildFir,
  buildNack,
  buildPli,
  buildReceiverReport,
  buildRemb,
  buildRtpPacket,
  buildSenderReport,
  concatRtcp,
  h264SliceType,
  h264StreamInspector,
  nextRtcpPacket,
  nextRtpExtension,
  parseH264Sps,
  parseRtcpCompound,
  parseRtcpPacket,
  parseRtpHeader,
  rewriteRtpExtensions,
  startRtpExtensions,
} from '../src/core/index.js';
import { FakeSinkPort, FakeSourcePort, H264, OPUS, SPS_CB_640x480, SyntheticPublisher, mulberry32 } from '../src/core/testing.js';

const N = 20_000;

function mutator(seed: number) {
  const rnd = mulberry32(seed);
  const int = (n: number) => Math.floor(rnd() * n);
  return {
    rnd,
    int,
    random(max = 64): Uint8Array {
      const b = new Uint8Array(int(max + 1));
      for (let i = 0; i < b.length; i++) b[i] = int(256);
      return b;
    },
    mutate(src: Uint8Array): Uint8Array {
      let b = src.slice();
      const ops = 1 + int(4);
      for (let k = 0; k < ops; k++) {
        const op = int(5);
        if (op === 0 && b.length) b[int(b.length)] = int(256);
        else if (op === 1 && b.length) b[int(b.length)]! ^= 1 << int(8);
        else if (op === 2) b = b.slice(0, int(b.length + 1));
        else if (op === 3) {
          const extra = new Uint8Array(int(8));
          for (let i = 0; i < extra.length; i++) extra[i] = int(256);
          const c = new Uint8Array(b.length + extra.length);
          c.set(b);
          c.set(extra, b.length);
          b = c;
        } else if (b.length > 4) {
          const i = int(b.length - 1);
          b[i] = 0xff;
          b[i + 1] = 0xff;
        }
      }
      return b;
    },
  };
}

/** Reads beyond the end of a typed array return undefined in JS; guard that none of our results are NaN / out of range. */
function finite(n: number): boolean {
  return Number.isFinite(n);
}

test('fuzz: RTP header parser, extension iteration and in-place rewrite never throw and stay within the buffer', () => {
  const m = mutator(0xc0ffee);
  const seeds = [
    buildRtpPacket({ payloadType: 96, sequence: 1, timestamp: 2, ssrc: 3, payload: new Uint8Array(20) }),
    buildRtpPacket({ payloadType: 111, sequence: 9, timestamp: 9, ssrc: 9, csrcs: [1, 2], extensions: [{ id: 1, data: Uint8Array.of(1, 2) }, { id: 3, data: Uint8Array.of(3) }], payload: new Uint8Array(8), padding: 3 }),
    buildRtpPacket({ payloadType: 96, sequence: 1, timestamp: 1, ssrc: 1, twoByte: true, extensions: [{ id: 100, data: new Uint8Array(5) }, { id: 2, data: new Uint8Array(0) }], payload: new Uint8Array(4) }),
  ];
  const info = new RtpInfo();
  const cur = new RtpExtCursor();
  const map = new Uint8Array(256);
  for (let i = 0; i < 256; i++) map[i] = i % 3 === 0 ? 0 : (i * 7) & 0xff;
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    const b = i % 3 === 0 ? m.random(80) : m.mutate(seeds[i % seeds.length]!);
    const r = parseRtpHeader(b, b.length, info);
    if (!r) continue;
    assert.ok(r.payloadOffset >= 12 && r.payloadOffset + r.payloadLength + r.paddingLength === b.length);
    assert.ok(r.payloadLength >= 0);
    if (startRtpExtensions(r, cur)) {
      let n = 0;
      while (nextRtpExtension(b, cur) && n++ < 300) assert.ok(cur.offset >= 0 && cur.offset + cur.length <= b.length);
    }
    const len = rewriteRtpExtensions(b, r, map);
    assert.ok(len <= b.length && len >= 12);
    const again = parseRtpHeader(b, len);
    assert.ok(again, 'a rewritten valid packet is still valid');
    assert.equal(again.payloadLength, r.payloadLength);
  }
  assert.ok(performance.now() - t0 < 5000);
});

test('fuzz: RTCP walker and parsers never throw; lists are bounded by the packet size', () => {
  const m = mutator(0xbeef);
  const seeds = [
    concatRtcp([buildSenderReport({ ssrc: 1, ntpSec: 2, ntpFrac: 3, rtpTimestamp: 4, packetCount: 5, octetCount: 6, reports: [{ ssrc: 1, fractionLost: 1, cumulativeLost: 1, extendedHighestSeq: 1, jitter: 1, lsr: 1, dlsr: 1 }] }), buildPli(1, 2)]),
    concatRtcp([buildReceiverReport({ ssrc: 1, reports: [] }), buildNack(1, 2, [1, 2, 3, 40, 1000]), buildFir(1, 2, 3)]),
    buildRemb(1, 1e6, [1, 2, 3]),
  ];
  const cur = new RtcpCursor();
  for (let i = 0; i < N; i++) {
    const b = i % 3 === 0 ? m.random(120) : m.mutate(seeds[i % seeds.length]!);
    const all = parseRtcpCompound(b);
    for (const p of all ?? []) {
      if (p.type === 'nack') assert.ok(p.lost.length <= (b.length / 4) * 17);
      if (p.type === 'sr' || p.type === 'rr') assert.ok(p.reports.length <= 31 && p.reports.every((r) => finite(r.cumulativeLost) && finite(r.lsr)));
      if (p.type === 'remb') assert.ok(finite(p.bitrate) && p.ssrcs.length <= 255);
    }
    cur.pos = 0;
    let n = 0;
    while (nextRtcpPacket(b, b.length, cur)) {
      assert.ok(cur.offset + cur.length <= b.length);
      parseRtcpPacket(b, cur.offset, cur.length);
      if (++n > 1000) break;
    }
  }
});

test('fuzz: H.264 payload analysis, SPS, slice header and the bit reader never throw', () => {
  const m = mutator(0x264);
  const stap = Uint8Array.of(0x78, 0, SPS_CB_640x480.length, ...SPS_CB_640x480, 0, 4, 0x68, 0xce, 0x3c, 0x80, 0, 3, 0x65, 0x88, 0x84);
  const seeds = [SPS_CB_640x480, stap, Uint8Array.of(0x7c, 0x85, 0x88, 0x84, 0x21), Uint8Array.of(0x41, 0x9a, 0x02, 0x03), Uint8Array.of(0x67, 0x64, 0, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x6c, 0x80, 0, 0, 3, 0, 0x80, 0, 0, 0x1e, 0x07, 0x8c, 0x18, 0xcb)];
  const info = new H264PayloadInfo();
  const insp = h264StreamInspector();
  for (let i = 0; i < N; i++) {
    const b = i % 3 === 0 ? m.random(60) : m.mutate(seeds[i % seeds.length]!);
    if (analyzeH264Payload(b, 0, b.length, info)) {
      if (info.sliceOffset >= 0) {
        assert.ok(info.sliceEnd <= b.length);
        const t = h264SliceType(b, info.sliceOffset, info.sliceEnd);
        assert.ok(t >= -1 && t <= 4);
      }
      if (info.spsOffset >= 0) assert.ok(info.spsEnd <= b.length);
    }
    const sps = parseH264Sps(b);
    if (sps) {
      assert.ok(sps.width > 0 && sps.width <= 16384 && sps.height > 0 && sps.height <= 32768);
      assert.ok(finite(sps.width) && finite(sps.height));
    }
    insp.push(b, 0, b.length, i * 3000);
    const r = new NalBitReader(b, 0, b.length);
    for (let k = 0; k < 20; k++) assert.ok(finite(r.ue()) && finite(r.se()));
  }
  const rep = insp.report();
  assert.ok(finite(rep.bitrateBps) && rep.frames > 0);
});

test('fuzz: router pushRtp / pushRtcp / sink.handleRtcp survive random and mutated input and keep serving sinks', () => {
  const m = mutator(0x5eed);
  let t = 1_700_000_000_000;
  const router = new Router({ now: () => t, random: mulberry32(99) });
  try {
    router.setSource(new FakeSourcePort(), { audio: OPUS, video: { ...H264, extensions: { 'urn:x': 1 }, rtcpFeedback: ['nack', 'nack pli'] } });
    const port = new FakeSinkPort('s', { audio: OPUS, video: { ...H264, ssrc: 5, extensions: { 'urn:x': 3 } } });
    const sink = router.addSink(port);
    const pub = new SyntheticPublisher({ videoSsrc: 1, audioSsrc: 2, videoSeq: 1, audioSeq: 1, videoTs: 1, audioTs: 1 });
    pub.extensions = [{ id: 1, data: Uint8Array.of(7) }];
    const valid: Uint8Array[] = [];
    for (let f = 0; f < 30; f++) valid.push(...pub.videoFrame(f % 10 === 0));
    // RTX (payload type 97): OSN + the original payload, on its own SSRC.
    for (const v of valid.slice(0, 10)) {
      const rtx = new Uint8Array(v.length + 2);
      rtx.set(v.subarray(0, 16));
      rtx.set(v.subarray(14), 16);
      rtx[1] = (rtx[1]! & 0x80) | 97;
      rtx[11] = 0x77;
      valid.push(rtx);
    }
    const rtcpSeeds = [buildNack(1, 5, [1, 2, 3]), buildPli(1, 5), buildReceiverReport({ ssrc: 1, reports: [{ ssrc: 5, fractionLost: 1, cumulativeLost: 2, extendedHighestSeq: 3, jitter: 4, lsr: 5, dlsr: 6 }] })];
    for (let i = 0; i < N; i++) {
      t += 1;
      const k = i % 5;
      if (k === 0) router.pushRtp('video', m.random(100));
      else if (k === 1) router.pushRtp(i & 8 ? 'audio' : 'video', m.mutate(valid[i % valid.length]!));
      else if (k === 2) router.pushRtcp(m.mutate(rtcpSeeds[i % 3]!));
      else if (k === 3) sink.handleRtcp(i & 16 ? m.random(64) : m.mutate(rtcpSeeds[i % 3]!));
      else if (i & 32) router.pushRtp('video', valid[(i * 7) % valid.length]!); // reordered, duplicated, RTX
      else router.pushRtp('video', valid[i % valid.length]!);
      if (i % 1000 === 0) router.tick();
      if (i % 97 === 0) router.pumpReplays(t);
    }
    // Everything the sink got is a valid RTP packet with its SSRC (FakeSinkPort throws otherwise).
    assert.ok(port.of('video').length > 0);
    assert.ok(port.of('video').every((p) => p.ssrc === 5));
    const st = router.stats();
    assert.ok(st.ingress.video.malformed > 0 || st.ingress.video.unknownPayloadType > 0);
  } finally {
    router.close();
  }
});
