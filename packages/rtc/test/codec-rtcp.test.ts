import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  RtcpCursor,
  buildBye,
  buildFir,
  buildNack,
  buildPli,
  buildReceiverReport,
  buildRemb,
  buildSenderReport,
  concatRtcp,
  nextRtcpPacket,
  ntpFromUnixMs,
  ntpMiddle32,
  parseRtcpCompound,
  unixMsFromNtp,
} from '../src/codec/index.js';

const hex = (s: string) => Uint8Array.from(s.replace(/\s+/g, '').match(/../g) ?? [], (x) => parseInt(x, 16));

test('parses a hand-made SR with one report block (RFC 3550 §6.4.1 layout)', () => {
  const sr = hex(`
    81 c8 000c  00001234
    e0000000 80000000  00010000  0000000a 000003e8
    0000abcd  05 fffffe  0001ffff  00000020  12345678 00008000`);
  const [p] = parseRtcpCompound(sr)!;
  assert.deepEqual(p, {
    type: 'sr',
    ssrc: 0x1234,
    ntpSec: 0xe0000000,
    ntpFrac: 0x80000000,
    rtpTimestamp: 0x10000,
    packetCount: 10,
    octetCount: 1000,
    reports: [{ ssrc: 0xabcd, fractionLost: 5, cumulativeLost: -2, extendedHighestSeq: 0x1ffff, jitter: 32, lsr: 0x12345678, dlsr: 0x8000 }],
  });
});

test('builds SR and RR that parse back to the same fields', () => {
  const block = { ssrc: 7, fractionLost: 64, cumulativeLost: 1234, extendedHighestSeq: 70000, jitter: 90, lsr: 0xdeadbeef, dlsr: 65536 };
  const sr = buildSenderReport({ ssrc: 1, ntpSec: 3900000000, ntpFrac: 0x40000000, rtpTimestamp: 4294967295, packetCount: 100, octetCount: 99999, reports: [block] });
  const rr = buildReceiverReport({ ssrc: 2, reports: [block, { ...block, ssrc: 8, cumulativeLost: -5 }] });
  const parsed = parseRtcpCompound(concatRtcp([sr, rr]))!;
  assert.equal(parsed.length, 2);
  assert.deepEqual(parsed[0], { type: 'sr', ssrc: 1, ntpSec: 3900000000, ntpFrac: 0x40000000, rtpTimestamp: 4294967295, packetCount: 100, octetCount: 99999, reports: [block] });
  assert.deepEqual(parsed[1], { type: 'rr', ssrc: 2, reports: [block, { ...block, ssrc: 8, cumulativeLost: -5 }] });
});

test('walks a compound RR + SDES + BYE and skips SDES content', () => {
  const sdes = hex('81ca0003 00000002 0103616263 000000'); // CNAME "abc", end, padding
  const pkt = concatRtcp([buildReceiverReport({ ssrc: 2, reports: [] }), sdes, buildBye([2, 3])]);
  const parsed = parseRtcpCompound(pkt)!;
  assert.deepEqual(parsed.map((p) => p.type), ['rr', 'sdes', 'bye']);
  assert.deepEqual(parsed[2], { type: 'bye', ssrcs: [2, 3] });
});

test('generic NACK: PID + BLP expand to the lost list (RFC 4585 §6.2.1)', () => {
  // PID 100, BLP 0b1000_0000_0000_0101 → 100, 101, 103, 116
  const nack = hex('81cd0003 00000001 00000002 0064 8005');
  assert.deepEqual(parseRtcpCompound(nack)![0], { type: 'nack', senderSsrc: 1, mediaSsrc: 2, lost: [100, 101, 103, 116] });
});

test('buildNack packs sequence numbers into PID+BLP pairs, across the 16-bit wrap', () => {
  const seqs = [65534, 65535, 0, 1, 40];
  const pkt = buildNack(9, 10, seqs);
  const p = parseRtcpCompound(pkt)![0]!;
  assert.equal(p.type, 'nack');
  if (p.type === 'nack') assert.deepEqual([...p.lost].sort((a, b) => a - b), [0, 1, 40, 65534, 65535]);
  assert.equal(pkt.length, 12 + 8, 'two FCI entries: 65534 (+3 in BLP) and 40');
});

test('PLI, FIR and REMB round-trip', () => {
  assert.deepEqual(parseRtcpCompound(buildPli(1, 2))![0], { type: 'pli', senderSsrc: 1, mediaSsrc: 2 });
  assert.deepEqual(parseRtcpCompound(buildFir(1, 0xabcdef01, 7))![0], { type: 'fir', senderSsrc: 1, entries: [{ ssrc: 0xabcdef01, seq: 7 }] });
  const remb = parseRtcpCompound(buildRemb(1, 2_500_000, [5, 6]))![0]!;
  assert.equal(remb.type, 'remb');
  if (remb.type === 'remb') {
    assert.ok(Math.abs(remb.bitrate - 2_500_000) / 2_500_000 < 0.001);
    assert.deepEqual(remb.ssrcs, [5, 6]);
  }
});

test('parses a REMB packet from the draft-alvestrand-rmcat-remb example layout', () => {
  // num SSRC 1, exp 3, mantissa 0x3e800 → 256000 * 8 = 2048000 bps
  const pkt = hex('8fce0005 00000001 00000000 52454d42 010fe800 00001234');
  const p = parseRtcpCompound(pkt)![0]!;
  assert.deepEqual(p, { type: 'remb', senderSsrc: 1, bitrate: 0x3e800 * 8, ssrcs: [0x1234] });
});

test('a truncated or invalid compound stops at the bad packet instead of throwing', () => {
  assert.equal(parseRtcpCompound(hex('40c80000')), undefined, 'version 1');
  assert.equal(parseRtcpCompound(new Uint8Array(2)), undefined);
  const good = buildPli(1, 2);
  const bad = hex('81c9 00ff 00000001');
  assert.deepEqual(parseRtcpCompound(concatRtcp([good, bad]))!.map((p) => p.type), ['pli']);
  // An SR whose count claims more blocks than the length holds is rejected.
  assert.deepEqual(parseRtcpCompound(hex('82c80006 00000001 00000000 00000000 00000000 00000000 00000000')), []);
  const cur = new RtcpCursor();
  assert.equal(nextRtcpPacket(hex('81c80001'), 4, cur), false);
});

test('NTP conversions: Unix ms ↔ NTP and the LSR middle 32 bits', () => {
  const ms = 1_700_000_000_250;
  const { sec, frac } = ntpFromUnixMs(ms);
  assert.equal(sec, 1_700_000_000 + 2208988800);
  assert.equal(frac, 0x40000000);
  assert.ok(Math.abs(unixMsFromNtp(sec, frac) - ms) < 0.001);
  assert.equal(ntpMiddle32(ms), (((sec & 0xffff) << 16) | 0x4000) >>> 0);
});
