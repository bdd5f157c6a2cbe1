import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  H264PayloadInfo,
  NAL_IDR,
  NAL_PPS,
  NAL_SPS,
  SLICE_B,
  SLICE_I,
  SLICE_P,
  analyzeH264Payload,
  checkIvsRules,
  h264NalTypes,
  h264SliceType,
  h264StreamInspector,
  isH264KeyframeStart,
  parseH264Sps,
  type H264StreamReport,
} from '../src/codec/index.js';

const hex = (s: string) => Uint8Array.from(s.replace(/\s+/g, '').match(/../g) ?? [], (x) => parseInt(x, 16));

/**
 * SPS corpus. Each entry is a real encoder's SPS NAL unit (header byte 0x67 included).
 * - openh264-*: OpenH264-style Constrained Baseline SPS (the encoder Chrome/Firefox use for software
 *   H.264 and OBS's WHIP default 42e01f family), from a public project's extradata table (320x180, 640x360).
 * - x264-cb-*: x264 Constrained Baseline (`-profile baseline`), 720x404 from videojs/mux.js test-sps.js,
 *   1920x1080 from bluenviron/mediacommon sps_test.go.
 * - x264/nvenc/hikvision High and Main ones: bluenviron/mediacommon pkg/codecs/h264/sps_test.go, which
 *   states the resolution and frame rate of each.
 */
const CORPUS: Array<{ name: string; hex: string; profile: string; profileIdc: number; level: string; width: number; height: number; reorder: number | undefined; fps?: number; frameMbsOnly?: boolean }> = [
  { name: 'openh264-320x180', hex: '6742c01f8c68141979e01e1108d4', profile: 'Constrained Baseline', profileIdc: 66, level: '3.1', width: 320, height: 180, reorder: 0 },
  { name: 'openh264-640x360', hex: '6742c01f8c680a02f79601e1108d40', profile: 'Constrained Baseline', profileIdc: 66, level: '3.1', width: 640, height: 360, reorder: 0 },
  { name: 'x264-cb-720x404', hex: '6742c01ed900b435f9e10000030001000003003c0f162e48', profile: 'Constrained Baseline', profileIdc: 66, level: '3.0', width: 720, height: 404, reorder: 0, fps: 30 },
  { name: 'x264-cb-1920x1080', hex: '6742c028d9007802 27e5840000030004 00000300f03c60c920'.replace(/ /g, ''), profile: 'Constrained Baseline', profileIdc: 66, level: '4.0', width: 1920, height: 1080, reorder: 0, fps: 30 },
  { name: 'x264-high-352x288', hex: '6764000cac3b50b04b420000030002000003003d08', profile: 'High', profileIdc: 100, level: '1.2', width: 352, height: 288, reorder: undefined, fps: 15 },
  { name: 'x264-high-1280x720-bframes', hex: '6764001facd9405005bb016c8000000300800000 1e078c18cb'.replace(/ /g, ''), profile: 'High', profileIdc: 100, level: '3.1', width: 1280, height: 720, reorder: 2, fps: 30 },
  { name: 'nvenc-high-1920x1080', hex: '67640028acd94078 0227e58400000300 0400000300f03c60 c658'.replace(/ /g, ''), profile: 'High', profileIdc: 100, level: '4.0', width: 1920, height: 1080, reorder: 2, fps: 30 },
  { name: 'high-scaling-matrix-2560x1440', hex: Buffer.from([103, 100, 0, 50, 173, 132, 1, 12, 32, 8, 97, 0, 67, 8, 2, 24, 64, 16, 194, 0, 132, 59, 80, 20, 0, 90, 211, 112, 16, 16, 20, 0, 0, 3, 0, 4, 0, 0, 3, 0, 162, 16]).toString('hex'), profile: 'High', profileIdc: 100, level: '5.0', width: 2560, height: 1440, reorder: undefined, fps: 20 },
  { name: 'nvenc-high-hrd-1920x1080', hex: Buffer.from([103, 100, 0, 42, 172, 44, 172, 7, 128, 34, 126, 92, 5, 168, 8, 8, 10, 0, 0, 7, 208, 0, 3, 169, 129, 192, 0, 0, 76, 75, 0, 0, 38, 37, 173, 222, 92, 20]).toString('hex'), profile: 'High', profileIdc: 100, level: '4.2', width: 1920, height: 1080, reorder: undefined, fps: 60 },
  { name: 'hikvision-main-hrd-1920x1080', hex: Buffer.from([103, 77, 0, 41, 154, 100, 3, 192, 17, 63, 46, 2, 220, 4, 4, 5, 0, 0, 3, 3, 232, 0, 0, 195, 80, 232, 96, 0, 186, 180, 0, 2, 234, 196, 187, 203, 141, 12, 0, 23, 86, 128, 0, 93, 88, 151, 121, 112, 160]).toString('hex'), profile: 'Main', profileIdc: 77, level: '4.1', width: 1920, height: 1080, reorder: undefined, fps: 25 },
  { name: 'main-interlaced-1920x1080', hex: '674d4028ab603c0223ef01100000030010000003032e9400356406b285080ee2c522c0', profile: 'Main', profileIdc: 77, level: '4.0', width: 1920, height: 1080, reorder: 1, fps: 25, frameMbsOnly: false },
];

