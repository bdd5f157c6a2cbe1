/**
 * A small, bounded reader of untrusted SDP (RFC 8866) and trickle-ice-sdpfrag (RFC 8840). It never throws anything
 * but SdpError, caps size and line count, and uses no backtracking regular expressions on attacker input.
 */
import type { MediaKind, StreamParams } from '../core/types.js';

export const MAX_SDP_BYTES = 64 * 1024;
export const MAX_SDP_LINES = 2000;
const MAX_MEDIA = 16;

export class SdpError extends Error {
  override readonly name = 'SdpError';
}

export interface Codec {
  payloadType: number;
  name: string; // lower case: h264, opus, rtx, vp8 …
  clockRate: number;
  channels?: number;
  fmtp: Record<string, string>;
  rtcpFb: string[];
}

export interface MediaSection {
  kind: string; // audio, video, application …
  port: number;
  proto: string;
  formats: number[];
  mid?: string;
  direction: 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';
  codecs: Map<number, Codec>;
  extmap: Map<string, number>; // uri → id
  ssrcs: number[];
  ssrcGroups: { semantics: string; ssrcs: number[] }[];
  msid?: string;
  iceUfrag?: string;
  icePwd?: string;
  setup?: string;
  fingerprint?: string;
  candidates: string[];
  rids: string[];
  simulcast: boolean;
  rtcpMux: boolean;
}

export interface SessionDescription {
  iceUfrag?: string;
  icePwd?: string;
  fingerprint?: string;
  setup?: string;
  bundle: string[];
  media: MediaSection[];
}

function num(s: string | undefined, what: string, max = 0xffffffff): number {
  if (s === undefined || s.length === 0 || s.length > 10) throw new SdpError(`bad ${what}`);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) throw new SdpError(`bad ${what}`);
  }
  const n = Number(s);
  if (n > max) throw new SdpError(`bad ${what}`);
  return n;
}

function splitLines(text: string): string[] {
  if (text.length > MAX_SDP_BYTES) throw new SdpError('SDP too large');
  const lines = text.split('\n');
  if (lines.length > MAX_SDP_LINES) throw new SdpError('SDP has too many lines');
  return lines.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l)).filter((l) => l.length > 0);
}

function attr(line: string): [string, string] {
  const body = line.slice(2);
  const i = body.indexOf(':');
  return i < 0 ? [body, ''] : [body.slice(0, i), body.slice(i + 1)];
}

function newMedia(line: string): MediaSection {
  const parts = line.slice(2).split(' ');
  if (parts.length < 4) throw new SdpError('bad m= line');
  const formats = parts.slice(3).filter((f) => f.length > 0);
  const kind = parts[0]!;
  return {
    kind,
    port: num(parts[1]!.split('/')[0], 'm= port', 65535),
    proto: parts[2]!,
    formats: kind === 'application' ? [] : formats.map((f) => num(f, 'payload type', 127)),
    direction: 'sendrecv',
    codecs: new Map(),
    extmap: new Map(),
    ssrcs: [],
    ssrcGroups: [],
    candidates: [],
    rids: [],
    simulcast: false,
    rtcpMux: false,
  };
}

function codecOf(m: MediaSection, pt: number): Codec {
  let c = m.codecs.get(pt);
  if (!c) {
    c = { payloadType: pt, name: '', clockRate: 0, fmtp: {}, rtcpFb: [] };
    m.codecs.set(pt, c);
  }
  return c;
}

