import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  RtpInfo,
  buildRtpPacket,
  findRtpExtension,
  isRtcpPacket,
  listRtpExtensions,
  parseRtpHeader,
  rewriteRtpExtensions,
  rtpSequence,
  rtpSsrc,
  rtpTimestamp,
  setRtpMarker,
  setRtpPayloadType,
  setRtpSequence,
  setRtpSsrc,
  setRtpTimestamp,
} from '../src/codec/index.js';

const hex = (s: string) => Uint8Array.from(s.replace(/\s+/g, '').match(/../g) ?? [], (x) => parseInt(x, 16));

test('parseRtpHeader reads a hand-made minimal packet (v2, PT 96, marker, seq, ts, ssrc)', () => {
  const p = hex('80e0 1234 deadbeef 0a0b0c0d 01020304');
  const i = parseRtpHeader(p)!;
  assert.equal(i.version, 2);
  assert.equal(i.marker, true);
  assert.equal(i.payloadType, 96);
  assert.equal(i.sequence, 0x1234);
  assert.equal(i.timestamp, 0xdeadbeef);
  assert.equal(i.ssrc, 0x0a0b0c0d);
  assert.equal(i.payloadOffset, 12);
  assert.equal(i.payloadLength, 4);
  assert.equal(i.extOffset, -1);
});

test('parseRtpHeader handles CSRCs, a one-byte extension block and padding', () => {
  // CC=2, X=1, P=1; 0xBEDE block: id 1 (2 bytes), id 2 (1 byte), padded to 8 bytes; 3 bytes of padding.
  const pkt = buildRtpPacket({
    payloadType: 111,
    sequence: 1,
    timestamp: 16,
    ssrc: 0x11111111,
    csrcs: [0x22222222, 0x33333333],
    extensions: [
      { id: 1, data: hex('aabb') },
      { id: 2, data: hex('cc') },
    ],
    payload: hex('ffee'),
    padding: 3,
  });
  const i = parseRtpHeader(pkt)!;
  assert.equal(i.csrcCount, 2);
  assert.equal(i.extProfile, 0xbede);
  assert.equal(i.extLength, 8);
  assert.equal(i.headerLength, 12 + 8 + 4 + 8);
  assert.equal(i.paddingLength, 3);
  assert.equal(i.payloadLength, 2);
  assert.deepEqual([...pkt.subarray(i.payloadOffset, i.payloadOffset + i.payloadLength)], [0xff, 0xee]);
  const exts = listRtpExtensions(pkt, i);
  assert.deepEqual(
    exts.map((e) => [e.id, [...pkt.subarray(e.offset, e.offset + e.length)]]),
    [
      [1, [0xaa, 0xbb]],
      [2, [0xcc]],
    ],
  );
  assert.equal(findRtpExtension(pkt, i, 2), exts[1]!.offset);
  assert.equal(findRtpExtension(pkt, i, 3), -1);
});

test('parseRtpHeader reads RFC 8285 two-byte extension elements (0x100x profile, zero-length element)', () => {
  const pkt = buildRtpPacket({
    payloadType: 96,
    sequence: 7,
    timestamp: 9,
    ssrc: 5,
    twoByte: true,
    extensions: [
      { id: 200, data: hex('010203') },
      { id: 17, data: new Uint8Array(0) },
    ],
    payload: hex('99'),
  });
  const i = parseRtpHeader(pkt)!;
  assert.equal(i.extProfile, 0x1000);
  assert.deepEqual(
    listRtpExtensions(pkt, i).map((e) => [e.id, e.length]),
    [
      [200, 3],
      [17, 0],
    ],
  );
});

test('parseRtpHeader refuses bad versions, truncated headers, extension and padding overruns', () => {
  const cases: Array<[string, string]> = [
    ['too short', '80 60 0001 00000001 000000'],
    ['version 1', '40 60 0001 00000001 00000001'],
    ['CSRC past end', '83 60 0001 00000001 00000001 00000002'],
    ['ext header past end', '90 60 0001 00000001 00000001 bede'],
    ['ext length past end', '90 60 0001 00000001 00000001 bede 0002 10ff0000'],
    ['padding longer than packet', 'a0 60 0001 00000001 00000001 aa 20'],
    ['padding zero', 'a0 60 0001 00000001 00000001 aa 00'],
  ];
  for (const [name, h] of cases) assert.equal(parseRtpHeader(hex(h)), undefined, name);
  assert.equal(parseRtpHeader(new Uint8Array(0)), undefined);
});

test('a padding-only packet has payloadLength 0', () => {
  const pkt = buildRtpPacket({ payloadType: 96, sequence: 1, timestamp: 1, ssrc: 1, padding: 200 });
  const i = parseRtpHeader(pkt)!;
  assert.equal(i.payloadLength, 0);
  assert.equal(i.paddingLength, 200);
});

