/**
 * RTP header parsing and in-place rewriting (RFC 3550, RFC 8285 header extensions).
 * Every reader checks lengths first and returns undefined / -1 on bad input; nothing throws.
 * The packet path reuses one `RtpInfo` per caller instead of allocating a result per packet.
 */

export const RTP_HEADER_MIN = 12;
export const EXT_PROFILE_ONE_BYTE = 0xbede;
/** Two-byte header extensions: 0x100 followed by 4 "appbits" (RFC 8285 §4.3). */
export const EXT_PROFILE_TWO_BYTE_MASK = 0xfff0;
export const EXT_PROFILE_TWO_BYTE = 0x1000;

/** Mutable result of `parseRtpHeader`, meant to be reused across packets. */
export class RtpInfo {
  version = 0;
  padding = false;
  extension = false;
  csrcCount = 0;
  marker = false;
  payloadType = 0;
  sequence = 0;
  timestamp = 0;
  ssrc = 0;
  /** Offset of the 4-byte extension header (profile + length), or -1. */
  extOffset = -1;
  /** 16-bit "defined by profile" word of the extension block (0xBEDE, 0x100x, other). */
  extProfile = 0;
  /** Length of extension data in bytes (excluding its 4-byte header). */
  extLength = 0;
  /** Header length: fixed header + CSRCs + extension block. */
  headerLength = 0;
  payloadOffset = 0;
  /** Payload bytes, excluding padding. */
  payloadLength = 0;
  paddingLength = 0;
  /** Total packet length that was parsed. */
  length = 0;
}

/**
 * Parse an RTP header. `len` defaults to buf.length. Returns `out` filled, or undefined when the
 * bytes are not a valid RTP v2 packet (too short, bad version, extension or padding past the end).
 */
export function parseRtpHeader(buf: Uint8Array, len: number = buf.length, out: RtpInfo = new RtpInfo()): RtpInfo | undefined {
  if (len > buf.length) len = buf.length;
  if (len < RTP_HEADER_MIN) return undefined;
  const b0 = buf[0]!;
  if (b0 >> 6 !== 2) return undefined;
  const b1 = buf[1]!;
  // RTCP packet types 200..207 collide with marker+PT 72..79; callers demultiplex first, we refuse them.
  const cc = b0 & 0x0f;
  let off = RTP_HEADER_MIN + cc * 4;
  if (off > len) return undefined;
  out.version = 2;
  out.padding = (b0 & 0x20) !== 0;
  out.extension = (b0 & 0x10) !== 0;
  out.csrcCount = cc;
  out.marker = (b1 & 0x80) !== 0;
  out.payloadType = b1 & 0x7f;
  out.sequence = (buf[2]! << 8) | buf[3]!;
  out.timestamp = ((buf[4]! << 24) | (buf[5]! << 16) | (buf[6]! << 8) | buf[7]!) >>> 0;
  out.ssrc = ((buf[8]! << 24) | (buf[9]! << 16) | (buf[10]! << 8) | buf[11]!) >>> 0;
  out.extOffset = -1;
  out.extProfile = 0;
  out.extLength = 0;
  if (out.extension) {
    if (off + 4 > len) return undefined;
    const extLen = ((buf[off + 2]! << 8) | buf[off + 3]!) * 4;
    if (off + 4 + extLen > len) return undefined;
    out.extOffset = off;
    out.extProfile = (buf[off]! << 8) | buf[off + 1]!;
    out.extLength = extLen;
    off += 4 + extLen;
  }
  let padding = 0;
  if (out.padding) {
    padding = buf[len - 1]!;
    if (padding === 0 || off + padding > len) return undefined;
  }
  out.headerLength = off;
  out.payloadOffset = off;
  out.paddingLength = padding;
  out.payloadLength = len - off - padding;
  out.length = len;
  return out;
}

/** Cheap demultiplexing test (RFC 7983 / RFC 5761): RTCP has packet type 192..223 in byte 1. */
export function isRtcpPacket(buf: Uint8Array): boolean {
  if (buf.length < 2) return false;
  const pt = buf[1]!;
  return pt >= 192 && pt <= 223;
}

export function rtpSequence(buf: Uint8Array): number {
  return buf.length >= 4 ? (buf[2]! << 8) | buf[3]! : -1;
}
export function rtpTimestamp(buf: Uint8Array): number {
  return buf.length >= 8 ? ((buf[4]! << 24) | (buf[5]! << 16) | (buf[6]! << 8) | buf[7]!) >>> 0 : -1;
}
export function rtpSsrc(buf: Uint8Array): number {
  return buf.length >= 12 ? ((buf[8]! << 24) | (buf[9]! << 16) | (buf[10]! << 8) | buf[11]!) >>> 0 : -1;
}