/** Parses a complete SDP (offer or answer). Throws SdpError on anything malformed. */
export function parseSdp(text: string): SessionDescription {
  const lines = splitLines(text);
  if (lines[0] !== 'v=0') throw new SdpError('SDP must start with v=0');
  const sd: SessionDescription = { bundle: [], media: [] };
  let m: MediaSection | undefined;
  for (const line of lines) {
    if (line.length < 2 || line[1] !== '=') throw new SdpError('malformed SDP line');
    const type = line[0];
    if (type === 'm') {
      if (sd.media.length >= MAX_MEDIA) throw new SdpError('too many media sections');
      m = newMedia(line);
      sd.media.push(m);
      continue;
    }
    if (type !== 'a') continue;
    const [name, value] = attr(line);
    const sp = value.indexOf(' ');
    const head = sp < 0 ? value : value.slice(0, sp);
    const rest = sp < 0 ? '' : value.slice(sp + 1);
    const target = m ?? sd;
    switch (name) {
      case 'ice-ufrag':
        target.iceUfrag = value;
        break;
      case 'ice-pwd':
        target.icePwd = value;
        break;
      case 'fingerprint':
        target.fingerprint = value;
        break;
      case 'setup':
        target.setup = value;
        break;
      case 'group':
        if (head === 'BUNDLE') sd.bundle = rest.split(' ').filter(Boolean);
        break;
      default:
        if (!m) break;
        switch (name) {
          case 'mid':
            m.mid = value;
            break;
          case 'sendrecv':
          case 'sendonly':
          case 'recvonly':
          case 'inactive':
            m.direction = name;
            break;
          case 'rtcp-mux':
            m.rtcpMux = true;
            break;
          case 'msid':
            m.msid = value;
            break;
          case 'rtpmap': {
            const pt = num(head, 'rtpmap payload type', 127);
            const [enc, rate, ch] = rest.split('/');
            const c = codecOf(m, pt);
            c.name = (enc ?? '').toLowerCase();
            c.clockRate = num(rate, 'clock rate');
            if (ch !== undefined) c.channels = num(ch, 'channels', 255);
            break;
          }
          case 'fmtp': {
            const c = codecOf(m, num(head, 'fmtp payload type', 127));
            for (const kv of rest.split(';')) {
              const eq = kv.indexOf('=');
              if (eq > 0) c.fmtp[kv.slice(0, eq).trim().toLowerCase()] = kv.slice(eq + 1).trim();
            }
            break;
          }
          case 'rtcp-fb': {
            if (head === '*') break;
            codecOf(m, num(head, 'rtcp-fb payload type', 127)).rtcpFb.push(rest);
            break;
          }
          case 'extmap': {
            const id = num(head.split('/')[0], 'extmap id', 255);
            const uri = rest.split(' ')[0];
            if (uri) m.extmap.set(uri, id);
            break;
          }
          case 'ssrc': {
            const ssrc = num(head, 'ssrc');
            if (!m.ssrcs.includes(ssrc)) m.ssrcs.push(ssrc);
            if (m.ssrcs.length > 32) throw new SdpError('too many ssrcs');
            break;
          }
          case 'ssrc-group': {
            const parts = rest.split(' ').filter(Boolean);
            m.ssrcGroups.push({ semantics: head, ssrcs: parts.map((p) => num(p, 'ssrc')) });
            break;
          }
          case 'candidate':
            if (m.candidates.length < 64) m.candidates.push(value);
            break;
          case 'rid':
            m.rids.push(head);
            break;
          case 'simulcast':
            m.simulcast = true;
            break;
        }
    }
  }
  if (sd.media.length === 0) throw new SdpError('SDP has no media section');
  for (const mm of sd.media) {
    for (const pt of mm.formats) {
      const c = mm.codecs.get(pt);
      if (c && c.name === '') throw new SdpError(`payload type ${pt} has no rtpmap`);
    }
  }
  return sd;
}

export const iceUfragOf = (sd: SessionDescription, m: MediaSection) => m.iceUfrag ?? sd.iceUfrag;
export const icePwdOf = (sd: SessionDescription, m: MediaSection) => m.icePwd ?? sd.icePwd;

/**
 * The H.264 payload type to use: the first with packetization-mode=1 in the offer's order of preference.
 * profile-level-id is deliberately ignored (OBS claims 42e01f whatever it encodes); the bitstream is inspected instead.
 */
export function pickH264(m: MediaSection): Codec | undefined {
  for (const pt of m.formats) {
    const c = m.codecs.get(pt);
    if (c && c.name === 'h264' && c.clockRate === 90000 && c.fmtp['packetization-mode'] === '1') return c;
  }
  return undefined;
}

export function pickOpus(m: MediaSection): Codec | undefined {
  for (const pt of m.formats) {
    const c = m.codecs.get(pt);
    if (c && c.name === 'opus' && c.clockRate === 48000) return c;
  }
  return undefined;
}