test('in-place writers change only their field and wrap values to their width', () => {
  const pkt = buildRtpPacket({ payloadType: 96, sequence: 1, timestamp: 2, ssrc: 3, marker: true, payload: hex('0102') });
  setRtpSequence(pkt, 0x1ffff);
  setRtpTimestamp(pkt, 2 ** 32 + 5);
  setRtpSsrc(pkt, 0xfedcba98);
  setRtpPayloadType(pkt, 102);
  const i = parseRtpHeader(pkt)!;
  assert.equal(i.sequence, 0xffff);
  assert.equal(i.timestamp, 5);
  assert.equal(i.ssrc, 0xfedcba98);
  assert.equal(i.payloadType, 102);
  assert.equal(i.marker, true, 'setting PT keeps the marker');
  setRtpMarker(pkt, false);
  assert.equal(parseRtpHeader(pkt)!.marker, false);
  assert.equal(rtpSequence(pkt), 0xffff);
  assert.equal(rtpTimestamp(pkt), 5);
  assert.equal(rtpSsrc(pkt), 0xfedcba98);
  assert.deepEqual([...pkt.subarray(12)], [1, 2]);
});

test('rewriteRtpExtensions remaps ids in place and keeps the payload intact', () => {
  const pkt = buildRtpPacket({ payloadType: 96, sequence: 1, timestamp: 1, ssrc: 1, extensions: [{ id: 3, data: hex('0a0b0c') }], payload: hex('deadbeef') });
  const i = parseRtpHeader(pkt)!;
  const map = new Uint8Array(256);
  map[3] = 9;
  const n = rewriteRtpExtensions(pkt, i, map);
  assert.equal(n, pkt.length);
  const j = parseRtpHeader(pkt, n)!;
  assert.deepEqual(listRtpExtensions(pkt, j).map((e) => [e.id, [...pkt.subarray(e.offset, e.offset + e.length)]]), [[9, [0x0a, 0x0b, 0x0c]]]);
  assert.deepEqual([...pkt.subarray(j.payloadOffset, j.payloadOffset + j.payloadLength)], [0xde, 0xad, 0xbe, 0xef]);
});

test('rewriteRtpExtensions strips what the sink did not negotiate, shrinks the block and moves the payload', () => {
  const pkt = buildRtpPacket({
    payloadType: 96,
    sequence: 1,
    timestamp: 1,
    ssrc: 1,
    extensions: [
      { id: 1, data: hex('11223344') },
      { id: 2, data: hex('55') },
      { id: 3, data: hex('6677') },
    ],
    payload: hex('a1a2a3'),
    padding: 2,
  });
  const i = parseRtpHeader(pkt)!;
  const map = new Uint8Array(256);
  map[2] = 4; // keep only id 2, as id 4
  const n = rewriteRtpExtensions(pkt, i, map);
  const j = parseRtpHeader(pkt, n)!;
  assert.ok(j, 'still a valid packet');
  assert.equal(j.extLength, 4);
  assert.deepEqual(listRtpExtensions(pkt, j).map((e) => e.id), [4]);
  assert.deepEqual([...pkt.subarray(j.payloadOffset, j.payloadOffset + j.payloadLength)], [0xa1, 0xa2, 0xa3]);
  assert.equal(j.paddingLength, 2);
  assert.equal(n, 12 + 4 + 4 + 3 + 2);
});

test('rewriteRtpExtensions removes the whole block and clears X when nothing is kept', () => {
  const pkt = buildRtpPacket({ payloadType: 96, sequence: 1, timestamp: 1, ssrc: 1, extensions: [{ id: 5, data: hex('01') }], payload: hex('0708') });
  const i = parseRtpHeader(pkt)!;
  const n = rewriteRtpExtensions(pkt, i, new Uint8Array(256));
  const j = parseRtpHeader(pkt, n)!;
  assert.equal(j.extension, false);
  assert.equal(n, 14);
  assert.deepEqual([...pkt.subarray(12, n)], [7, 8]);
});

test('rewriteRtpExtensions strips one-byte elements whose new id does not fit (> 14)', () => {
  const pkt = buildRtpPacket({ payloadType: 96, sequence: 1, timestamp: 1, ssrc: 1, extensions: [{ id: 1, data: hex('01') }, { id: 2, data: hex('02') }], payload: hex('aa') });
  const i = parseRtpHeader(pkt)!;
  const map = new Uint8Array(256);
  map[1] = 20;
  map[2] = 2;
  const n = rewriteRtpExtensions(pkt, i, map);
  assert.deepEqual(listRtpExtensions(pkt, parseRtpHeader(pkt, n)!).map((e) => e.id), [2]);
});

test('isRtcpPacket demultiplexes RTCP (PT 200..206) from RTP', () => {
  assert.equal(isRtcpPacket(hex('80c8 0006')), true);
  assert.equal(isRtcpPacket(hex('8060 0001')), false);
  assert.equal(isRtcpPacket(new Uint8Array(1)), false);
});

test('a reused RtpInfo is fully overwritten by the next parse', () => {
  const info = new RtpInfo();
  parseRtpHeader(buildRtpPacket({ payloadType: 1, sequence: 1, timestamp: 1, ssrc: 1, extensions: [{ id: 1, data: hex('01') }] }), undefined, info);
  parseRtpHeader(buildRtpPacket({ payloadType: 2, sequence: 2, timestamp: 2, ssrc: 2 }), undefined, info);
  assert.equal(info.extOffset, -1);
  assert.equal(info.payloadType, 2);
});