for (const c of CORPUS) {
  test(`SPS corpus: ${c.name} → ${c.profile} ${c.level} ${c.width}x${c.height}, reorder ${c.reorder}`, () => {
    const sps = parseH264Sps(hex(c.hex));
    assert.ok(sps, 'parses');
    assert.equal(sps.profileName, c.profile);
    assert.equal(sps.profileIdc, c.profileIdc);
    assert.equal(sps.level, c.level);
    assert.equal(sps.width, c.width);
    assert.equal(sps.height, c.height);
    assert.equal(sps.maxNumReorderFrames, c.reorder);
    if (c.fps !== undefined) assert.equal(sps.frameRate, c.fps);
    if (c.frameMbsOnly !== undefined) assert.equal(sps.frameMbsOnly, c.frameMbsOnly);
  });
}

test('SPS constraint flags: 42e01f is Constrained Baseline with set0..2, 42001f plain Baseline', () => {
  const cb = parseH264Sps(hex('6742e01f8c68141979e01e1108d4'))!;
  assert.equal(cb.constraintFlags & 7, 7);
  assert.equal(cb.profileName, 'Constrained Baseline');
  const base = parseH264Sps(hex('6742001f8c68141979e01e1108d4'))!;
  assert.equal(base.profileName, 'Baseline');
});

test('parseH264Sps refuses non-SPS NALs, truncation and absurd values', () => {
  assert.equal(parseH264Sps(hex('68ce3c80')), undefined, 'PPS');
  assert.equal(parseH264Sps(hex('6742c0')), undefined, 'truncated before level');
  assert.equal(parseH264Sps(hex('6742c01f')), undefined, 'no seq_parameter_set_id');
  assert.equal(parseH264Sps(hex('6742c01f8c')), undefined, 'stops inside the fields we need');
  assert.equal(parseH264Sps(hex('e742c01f8c68141979e01e1108d4')), undefined, 'forbidden bit');
  assert.equal(parseH264Sps(new Uint8Array(0)), undefined);
});