// In-place writers. The caller has parsed the packet (so length >= 12); values are taken modulo their width.
export function setRtpSequence(buf: Uint8Array, seq: number): void {
  buf[2] = (seq >>> 8) & 0xff;
  buf[3] = seq & 0xff;
}
export function setRtpTimestamp(buf: Uint8Array, ts: number): void {
  // `>>> 0` first: callers pass extended (>2^32) timestamps; ToUint32 takes them modulo 2^32.
  const t = ts >>> 0;
  buf[4] = t >>> 24;
  buf[5] = (t >>> 16) & 0xff;
  buf[6] = (t >>> 8) & 0xff;
  buf[7] = t & 0xff;
}
export function setRtpSsrc(buf: Uint8Array, ssrc: number): void {
  buf[8] = ssrc >>> 24;
  buf[9] = (ssrc >>> 16) & 0xff;
  buf[10] = (ssrc >>> 8) & 0xff;
  buf[11] = ssrc & 0xff;
}
export function setRtpPayloadType(buf: Uint8Array, pt: number): void {
  buf[1] = (buf[1]! & 0x80) | (pt & 0x7f);
}
export function setRtpMarker(buf: Uint8Array, marker: boolean): void {
  buf[1] = marker ? buf[1]! | 0x80 : buf[1]! & 0x7f;
}

/** Cursor for `nextRtpExtension`; reuse it to iterate without allocating. */
export class RtpExtCursor {
  /** Next read position (absolute). Set by `startRtpExtensions`. */
  pos = 0;
  end = 0;
  twoByte = false;
  id = 0;
  /** Absolute offset of the element's data. */
  offset = 0;
  length = 0;
}

/** Prepare `cur` to iterate the extension elements of a parsed packet. False when there are none we understand. */
export function startRtpExtensions(info: RtpInfo, cur: RtpExtCursor): boolean {
  if (info.extOffset < 0) return false;
  const oneByte = info.extProfile === EXT_PROFILE_ONE_BYTE;
  const twoByte = (info.extProfile & EXT_PROFILE_TWO_BYTE_MASK) === EXT_PROFILE_TWO_BYTE;
  if (!oneByte && !twoByte) return false;
  cur.twoByte = twoByte;
  cur.pos = info.extOffset + 4;
  cur.end = cur.pos + info.extLength;
  return true;
}

/** Advance to the next element; false at the end or on a malformed element. Skips padding bytes. */
export function nextRtpExtension(buf: Uint8Array, cur: RtpExtCursor): boolean {
  let p = cur.pos;
  const end = Math.min(cur.end, buf.length);
  while (p < end) {
    const b = buf[p]!;
    if (b === 0) {
      p++;
      continue;
    }
    if (!cur.twoByte) {
      const id = b >> 4;
      const len = (b & 0x0f) + 1;
      // id 15 is reserved: "stop processing" (RFC 8285 §4.2).
      if (id === 15 || p + 1 + len > end) {
        cur.pos = end;
        return false;
      }
      cur.id = id;
      cur.offset = p + 1;
      cur.length = len;
      cur.pos = p + 1 + len;
      return true;
    }
    if (p + 2 > end) break;
    const len = buf[p + 1]!;
    if (p + 2 + len > end) break;
    cur.id = b;
    cur.offset = p + 2;
    cur.length = len;
    cur.pos = p + 2 + len;
    return true;
  }
  cur.pos = end;
  return false;
}

export interface RtpExtensionElement {
  id: number;
  offset: number;
  length: number;
}

/** Convenience (allocating) listing of extension elements, for tests and the control path. */
export function listRtpExtensions(buf: Uint8Array, info: RtpInfo): RtpExtensionElement[] {
  const cur = new RtpExtCursor();
  const out: RtpExtensionElement[] = [];
  if (!startRtpExtensions(info, cur)) return out;
  while (nextRtpExtension(buf, cur)) out.push({ id: cur.id, offset: cur.offset, length: cur.length });
  return out;
}

/** Absolute offset of the data of extension `id`, or -1. */
export function findRtpExtension(buf: Uint8Array, info: RtpInfo, id: number, cur: RtpExtCursor = new RtpExtCursor()): number {
  if (!startRtpExtensions(info, cur)) return -1;
  while (nextRtpExtension(buf, cur)) if (cur.id === id) return cur.offset;
  return -1;
}

/**
 * Rewrite the extension block for one sink, inside the same buffer: each element's id becomes
 * `idMap[id]` (0 = strip it). One-byte elements whose new id would be > 14 are stripped (they cannot
 * be expressed in the one-byte form). The block is compacted and re-padded to 32 bits, the payload
 * moved down, and the X bit cleared when nothing is left. `info` must describe `buf` (from
 * parseRtpHeader) and is updated. Returns the new packet length (unchanged when there is no block,
 * or when the profile is not one of RFC 8285's).
 */
