/**
 * RTCP (RFC 3550, RFC 4585, RFC 5104, draft-alvestrand-rmcat-remb): walking compound packets,
 * parsing the packet types the router uses, and building SR / RR / PLI / FIR / NACK.
 * RTCP is low-rate, so parsers return small objects; they never throw and return undefined on bad input.
 */

export const RTCP_SR = 200;
export const RTCP_RR = 201;
export const RTCP_SDES = 202;
export const RTCP_BYE = 203;
export const RTCP_APP = 204;
export const RTCP_RTPFB = 205;
export const RTCP_PSFB = 206;

export interface ReportBlock {
  ssrc: number;
  /** Fraction lost since the previous report, 0..255 (divide by 256). */
  fractionLost: number;
  /** Cumulative number of packets lost (signed 24-bit). */
  cumulativeLost: number;
  extendedHighestSeq: number;
  /** Interarrival jitter in RTP timestamp units. */
  jitter: number;
  /** Middle 32 bits of the NTP timestamp of the last SR received (0 = none). */
  lsr: number;
  /** Delay since that SR, in 1/65536 s. */
  dlsr: number;
}

export interface SenderReport {
  type: 'sr';
  ssrc: number;
  ntpSec: number;
  ntpFrac: number;
  rtpTimestamp: number;
  packetCount: number;
  octetCount: number;
  reports: ReportBlock[];
}
export interface ReceiverReport {
  type: 'rr';
  ssrc: number;
  reports: ReportBlock[];
}
export interface Bye {
  type: 'bye';
  ssrcs: number[];
}
export interface Sdes {
  type: 'sdes';
}
export interface GenericNack {
  type: 'nack';
  senderSsrc: number;
  mediaSsrc: number;
  /** Every sequence number reported lost (PID + BLP expanded), in order. */
  lost: number[];
}
export interface Pli {
  type: 'pli';
  senderSsrc: number;
  mediaSsrc: number;
}
export interface Fir {
  type: 'fir';
  senderSsrc: number;
  entries: Array<{ ssrc: number; seq: number }>;
}
export interface Remb {
  type: 'remb';
  senderSsrc: number;
  bitrate: number;
  ssrcs: number[];
}
export interface UnknownRtcp {
  type: 'unknown';
  packetType: number;
  fmt: number;
}
export type RtcpPacket = SenderReport | ReceiverReport | Bye | Sdes | GenericNack | Pli | Fir | Remb | UnknownRtcp;

/** Cursor over a compound packet; reuse it to walk without allocating. */
export class RtcpCursor {
  pos = 0;
  /** Offset and byte length of the current packet (header included). */
  offset = 0;
  length = 0;
  packetType = 0;
  /** The 5-bit count / FMT field. */
  count = 0;
}

/** Advance to the next packet of a compound; false at the end or when the next header is invalid. */
export function nextRtcpPacket(buf: Uint8Array, len: number, cur: RtcpCursor): boolean {
  if (len > buf.length) len = buf.length;
  const p = cur.pos;
  if (p + 4 > len) return false;
  const b0 = buf[p]!;
  if (b0 >> 6 !== 2) return false;
  const plen = (((buf[p + 2]! << 8) | buf[p + 3]!) + 1) * 4;
  if (p + plen > len) return false;
  cur.offset = p;
  cur.length = plen;
  cur.packetType = buf[p + 1]!;
  cur.count = b0 & 0x1f;
  cur.pos = p + plen;
  return true;
}

function u32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}
function w32(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}

function parseReportBlocks(b: Uint8Array, off: number, end: number, count: number): ReportBlock[] | undefined {
  if (off + count * 24 > end) return undefined;
  const out: ReportBlock[] = [];
  for (let i = 0; i < count; i++, off += 24) {
    let lost = (b[off + 5]! << 16) | (b[off + 6]! << 8) | b[off + 7]!;
    if (lost & 0x800000) lost -= 0x1000000;
    out.push({
      ssrc: u32(b, off),
      fractionLost: b[off + 4]!,
      cumulativeLost: lost,
      extendedHighestSeq: u32(b, off + 8),
      jitter: u32(b, off + 12),
      lsr: u32(b, off + 16),
      dlsr: u32(b, off + 20),
    });
  }
  return out;
}