/** The RTX payload type that repairs `pt`, if the section has one. */
export function rtxFor(m: MediaSection, pt: number): number | undefined {
  for (const c of m.codecs.values()) if (c.name === 'rtx' && c.fmtp.apt === String(pt)) return c.payloadType;
  return undefined;
}

/** StreamParams of the codec chosen in one media section. `ssrc` 0 = learn it from the packets. */
export function streamParams(m: MediaSection, codec: Codec, ssrc = 0): StreamParams {
  const rtx = rtxFor(m, codec.payloadType);
  const sets = codec.name === 'h264' ? parseSpropParameterSets(codec.fmtp['sprop-parameter-sets']) : undefined;
  return {
    kind: m.kind as MediaKind,
    ssrc,
    payloadType: codec.payloadType,
    clockRate: codec.clockRate,
    extensions: Object.fromEntries(m.extmap),
    rtcpFeedback: codec.rtcpFb.slice(),
    ...(rtx === undefined ? {} : { rtxPayloadType: rtx }),
    ...(sets === undefined ? {} : { parameterSets: sets }),
  };
}

const MAX_PARAMETER_SET_BYTES = 256;

/**
 * RFC 6184 §8.1 sprop-parameter-sets: base64 NAL units separated by commas. Keeps the first SPS and the first PPS
 * when both are well-formed (forbidden bit clear, within size), else nothing: a half-usable pair would only break a
 * decoder that already had the in-band ones.
 */
export function parseSpropParameterSets(value: string | undefined): Uint8Array[] | undefined {
  if (value === undefined || value.length === 0 || value.length > 4 * MAX_PARAMETER_SET_BYTES) return undefined;
  let sps: Uint8Array | undefined;
  let pps: Uint8Array | undefined;
  for (const part of value.split(',', 8)) {
    const t = part.trim();
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(t)) return undefined;
    const nal = new Uint8Array(Buffer.from(t, 'base64'));
    if (nal.length < 2 || nal.length > MAX_PARAMETER_SET_BYTES || (nal[0]! & 0x80) !== 0) return undefined;
    const type = nal[0]! & 0x1f;
    if (type === 7) sps ??= nal;
    else if (type === 8) pps ??= nal;
  }
  return sps && pps ? [sps, pps] : undefined;
}

/** The first SSRC of a section that is not a repair (RTX/FEC) SSRC. */
export function primarySsrc(m: MediaSection): number {
  const repair = new Set<number>();
  for (const g of m.ssrcGroups) if ((g.semantics === 'FID' || g.semantics === 'FEC-FR') && g.ssrcs.length > 1) g.ssrcs.slice(1).forEach((s) => repair.add(s));
  return m.ssrcs.find((s) => !repair.has(s)) ?? 0;
}

export interface SdpFrag {
  iceUfrag?: string;
  icePwd?: string;
  candidates: { mid?: string; candidate: string }[];
  endOfCandidates: boolean;
}

/** Parses an application/trickle-ice-sdpfrag body (RFC 8840). */
export function parseSdpFrag(text: string): SdpFrag {
  const lines = splitLines(text);
  const frag: SdpFrag = { candidates: [], endOfCandidates: false };
  let mid: string | undefined;
  for (const line of lines) {
    if (line.length < 2 || line[1] !== '=') throw new SdpError('malformed sdpfrag line');
    if (line[0] === 'm') {
      mid = undefined;
      continue;
    }
    if (line[0] !== 'a') continue;
    const [name, value] = attr(line);
    if (name === 'ice-ufrag') frag.iceUfrag = value;
    else if (name === 'ice-pwd') frag.icePwd = value;
    else if (name === 'mid') mid = value;
    else if (name === 'end-of-candidates') frag.endOfCandidates = true;
    else if (name === 'candidate') {
      if (value.split(' ').length < 8) throw new SdpError('malformed candidate');
      if (frag.candidates.length >= 64) throw new SdpError('too many candidates');
      frag.candidates.push({ ...(mid === undefined ? {} : { mid }), candidate: value });
    }
  }
  return frag;
}