export function rewriteRtpExtensions(buf: Uint8Array, info: RtpInfo, idMap: Uint8Array): number {
  const len = info.length;
  if (info.extOffset < 0) return len;
  const oneByte = info.extProfile === EXT_PROFILE_ONE_BYTE;
  const twoByte = (info.extProfile & EXT_PROFILE_TWO_BYTE_MASK) === EXT_PROFILE_TWO_BYTE;
  if (!oneByte && !twoByte) return len;
  const start = info.extOffset + 4;
  const end = start + info.extLength;
  let r = start;
  let w = start;
  while (r < end) {
    const b = buf[r]!;
    if (b === 0) {
      r++;
      continue;
    }
    let id: number;
    let hdr: number;
    let dataLen: number;
    if (oneByte) {
      id = b >> 4;
      if (id === 15) break;
      hdr = 1;
      dataLen = (b & 0x0f) + 1;
    } else {
      if (r + 2 > end) break;
      id = b;
      hdr = 2;
      dataLen = buf[r + 1]!;
    }
    if (r + hdr + dataLen > end) break;
    const nid = idMap[id] ?? 0;
    if (nid !== 0 && !(oneByte && nid > 14)) {
      // w <= r always (we only ever drop bytes), so a forward copy is safe.
      if (oneByte) buf[w] = (nid << 4) | (b & 0x0f);
      else {
        buf[w] = nid;
        buf[w + 1] = dataLen;
      }
      if (w !== r) buf.copyWithin(w + hdr, r + hdr, r + hdr + dataLen);
      w += hdr + dataLen;
    }
    r += hdr + dataLen;
  }
  let used = w - start;
  let newHeaderEnd: number;
  if (used === 0) {
    // Drop the whole block (4-byte header included) and clear X.
    newHeaderEnd = info.extOffset;
    buf[0] = buf[0]! & ~0x10;
  } else {
    while (used & 3) {
      buf[start + used] = 0;
      used++;
    }
    const words = used >> 2;
    buf[info.extOffset + 2] = words >> 8;
    buf[info.extOffset + 3] = words & 0xff;
    newHeaderEnd = start + used;
  }
  const oldHeaderEnd = info.headerLength;
  if (newHeaderEnd === oldHeaderEnd) return len;
  buf.copyWithin(newHeaderEnd, oldHeaderEnd, len);
  const newLen = len - (oldHeaderEnd - newHeaderEnd);
  info.headerLength = newHeaderEnd;
  info.payloadOffset = newHeaderEnd;
  info.length = newLen;
  if (used === 0) {
    info.extension = false;
    info.extOffset = -1;
    info.extLength = 0;
    info.extProfile = 0;
  } else info.extLength = used;
  return newLen;
}

/** Build an RTP packet (tests, benchmarks, fuzz seeds). Not for the packet path. */
export function buildRtpPacket(opts: {
  payloadType: number;
  sequence: number;
  timestamp: number;
  ssrc: number;
  marker?: boolean;
  csrcs?: number[];
  /** One-byte (RFC 8285) elements unless `twoByte`. */
  extensions?: Array<{ id: number; data: Uint8Array }>;
  twoByte?: boolean;
  payload?: Uint8Array;
  padding?: number;
}): Uint8Array {
  const csrcs = opts.csrcs ?? [];
  let extBytes = 0;
  for (const e of opts.extensions ?? []) extBytes += (opts.twoByte ? 2 : 1) + e.data.length;
  const extPadded = opts.extensions?.length ? (extBytes + 3) & ~3 : 0;
  const payload = opts.payload ?? new Uint8Array(0);
  const pad = opts.padding ?? 0;
  const total = 12 + csrcs.length * 4 + (opts.extensions?.length ? 4 + extPadded : 0) + payload.length + pad;
  const b = new Uint8Array(total);
  b[0] = 0x80 | (pad ? 0x20 : 0) | (opts.extensions?.length ? 0x10 : 0) | csrcs.length;
  b[1] = (opts.marker ? 0x80 : 0) | (opts.payloadType & 0x7f);
  setRtpSequence(b, opts.sequence);
  setRtpTimestamp(b, opts.timestamp);
  setRtpSsrc(b, opts.ssrc);
  let off = 12;
  for (const c of csrcs) {
    b[off] = c >>> 24;
    b[off + 1] = (c >>> 16) & 0xff;
    b[off + 2] = (c >>> 8) & 0xff;
    b[off + 3] = c & 0xff;
    off += 4;
  }
  if (opts.extensions?.length) {
    const profile = opts.twoByte ? EXT_PROFILE_TWO_BYTE : EXT_PROFILE_ONE_BYTE;
    b[off] = profile >> 8;
    b[off + 1] = profile & 0xff;
    b[off + 2] = (extPadded / 4) >> 8;
    b[off + 3] = (extPadded / 4) & 0xff;
    let p = off + 4;
    for (const e of opts.extensions) {
      if (opts.twoByte) {
        b[p++] = e.id;
        b[p++] = e.data.length;
      } else b[p++] = (e.id << 4) | ((e.data.length - 1) & 0x0f);
      b.set(e.data, p);
      p += e.data.length;
    }
    off += 4 + extPadded;
  }
  b.set(payload, off);
  off += payload.length;
  if (pad) b[total - 1] = pad;
  return b;
}