/** Parse the packet at `off` (of byte length `plen`, header included, as found by nextRtcpPacket). */
export function parseRtcpPacket(b: Uint8Array, off: number, plen: number): RtcpPacket | undefined {
  const end = off + plen;
  if (plen < 4 || end > b.length || b[off]! >> 6 !== 2) return undefined;
  const count = b[off]! & 0x1f;
  const pt = b[off + 1]!;
  switch (pt) {
    case RTCP_SR: {
      if (plen < 28) return undefined;
      const reports = parseReportBlocks(b, off + 28, end, count);
      if (!reports) return undefined;
      return {
        type: 'sr',
        ssrc: u32(b, off + 4),
        ntpSec: u32(b, off + 8),
        ntpFrac: u32(b, off + 12),
        rtpTimestamp: u32(b, off + 16),
        packetCount: u32(b, off + 20),
        octetCount: u32(b, off + 24),
        reports,
      };
    }
    case RTCP_RR: {
      if (plen < 8) return undefined;
      const reports = parseReportBlocks(b, off + 8, end, count);
      if (!reports) return undefined;
      return { type: 'rr', ssrc: u32(b, off + 4), reports };
    }
    case RTCP_SDES:
      return { type: 'sdes' };
    case RTCP_BYE: {
      if (off + 4 + count * 4 > end) return undefined;
      const ssrcs: number[] = [];
      for (let i = 0; i < count; i++) ssrcs.push(u32(b, off + 4 + i * 4));
      return { type: 'bye', ssrcs };
    }
    case RTCP_RTPFB: {
      if (plen < 12) return undefined;
      const senderSsrc = u32(b, off + 4);
      const mediaSsrc = u32(b, off + 8);
      if (count !== 1) return { type: 'unknown', packetType: pt, fmt: count };
      const lost: number[] = [];
      for (let p = off + 12; p + 4 <= end; p += 4) {
        const pid = (b[p]! << 8) | b[p + 1]!;
        const blp = (b[p + 2]! << 8) | b[p + 3]!;
        lost.push(pid);
        for (let i = 0; i < 16; i++) if (blp & (1 << i)) lost.push((pid + i + 1) & 0xffff);
      }
      return { type: 'nack', senderSsrc, mediaSsrc, lost };
    }
    case RTCP_PSFB: {
      if (plen < 12) return undefined;
      const senderSsrc = u32(b, off + 4);
      const mediaSsrc = u32(b, off + 8);
      if (count === 1) return { type: 'pli', senderSsrc, mediaSsrc };
      if (count === 4) {
        const entries: Array<{ ssrc: number; seq: number }> = [];
        for (let p = off + 12; p + 8 <= end; p += 8) entries.push({ ssrc: u32(b, p), seq: b[p + 4]! });
        return { type: 'fir', senderSsrc, entries };
      }
      if (count === 15 && plen >= 20 && b[off + 12] === 0x52 && b[off + 13] === 0x45 && b[off + 14] === 0x4d && b[off + 15] === 0x42) {
        const n = b[off + 16]!;
        const exp = b[off + 17]! >> 2;
        const mantissa = ((b[off + 17]! & 3) << 16) | (b[off + 18]! << 8) | b[off + 19]!;
        if (off + 20 + n * 4 > end) return undefined;
        const ssrcs: number[] = [];
        for (let i = 0; i < n; i++) ssrcs.push(u32(b, off + 20 + i * 4));
        return { type: 'remb', senderSsrc, bitrate: mantissa * 2 ** exp, ssrcs };
      }
      return { type: 'unknown', packetType: pt, fmt: count };
    }
    default:
      return { type: 'unknown', packetType: pt, fmt: count };
  }
}