test('slice headers: first_mb_in_slice and slice_type (I, P, B) are read through emulation prevention', () => {
  // ue(0)=1, ue(7)=0001000 → bits 1 0001000 → 0x88 : first_mb 0, slice_type 7 (I)
  assert.equal(h264SliceType(hex('88'), 0, 1), SLICE_I);
  // ue(0), ue(5)=00110 → 1 00110 00 → 0x98 : P
  assert.equal(h264SliceType(hex('98'), 0, 1), SLICE_P);
  // ue(0), ue(6)=00111 → 1 00111 00 → 0x9c : B
  assert.equal(h264SliceType(hex('9c'), 0, 1), SLICE_B);
  // ue(1)=010 slice_type ue(1)=010 → 010 010 00 → 0x48 : B (type 1)
  assert.equal(h264SliceType(hex('48'), 0, 1), SLICE_B);
  const mb: number[] = [];
  // first_mb_in_slice = 2^22 - 1 (22 leading zeros) puts 00 00 02 and 00 00 00 in the RBSP
  // (00 00 02 00 00 00 80), so the NAL carries two emulation-prevention bytes: 00 00 03 02 00 00 03 00 80.
  const nal = hex('000003 02 000003 00 80');
  assert.equal(h264SliceType(nal, 0, nal.length, mb), SLICE_I);
  assert.equal(mb[0], 2 ** 22 - 1);
  assert.equal(h264SliceType(hex(''), 0, 0), -1);
  assert.equal(h264SliceType(hex('00000000'), 0, 4), -1, 'runaway exp-Golomb');
});

test('payload analysis: single NAL, STAP-A (SPS+PPS+IDR), FU-A start / middle / end', () => {
  const info = new H264PayloadInfo();
  assert.ok(analyzeH264Payload(hex('6588840021'), 0, 5, info));
  assert.equal(info.idrStart, true);
  assert.deepEqual(h264NalTypes(hex('6588840021')), [NAL_IDR]);
  // STAP-A: [SPS(4 bytes)] [PPS(4 bytes)] [IDR(2 bytes)]
  const stap = hex('78 0004 6742c01f 0004 68ce3c80 0002 6588');
  assert.ok(analyzeH264Payload(stap, 0, stap.length, info));
  assert.deepEqual(h264NalTypes(stap), [NAL_IDR, NAL_SPS, NAL_PPS]);
  assert.equal(info.idrStart, true);
  assert.equal(info.spsOffset, 3);
  assert.equal(isH264KeyframeStart(stap), true);
  // FU-A: indicator 0x7c (NRI 3, type 28), header S|type 5
  assert.equal(isH264KeyframeStart(hex('7c85 88')), true, 'FU-A start of IDR');
  assert.equal(isH264KeyframeStart(hex('7c05 00')), false, 'FU-A middle of IDR');
  assert.ok(analyzeH264Payload(hex('7c45 00'), 0, 3, info));
  assert.equal(info.nalEnd, true);
  assert.equal(info.nalStart, false);
  assert.equal(isH264KeyframeStart(hex('7c81 9a')), false, 'FU-A start of a non-IDR slice');
  assert.equal(isH264KeyframeStart(hex('6742c01f8c68')), true, 'an SPS alone opens a keyframe access unit');
  assert.equal(isH264KeyframeStart(hex('419a')), false);
  // Malformed
  assert.equal(analyzeH264Payload(hex('7cc5'), 0, 2, info), false, 'FU-A with S and E');
  assert.equal(analyzeH264Payload(hex('78 0009 67'), 0, 4, info), false, 'STAP-A size past end');
  assert.equal(analyzeH264Payload(hex('e5'), 0, 1, info), false, 'forbidden bit');
  assert.equal(analyzeH264Payload(hex(''), 0, 0, info), false);
});

test('B-slice detection through FU-A and STAP-A first slices', () => {
  const info = new H264PayloadInfo();
  const fuB = hex('7c81 9c00'); // FU-A start, NAL type 1, slice header: B
  assert.ok(analyzeH264Payload(fuB, 0, fuB.length, info));
  assert.equal(h264SliceType(fuB, info.sliceOffset, info.sliceEnd), SLICE_B);
  const stapP = hex('78 0002 4198');
  assert.ok(analyzeH264Payload(stapP, 0, stapP.length, info));
  assert.equal(h264SliceType(stapP, info.sliceOffset, info.sliceEnd), SLICE_P);
});

