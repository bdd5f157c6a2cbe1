/**
 * Crafted H.264 for tests that need a stream IVS refuses, with no encoder installed: SPS NAL units written field
 * by field after ITU-T H.264 §7.3.2.1.1 (so each value below is the field it names — nothing is copied from an
 * encoder), and slice headers whose slice_type says I, P or B (§7.3.3: first_mb_in_slice, slice_type,
 * pic_parameter_set_id). Packetized as a WebRTC encoder does (RFC 6184, packetization-mode 1): a keyframe is a
 * STAP-A of SPS + PPS, then the IDR slice as FU-A fragments; other frames are FU-A fragments.
 * The bytes are real H.264 syntax for every parser on the path (ours, a stage's); the slice data after the
 * header is filler, so these frames are for refusal tests, not for a decoder.
 */
import { buildRtpPacket } from '../../packages/rtc/src/codec/rtp.js';

class BitWriter {
  private bits: number[] = [];
  u(n: number, v: number): this {
    for (let i = n - 1; i >= 0; i--) this.bits.push((v >> i) & 1);
    return this;
  }
  ue(v: number): this {
    const x = v + 1;
    const len = Math.floor(Math.log2(x));
    this.u(len, 0);
    return this.u(len + 1, x);
  }
  /** rbsp_trailing_bits, then bytes. */
  rbsp(): number[] {
    this.bits.push(1);
    while (this.bits.length % 8) this.bits.push(0);
    const out: number[] = [];
    for (let i = 0; i < this.bits.length; i += 8) out.push(this.bits.slice(i, i + 8).reduce((a, b) => (a << 1) | b, 0));
    return out;
  }
}

/** Emulation prevention (§7.4.1): 00 00 0x (x ≤ 3) → 00 00 03 0x. */
function escape(rbsp: number[]): number[] {
  const out: number[] = [];
  let zeros = 0;
  for (const b of rbsp) {
    if (zeros >= 2 && b <= 3) {
      out.push(3);
      zeros = 0;
    }
    out.push(b);
    zeros = b === 0 ? zeros + 1 : 0;
  }
  return out;
}

export interface SpsFields {
  profileIdc: number;
  /** constraint_set0..5 as the 8-bit field (set0 is the MSB): 0xc0 = set0 + set1 (Constrained Baseline). */
  constraintByte: number;
  levelIdc: number;
  widthMbs: number;
  heightMbs: number;
  /** Bottom crop in luma rows (even), e.g. 8 for 1080 out of 1088. */
  cropBottom?: number;
}

/** An SPS NAL unit (header 0x67) with these fields; High profiles carry 4:2:0 8-bit and no scaling lists. */
export function craftSps(f: SpsFields): Uint8Array {
  const w = new BitWriter().u(8, f.profileIdc).u(8, f.constraintByte).u(8, f.levelIdc).ue(0);
  if ([100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135].includes(f.profileIdc)) {
    w.ue(1).ue(0).ue(0).u(1, 0).u(1, 0); // chroma_format_idc 4:2:0, 8-bit luma/chroma, no transform bypass, no scaling matrix
  }
  w.ue(0); // log2_max_frame_num_minus4
  w.ue(0).ue(2); // pic_order_cnt_type 0, log2_max_pic_order_cnt_lsb_minus4
  w.ue(f.profileIdc === 66 ? 1 : 4).u(1, 0); // max_num_ref_frames (B-frames need more), gaps_in_frame_num_allowed
  w.ue(f.widthMbs - 1).ue(f.heightMbs - 1);
  w.u(1, 1).u(1, 1); // frame_mbs_only_flag, direct_8x8_inference_flag
  if (f.cropBottom) w.u(1, 1).ue(0).ue(0).ue(0).ue(f.cropBottom / 2);
  else w.u(1, 0);
  w.u(1, 0); // no VUI
  return Uint8Array.from([0x67, ...escape(w.rbsp())]);
}

