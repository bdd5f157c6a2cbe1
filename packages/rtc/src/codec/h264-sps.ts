/**
 * H.264 sequence parameter set and slice-header parsing (ITU-T H.264 §7.3.2.1, §7.3.3, Annex E),
 * straight from the bitstream: we never trust profile-level-id from SDP.
 */
import { NalBitReader } from './bitreader.js';

export interface H264Sps {
  profileIdc: number;
  /** constraint_set0..5 flags as bits 0..5 (bit 0 = constraint_set0_flag). */
  constraintFlags: number;
  levelIdc: number;
  spsId: number;
  chromaFormatIdc: number;
  bitDepthLuma: number;
  bitDepthChroma: number;
  log2MaxFrameNum: number;
  picOrderCntType: number;
  maxNumRefFrames: number;
  frameMbsOnly: boolean;
  width: number;
  height: number;
  /** From VUI bitstream_restriction when present; otherwise inferred where the spec allows, else undefined. */
  maxNumReorderFrames?: number;
  maxDecFrameBuffering?: number;
  /** Frame rate from VUI timing info (time_scale / (2 * num_units_in_tick)), when present. */
  frameRate?: number;
  profileName: string;
  /** e.g. "3.1", "1b". */
  level: string;
}

const HIGH_PROFILES = new Set([100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135]);

export function h264ProfileName(profileIdc: number, constraintFlags: number): string {
  const c = (i: number) => (constraintFlags >> i) & 1;
  switch (profileIdc) {
    case 66:
      return c(1) ? 'Constrained Baseline' : 'Baseline';
    case 77:
      return 'Main';
    case 88:
      return 'Extended';
    case 100:
      return c(4) && c(5) ? 'Constrained High' : c(4) ? 'Progressive High' : 'High';
    case 110:
      return c(3) ? 'High 10 Intra' : 'High 10';
    case 122:
      return c(3) ? 'High 4:2:2 Intra' : 'High 4:2:2';
    case 244:
      return c(3) ? 'High 4:4:4 Intra' : 'High 4:4:4 Predictive';
    case 44:
      return 'CAVLC 4:4:4 Intra';
    default:
      return `Unknown (${profileIdc})`;
  }
}

export function h264LevelName(profileIdc: number, levelIdc: number, constraintFlags: number): string {
  if (levelIdc === 11 && (constraintFlags >> 3) & 1 && (profileIdc === 66 || profileIdc === 77 || profileIdc === 88)) return '1b';
  if (levelIdc === 9) return '1b';
  return (levelIdc / 10).toFixed(1);
}

function skipScalingList(r: NalBitReader, size: number): void {
  let last = 8;
  let next = 8;
  for (let j = 0; j < size; j++) {
    if (next !== 0) {
      const delta = r.se();
      next = (last + delta + 256) % 256;
      if (r.overrun) return;
    }
    last = next === 0 ? last : next;
  }
}

function skipHrd(r: NalBitReader): void {
  const cpbCnt = r.ue() + 1;
  if (cpbCnt > 32) {
    r.overrun = true;
    return;
  }
  r.u(4);
  r.u(4);
  for (let i = 0; i < cpbCnt && !r.overrun; i++) {
    r.ue();
    r.ue();
    r.u1();
  }
  r.u(5);
  r.u(5);
  r.u(5);
  r.u(5);
}

/**
 * Parse an SPS NAL unit: `buf[start]` is the NAL header byte (type 7), `end` exclusive.
 * Returns undefined on anything malformed or truncated before the fields we need.
 */