function feedFrames(insp: ReturnType<typeof h264StreamInspector>, opts: { sps: string; frames: number; fps: number; gop: number; bytesPerFrame: number; bEvery?: number }): void {
  const sps = hex(opts.sps);
  let ts = 1000;
  for (let f = 0; f < opts.frames; f++) {
    const key = f % opts.gop === 0;
    if (key) {
      const stap = new Uint8Array(1 + 2 + sps.length + 2 + 4);
      stap[0] = 0x78;
      stap[2] = sps.length;
      stap.set(sps, 3);
      stap[4 + sps.length] = 4;
      stap.set(hex('68ce3c80'), 5 + sps.length);
      insp.push(stap, 0, stap.length, ts);
    }
    const slice = new Uint8Array(opts.bytesPerFrame);
    const b = opts.bEvery !== undefined && !key && f % opts.bEvery === 0;
    slice[0] = 0x7c;
    slice[1] = 0x80 | (key ? 5 : 1); // FU-A start; one fragment per frame is enough here
    slice[2] = key ? 0x88 : b ? 0x9c : 0x98;
    insp.push(slice, 0, slice.length, ts);
    ts = (ts + 90000 / opts.fps) >>> 0;
  }
}

test('stream inspector: an OpenH264-like 640x360 stream at 30 fps, 1 s GOP passes IVS rules', () => {
  const insp = h264StreamInspector();
  feedFrames(insp, { sps: CORPUS[1]!.hex, frames: 95, fps: 30, gop: 30, bytesPerFrame: 4000 });
  const r = insp.report();
  assert.equal(r.profile, 'Constrained Baseline');
  assert.equal(r.width, 640);
  assert.equal(r.height, 360);
  assert.equal(r.bFramesSeen, false);
  assert.equal(r.keyframes, 4);
  assert.equal(r.keyframeIntervalMs, 1000);
  assert.ok(r.bitrateBps > 900_000 && r.bitrateBps < 1_100_000, `bitrate ${r.bitrateBps}`);
  assert.ok(Math.abs(r.frameRate! - 30) < 0.5);
  assert.deepEqual(checkIvsRules(r), []);
});

test('stream inspector: a 1080p High stream with B-frames, 4 s GOP, 10 Mbps violates every rule', () => {
  const insp = h264StreamInspector();
  feedFrames(insp, { sps: CORPUS[6]!.hex, frames: 250, fps: 30, gop: 120, bytesPerFrame: 42_000, bEvery: 2 });
  const r = insp.report();
  assert.equal(r.bFramesSeen, true);
  assert.equal(r.keyframeIntervalMs, 4000);
  const codes = checkIvsRules(r).map((v) => v.code).sort();
  assert.deepEqual(codes, ['BITRATE_EXCEEDED', 'B_FRAMES', 'KEYFRAME_INTERVAL', 'PROFILE_NOT_BASELINE', 'RESOLUTION_EXCEEDED']);
});

test('checkIvsRules: limits at the edge (1280x720 and 720x1280 pass, 1281 wide or 1080x1080 fail; 2 s passes)', () => {
  const base: H264StreamReport = { bFramesSeen: false, bSlices: 0, frames: 1, keyframes: 1, bitrateBps: 8_500_000, maxBitrateBps: 0, spsChanges: 0, keyframeIntervalMs: 2000 };
  const at = (w: number, h: number) => checkIvsRules({ ...base, width: w, height: h }).map((v) => v.code);
  assert.deepEqual(at(1280, 720), []);
  assert.deepEqual(at(720, 1280), []);
  assert.deepEqual(at(1282, 720), ['RESOLUTION_EXCEEDED']);
  assert.deepEqual(at(1080, 1080), ['RESOLUTION_EXCEEDED'], '1,166,400 pixels');
  assert.deepEqual(checkIvsRules({ ...base, bitrateBps: 8_500_001 }).map((v) => v.code), ['BITRATE_EXCEEDED']);
  assert.deepEqual(checkIvsRules({ ...base, keyframeIntervalMs: 2100 }).map((v) => v.code), ['KEYFRAME_INTERVAL']);
  assert.deepEqual(checkIvsRules({ ...base, bFramesSeen: false }), [], 'no SPS seen: nothing judged about profile');
});