/** High profile (100), level 3.0, 640x480: what x264's default preset would announce for a 480p stream. */
export const SPS_HIGH_640x480 = craftSps({ profileIdc: 100, constraintByte: 0x00, levelIdc: 30, widthMbs: 40, heightMbs: 30 });
/** Constrained Baseline (66, set0+set1), level 3.0, 640x480. */
export const SPS_CB_640x480_CRAFTED = craftSps({ profileIdc: 66, constraintByte: 0xc0, levelIdc: 30, widthMbs: 40, heightMbs: 30 });
/** Constrained Baseline 1920x1080 (level 4.0): more than IVS's 720p. */
export const SPS_CB_1080P = craftSps({ profileIdc: 66, constraintByte: 0xc0, levelIdc: 40, widthMbs: 120, heightMbs: 68, cropBottom: 8 });
/** A PPS (id 0, SPS 0, CAVLC): 68 ce 3c 80. */
export const PPS = Uint8Array.of(0x68, 0xce, 0x3c, 0x80);

export type SliceKind = 'I' | 'P' | 'B';
const SLICE_TYPE: Record<SliceKind, number> = { I: 7, P: 5, B: 6 }; // 5..9: every slice of the picture has this type

/** The first bytes of a slice NAL's payload: first_mb_in_slice 0, slice_type, pic_parameter_set_id 0. */
function sliceHeader(kind: SliceKind): number[] {
  return new BitWriter().ue(0).ue(SLICE_TYPE[kind]).ue(0).u(5, 0b10101).rbsp();
}

/**
 * RTP packets of a crafted H.264 stream for one SSRC / payload type. frame('I') is a keyframe (SPS + PPS + IDR).
 */
export class CraftedH264Stream {
  seq: number;
  ts: number;
  fps = 30;
  constructor(
    readonly o: { ssrc: number; payloadType: number; sps: Uint8Array; fragments?: number; fragmentBytes?: number; seq?: number; ts?: number },
  ) {
    this.seq = (o.seq ?? 1000) & 0xffff;
    this.ts = (o.ts ?? 90_000) >>> 0;
  }

  private packet(payload: Uint8Array, marker: boolean): Uint8Array {
    const p = buildRtpPacket({ payloadType: this.o.payloadType, sequence: this.seq, timestamp: this.ts, ssrc: this.o.ssrc, marker, payload });
    this.seq = (this.seq + 1) & 0xffff;
    return p;
  }

  frame(kind: SliceKind): Uint8Array[] {
    const out: Uint8Array[] = [];
    if (kind === 'I') {
      const sps = this.o.sps;
      const stap = new Uint8Array(1 + 2 + sps.length + 2 + PPS.length);
      stap[0] = 0x78; // STAP-A, nri 3
      stap[1] = sps.length >> 8;
      stap[2] = sps.length & 0xff;
      stap.set(sps, 3);
      stap[3 + sps.length] = PPS.length >> 8;
      stap[4 + sps.length] = PPS.length & 0xff;
      stap.set(PPS, 5 + sps.length);
      out.push(this.packet(stap, false));
    }
    const nalType = kind === 'I' ? 5 : 1;
    const nri = kind === 'B' ? 0x00 : 0x60; // B pictures are not references here
    const n = this.o.fragments ?? 3;
    const size = this.o.fragmentBytes ?? 600;
    const header = sliceHeader(kind);
    for (let i = 0; i < n; i++) {
      const p = new Uint8Array(size);
      p[0] = nri | 28; // FU-A indicator
      p[1] = (i === 0 ? 0x80 : 0) | (i === n - 1 ? 0x40 : 0) | nalType;
      let k = 2;
      if (i === 0) for (const b of header) p[k++] = b;
      for (; k < size; k++) p[k] = 0x55 ^ ((k * 13 + this.seq) & 0x7f); // never 00 00
      out.push(this.packet(p, i === n - 1));
    }
    this.ts = (this.ts + 90_000 / this.fps) >>> 0;
    return out;
  }
}