/** Parse every packet of a compound. Returns undefined if the first header is invalid; stops at the first bad one. */
export function parseRtcpCompound(buf: Uint8Array, len: number = buf.length): RtcpPacket[] | undefined {
  const cur = new RtcpCursor();
  const out: RtcpPacket[] = [];
  while (nextRtcpPacket(buf, len, cur)) {
    const p = parseRtcpPacket(buf, cur.offset, cur.length);
    if (p) out.push(p);
  }
  return out.length === 0 && cur.pos === 0 ? undefined : out;
}

// ---- NTP time ----

/** Seconds between 1900-01-01 and 1970-01-01. */
export const NTP_EPOCH_OFFSET = 2208988800;

/** Unix ms → NTP seconds / fraction (as unsigned 32-bit numbers). */
export function ntpFromUnixMs(ms: number): { sec: number; frac: number } {
  const s = Math.floor(ms / 1000);
  const frac = Math.floor(((ms - s * 1000) / 1000) * 0x100000000) >>> 0;
  return { sec: (s + NTP_EPOCH_OFFSET) >>> 0, frac };
}
/** Middle 32 bits of the NTP timestamp of `ms` (the LSR format). */
export function ntpMiddle32(ms: number): number {
  const { sec, frac } = ntpFromUnixMs(ms);
  return (((sec & 0xffff) << 16) | (frac >>> 16)) >>> 0;
}
/** NTP → Unix ms (assumes era 0, i.e. dates before 2036). */
export function unixMsFromNtp(sec: number, frac: number): number {
  return (sec - NTP_EPOCH_OFFSET) * 1000 + (frac / 0x100000000) * 1000;
}

// ---- builders ----

function header(b: Uint8Array, count: number, pt: number, bytes: number): void {
  b[0] = 0x80 | (count & 0x1f);
  b[1] = pt;
  const words = bytes / 4 - 1;
  b[2] = words >> 8;
  b[3] = words & 0xff;
}
function writeBlocks(b: Uint8Array, off: number, reports: readonly ReportBlock[]): void {
  for (const r of reports) {
    w32(b, off, r.ssrc);
    const lost = Math.max(-0x800000, Math.min(0x7fffff, Math.trunc(r.cumulativeLost))) & 0xffffff;
    b[off + 4] = Math.max(0, Math.min(255, r.fractionLost | 0));
    b[off + 5] = lost >> 16;
    b[off + 6] = (lost >> 8) & 0xff;
    b[off + 7] = lost & 0xff;
    w32(b, off + 8, r.extendedHighestSeq >>> 0);
    w32(b, off + 12, r.jitter >>> 0);
    w32(b, off + 16, r.lsr >>> 0);
    w32(b, off + 20, r.dlsr >>> 0);
    off += 24;
  }
}

export function buildSenderReport(sr: Omit<SenderReport, 'type' | 'reports'> & { reports?: readonly ReportBlock[] }): Uint8Array {
  const reports = (sr.reports ?? []).slice(0, 31);
  const b = new Uint8Array(28 + reports.length * 24);
  header(b, reports.length, RTCP_SR, b.length);
  w32(b, 4, sr.ssrc);
  w32(b, 8, sr.ntpSec >>> 0);
  w32(b, 12, sr.ntpFrac >>> 0);
  w32(b, 16, sr.rtpTimestamp >>> 0);
  w32(b, 20, sr.packetCount >>> 0);
  w32(b, 24, sr.octetCount >>> 0);
  writeBlocks(b, 28, reports);
  return b;
}

export function buildReceiverReport(rr: { ssrc: number; reports: readonly ReportBlock[] }): Uint8Array {
  const reports = rr.reports.slice(0, 31);
  const b = new Uint8Array(8 + reports.length * 24);
  header(b, reports.length, RTCP_RR, b.length);
  w32(b, 4, rr.ssrc);
  writeBlocks(b, 8, reports);
  return b;
}