export function parseH264Sps(buf: Uint8Array, start = 0, end: number = buf.length): H264Sps | undefined {
  if (end > buf.length) end = buf.length;
  if (start < 0 || start + 4 > end) return undefined;
  if ((buf[start]! & 0x1f) !== 7 || buf[start]! & 0x80) return undefined;
  const r = new NalBitReader(buf, start + 1, end);
  const profileIdc = r.u(8);
  const flagsByte = r.u(8);
  const levelIdc = r.u(8);
  // Reverse so bit i = constraint_set<i>_flag.
  let constraintFlags = 0;
  for (let i = 0; i < 6; i++) if (flagsByte & (0x80 >> i)) constraintFlags |= 1 << i;
  const spsId = r.ue();
  if (spsId > 31) return undefined;
  let chromaFormatIdc = 1;
  let separateColourPlane = 0;
  let bitDepthLuma = 8;
  let bitDepthChroma = 8;
  if (HIGH_PROFILES.has(profileIdc)) {
    chromaFormatIdc = r.ue();
    if (chromaFormatIdc > 3) return undefined;
    if (chromaFormatIdc === 3) separateColourPlane = r.u1();
    bitDepthLuma = r.ue() + 8;
    bitDepthChroma = r.ue() + 8;
    if (bitDepthLuma > 14 || bitDepthChroma > 14) return undefined;
    r.u1(); // qpprime_y_zero_transform_bypass_flag
    if (r.u1()) {
      const lists = chromaFormatIdc !== 3 ? 8 : 12;
      for (let i = 0; i < lists && !r.overrun; i++) if (r.u1()) skipScalingList(r, i < 6 ? 16 : 64);
    }
  }
  const log2MaxFrameNum = r.ue() + 4;
  if (log2MaxFrameNum > 16) return undefined;
  const picOrderCntType = r.ue();
  if (picOrderCntType > 2) return undefined;
  if (picOrderCntType === 0) {
    if (r.ue() > 12) return undefined;
  } else if (picOrderCntType === 1) {
    r.u1();
    r.se();
    r.se();
    const n = r.ue();
    if (n > 255) return undefined;
    for (let i = 0; i < n && !r.overrun; i++) r.se();
  }
  const maxNumRefFrames = r.ue();
  r.u1(); // gaps_in_frame_num_value_allowed_flag
  const widthMbs = r.ue() + 1;
  const heightMapUnits = r.ue() + 1;
  const frameMbsOnly = r.u1() === 1;
  if (!frameMbsOnly) r.u1();
  r.u1(); // direct_8x8_inference_flag
  let cropL = 0;
  let cropR = 0;
  let cropT = 0;
  let cropB = 0;
  if (r.u1()) {
    cropL = r.ue();
    cropR = r.ue();
    cropT = r.ue();
    cropB = r.ue();
  }
  if (r.overrun) return undefined;
  if (widthMbs > 1024 || heightMapUnits > 1024) return undefined;

  let maxNumReorderFrames: number | undefined;
  let maxDecFrameBuffering: number | undefined;
  let frameRate: number | undefined;
  if (r.u1()) {
    // VUI (Annex E.1.1). A truncated VUI leaves the optional fields undefined but keeps the SPS.
    if (r.u1()) {
      if (r.u(8) === 255) {
        r.u(16);
        r.u(16);
      }
    }
    if (r.u1()) r.u1();
    if (r.u1()) {
      r.u(3);
      r.u1();
      if (r.u1()) {
        r.u(8);
        r.u(8);
        r.u(8);
      }
    }
    if (r.u1()) {
      r.ue();
      r.ue();
    }
    if (r.u1()) {
      const units = r.u(32);
      const scale = r.u(32);
      r.u1();
      if (units > 0 && !r.overrun) frameRate = scale / (2 * units);
    }
    const nalHrd = r.u1();
    if (nalHrd) skipHrd(r);
    const vclHrd = r.u1();
    if (vclHrd) skipHrd(r);
    if (nalHrd || vclHrd) r.u1();
    r.u1(); // pic_struct_present_flag
    if (r.u1()) {
      r.u1();
      r.ue();
      r.ue();
      r.ue();
      r.ue();
      const reorder = r.ue();
      const dpb = r.ue();
      if (!r.overrun) {
        maxNumReorderFrames = reorder;
        maxDecFrameBuffering = dpb;
      }
    }
  }
  if (maxNumReorderFrames === undefined) {
    // E.2.1: inferred 0 for these intra-only profiles; Baseline cannot reorder (no B slices).
    if ((constraintFlags >> 3) & 1 && [44, 86, 100, 110, 122, 244].includes(profileIdc)) maxNumReorderFrames = 0;
    else if (profileIdc === 66) maxNumReorderFrames = 0;
  }

  const chromaArrayType = separateColourPlane ? 0 : chromaFormatIdc;
  const subWidthC = chromaFormatIdc === 3 ? 1 : 2;
  const subHeightC = chromaFormatIdc === 1 ? 2 : 1;
  const cropUnitX = chromaArrayType === 0 ? 1 : subWidthC;
  const cropUnitY = (chromaArrayType === 0 ? 1 : subHeightC) * (frameMbsOnly ? 1 : 2);
  const width = widthMbs * 16 - cropUnitX * (cropL + cropR);
  const height = (frameMbsOnly ? 1 : 2) * heightMapUnits * 16 - cropUnitY * (cropT + cropB);
  if (width <= 0 || height <= 0) return undefined;

  const sps: H264Sps = {
    profileIdc,
    constraintFlags,
    levelIdc,
    spsId,
    chromaFormatIdc,
    bitDepthLuma,
    bitDepthChroma,
    log2MaxFrameNum,
    picOrderCntType,
    maxNumRefFrames,
    frameMbsOnly,
    width,
    height,
    profileName: h264ProfileName(profileIdc, constraintFlags),
    level: h264LevelName(profileIdc, levelIdc, constraintFlags),
  };
  if (maxNumReorderFrames !== undefined) sps.maxNumReorderFrames = maxNumReorderFrames;
  if (maxDecFrameBuffering !== undefined) sps.maxDecFrameBuffering = maxDecFrameBuffering;
  if (frameRate !== undefined && Number.isFinite(frameRate)) sps.frameRate = frameRate;
  return sps;
}

export const SLICE_P = 0;
export const SLICE_B = 1;
export const SLICE_I = 2;
export const SLICE_SP = 3;
export const SLICE_SI = 4;

/**
 * Read first_mb_in_slice and slice_type from the start of a coded slice. `start` points at the byte
 * right after the NAL header. Returns slice_type % 5 (SLICE_P, SLICE_B, …) or -1 when unreadable;
 * `firstMb` (optional out array) receives first_mb_in_slice.
 */
export function h264SliceType(buf: Uint8Array, start: number, end: number, firstMb?: number[]): number {
  if (start < 0 || start >= end || start >= buf.length) return -1;
  const r = new NalBitReader(buf, start, end);
  const mb = r.ue();
  const t = r.ue();
  if (r.overrun || t > 9) return -1;
  if (firstMb) firstMb[0] = mb;
  return t % 5;
}
