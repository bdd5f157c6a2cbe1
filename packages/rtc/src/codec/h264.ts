/**
 * H.264 RTP payloads (RFC 6184, packetization-mode 1): single NAL unit, STAP-A and FU-A.
 * Tells which NAL types a packet carries, whether it starts a NAL / a keyframe, and where the
 * first slice header starts, without copying. Never throws; malformed aggregates stop early.
 */

export const NAL_SLICE = 1;
export const NAL_IDR = 5;
export const NAL_SEI = 6;
export const NAL_SPS = 7;
export const NAL_PPS = 8;
export const NAL_AUD = 9;
export const NAL_STAP_A = 24;
export const NAL_FU_A = 28;

export const PACKETIZATION_SINGLE = 1;
export const PACKETIZATION_STAP_A = 2;
export const PACKETIZATION_FU_A = 3;

/** Mutable result of `analyzeH264Payload`; reuse it on the packet path. */
export class H264PayloadInfo {
  /** PACKETIZATION_* or 0 when unsupported (STAP-B, MTAP, FU-B, reserved). */
  packetization = 0;
  /** Bit n set when a NAL unit of type n (1..23) is carried, whole or as a fragment. */
  nalMask = 0;
  /** The packet begins a NAL unit (single, STAP-A, or FU-A with S bit). */
  nalStart = false;
  /** The packet ends a NAL unit (single, STAP-A, or FU-A with E bit). */
  nalEnd = false;
  /** An IDR slice starts in this packet. */
  idrStart = false;
  /** Offset (absolute) of the first slice header that starts in this packet (byte after the NAL header), or -1. */
  sliceOffset = -1;
  /** End (exclusive) of the data available for that slice header. */
  sliceEnd = -1;
  /** NAL type of that slice (1 or 5). */
  sliceNalType = 0;
  /** SPS NAL unit carried whole in this packet: offset of its NAL header byte and its end, or -1. */
  spsOffset = -1;
  spsEnd = -1;
}

function noteNal(out: H264PayloadInfo, buf: Uint8Array, hdrOff: number, end: number): void {
  const t = buf[hdrOff]! & 0x1f;
  out.nalMask |= 1 << t;
  if (t === NAL_IDR) out.idrStart = true;
  if ((t === NAL_SLICE || t === NAL_IDR) && out.sliceOffset < 0) {
    out.sliceOffset = hdrOff + 1;
    out.sliceEnd = end;
    out.sliceNalType = t;
  }
  if (t === NAL_SPS && out.spsOffset < 0) {
    out.spsOffset = hdrOff;
    out.spsEnd = end;
  }
}

/**
 * Analyse the RTP payload `buf[offset, offset+length)`. Returns false (and `out.packetization = 0`)
 * for an empty or unsupported payload.
 */
export function analyzeH264Payload(buf: Uint8Array, offset: number, length: number, out: H264PayloadInfo): boolean {
  out.packetization = 0;
  out.nalMask = 0;
  out.nalStart = false;
  out.nalEnd = false;
  out.idrStart = false;
  out.sliceOffset = -1;
  out.sliceEnd = -1;
  out.sliceNalType = 0;
  out.spsOffset = -1;
  out.spsEnd = -1;
  const end = Math.min(offset + length, buf.length);
  if (offset < 0 || offset >= end) return false;
  const b0 = buf[offset]!;
  if (b0 & 0x80) return false; // forbidden_zero_bit
  const type = b0 & 0x1f;
  if (type >= 1 && type <= 23) {
    out.packetization = PACKETIZATION_SINGLE;
    out.nalStart = true;
    out.nalEnd = true;
    noteNal(out, buf, offset, end);
    return true;
  }
  if (type === NAL_STAP_A) {
    let p = offset + 1;
    let any = false;
    while (p + 2 <= end) {
      const size = (buf[p]! << 8) | buf[p + 1]!;
      p += 2;
      if (size === 0 || p + size > end) break;
      if (!(buf[p]! & 0x80)) {
        const t = buf[p]! & 0x1f;
        if (t >= 1 && t <= 23) {
          noteNal(out, buf, p, p + size);
          any = true;
        }
      }
      p += size;
    }
    if (!any) return false;
    out.packetization = PACKETIZATION_STAP_A;
    out.nalStart = true;
    out.nalEnd = true;
    return true;
  }
  if (type === NAL_FU_A) {
    if (offset + 2 > end) return false;
    const fu = buf[offset + 1]!;
    const t = fu & 0x1f;
    const start = (fu & 0x80) !== 0;
    const stop = (fu & 0x40) !== 0;
    if (t < 1 || t > 23 || (start && stop)) return false;
    out.packetization = PACKETIZATION_FU_A;
    out.nalMask = 1 << t;
    out.nalStart = start;
    out.nalEnd = stop;
    if (start) {
      if (t === NAL_IDR) out.idrStart = true;
      if ((t === NAL_SLICE || t === NAL_IDR) && offset + 2 < end) {
        out.sliceOffset = offset + 2;
        out.sliceEnd = end;
        out.sliceNalType = t;
      }
    }
    return true;
  }
  return false;
}

/** True when a NAL of `type` is carried in the packet described by `info`. */
export function hasNal(info: H264PayloadInfo, type: number): boolean {
  return (info.nalMask & (1 << type)) !== 0;
}

/**
 * Does this packet start a keyframe? True when it carries the start of an IDR slice, or an SPS
 * (encoders put SPS/PPS at the head of the IDR access unit; the router confirms the IDR follows
 * within the same access unit before it calls it a keyframe).
 */
export function isH264KeyframeStart(buf: Uint8Array, offset = 0, length: number = buf.length - offset, scratch: H264PayloadInfo = new H264PayloadInfo()): boolean {
  if (!analyzeH264Payload(buf, offset, length, scratch)) return false;
  return scratch.idrStart || hasNal(scratch, NAL_SPS);
}

/** NAL types carried by a payload (allocating; for tests and logs). */
export function h264NalTypes(buf: Uint8Array, offset = 0, length: number = buf.length - offset): number[] {
  const info = new H264PayloadInfo();
  if (!analyzeH264Payload(buf, offset, length, info)) return [];
  const out: number[] = [];
  for (let t = 1; t <= 23; t++) if (info.nalMask & (1 << t)) out.push(t);
  return out;
}