export function buildPli(senderSsrc: number, mediaSsrc: number): Uint8Array {
  const b = new Uint8Array(12);
  header(b, 1, RTCP_PSFB, 12);
  w32(b, 4, senderSsrc);
  w32(b, 8, mediaSsrc);
  return b;
}

/** FIR (RFC 5104 §4.3.1): media source SSRC field is 0, the FCI names the target and the command sequence number. */
export function buildFir(senderSsrc: number, mediaSsrc: number, seq: number): Uint8Array {
  const b = new Uint8Array(20);
  header(b, 4, RTCP_PSFB, 20);
  w32(b, 4, senderSsrc);
  w32(b, 8, 0);
  w32(b, 12, mediaSsrc);
  b[16] = seq & 0xff;
  return b;
}

/** Generic NACK; `seqs` in any order, packed into PID+BLP pairs (wrap-around aware). */
export function buildNack(senderSsrc: number, mediaSsrc: number, seqs: readonly number[]): Uint8Array {
  const sorted = [...new Set(seqs.map((s) => s & 0xffff))].sort((a, b) => a - b);
  // Sort in wrap-aware order: if the set spans the wrap, start after the largest gap.
  if (sorted.length > 1) {
    let gapAt = 0;
    let gap = (sorted[0]! + 0x10000 - sorted[sorted.length - 1]!) & 0xffff;
    for (let i = 1; i < sorted.length; i++) {
      const g = sorted[i]! - sorted[i - 1]!;
      if (g > gap) {
        gap = g;
        gapAt = i;
      }
    }
    if (gapAt) sorted.push(...sorted.splice(0, gapAt));
  }
  const fci: number[] = [];
  for (let i = 0; i < sorted.length; ) {
    const pid = sorted[i]!;
    let blp = 0;
    i++;
    while (i < sorted.length) {
      const d = (sorted[i]! - pid) & 0xffff;
      if (d < 1 || d > 16) break;
      blp |= 1 << (d - 1);
      i++;
    }
    fci.push(pid, blp);
  }
  const b = new Uint8Array(12 + (fci.length / 2) * 4);
  header(b, 1, RTCP_RTPFB, b.length);
  w32(b, 4, senderSsrc);
  w32(b, 8, mediaSsrc);
  for (let i = 0, o = 12; i < fci.length; i += 2, o += 4) {
    b[o] = fci[i]! >> 8;
    b[o + 1] = fci[i]! & 0xff;
    b[o + 2] = fci[i + 1]! >> 8;
    b[o + 3] = fci[i + 1]! & 0xff;
  }
  return b;
}

/** REMB (for tests and a future congestion controller). */
export function buildRemb(senderSsrc: number, bitrate: number, ssrcs: readonly number[]): Uint8Array {
  const b = new Uint8Array(20 + ssrcs.length * 4);
  header(b, 15, RTCP_PSFB, b.length);
  w32(b, 4, senderSsrc);
  b.set([0x52, 0x45, 0x4d, 0x42], 12);
  let exp = 0;
  let m = Math.max(0, Math.floor(bitrate));
  while (m > 0x3ffff) {
    m = Math.floor(m / 2);
    exp++;
  }
  b[16] = ssrcs.length;
  b[17] = (exp << 2) | (m >> 16);
  b[18] = (m >> 8) & 0xff;
  b[19] = m & 0xff;
  ssrcs.forEach((s, i) => w32(b, 20 + i * 4, s));
  return b;
}

export function buildBye(ssrcs: readonly number[]): Uint8Array {
  const b = new Uint8Array(4 + ssrcs.length * 4);
  header(b, ssrcs.length, RTCP_BYE, b.length);
  ssrcs.forEach((s, i) => w32(b, 4 + i * 4, s));
  return b;
}

/** Concatenate RTCP packets into one compound buffer. */
export function concatRtcp(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
