/**
 * Amazon IVS Real-Time's ingest rules at the Media Server. We never transcode, so a stream IVS would
 * refuse (it silently disconnects a publisher that sends B-frames, a non-Baseline profile or more than 720p) must
 * be refused HERE, where the broadcaster can still be told why. Pure decisions in this file; IvsGate applies them
 * to packets, IngestService to sessions.
 *
 * Which rules refuse and which only warn:
 * - refuse: PROFILE_NOT_BASELINE, RESOLUTION_EXCEEDED (read from the SPS), B_FRAMES (slice headers) — certain facts
 *   of the bitstream that IVS disconnects for; and, at POST time, an offer without H.264 or with only
 *   non-Baseline profile-level-ids (OBS always claims 42e01f, so the bitstream is the real check).
 * - warn: BITRATE_EXCEEDED, KEYFRAME_INTERVAL — measured over a window, noisy (encoders overshoot, loss skews
 *   RTP timing): shown in GET / stats, logs and metrics, never a cut.
 */
import { Unprocessable, StagecastError } from '@stagecast/protocol';
import { parseSdp, SdpError, type IvsViolation } from '@stagecast/rtc';

export type IvsRulesMode = 'auto' | 'enforce' | 'warn' | 'off';
export const IVS_RULES_MODES: readonly IvsRulesMode[] = ['auto', 'enforce', 'warn', 'off'];

/** Codes of the offer check (SDP), next to the bitstream's IvsViolationCode. */
export type IvsOfferCode = 'NO_H264_VIDEO' | 'PROFILE_NOT_BASELINE';
export type IvsRuleCode = IvsViolation['code'] | IvsOfferCode;

export interface IvsRuleViolation {
  code: IvsRuleCode;
  message: string;
}

export const REFUSING_CODES: ReadonlySet<string> = new Set(['PROFILE_NOT_BASELINE', 'B_FRAMES', 'RESOLUTION_EXCEEDED', 'NO_H264_VIDEO']);
export const isRefusing = (v: { code: string }): boolean => REFUSING_CODES.has(v.code);

const IVS_PARTITIONS = new Set(['aws', 'aws-cn', 'aws-us-gov']);

/** A stage is IVS when its ARN is in an AWS partition, or its WHIP URL is on IVS's live-video.net. */
export function isIvsTarget(t: { stageArn?: string; whipUrl?: string }): boolean {
  if (t.stageArn) {
    const partition = t.stageArn.split(':')[1];
    if (partition !== undefined && IVS_PARTITIONS.has(partition)) return true;
  }
  if (t.whipUrl) {
    try {
      const host = new URL(t.whipUrl).hostname.toLowerCase();
      if (host === 'live-video.net' || host.endsWith('.live-video.net')) return true;
    } catch {
      /* not a URL: not IVS */
    }
  }
  return false;
}

/** Pure: are the rules enforced (refuse), only reported (warn), or not looked at? */
export function ivsEnforcement(mode: IvsRulesMode, ivsTargets: number): 'enforce' | 'warn' | 'off' {
  if (mode === 'auto') return ivsTargets > 0 ? 'enforce' : 'warn';
  return mode;
}

/**
 * Pure: what IVS refuses in a WHIP offer. Only SDP that parses is judged (the endpoint answers malformed SDP
 * itself); a missing profile-level-id means 42000a (Baseline, RFC 6184 §8.1).
 */
export function checkOfferForIvs(sdp: string): IvsRuleViolation[] {
  let media;
  try {
    media = parseSdp(sdp).media;
  } catch (err) {
    if (err instanceof SdpError) return [];
    throw err;
  }
  const h264 = media.filter((m) => m.kind === 'video').flatMap((m) => [...m.codecs.values()].filter((c) => c.name === 'h264'));
  if (h264.length === 0) {
    return [{ code: 'NO_H264_VIDEO', message: 'the offer has no H.264 video; Amazon IVS needs an H.264 video track' }];
  }
  const profiles = h264.map((c) => (c.fmtp['profile-level-id'] ?? '42000a').slice(0, 2).toLowerCase());
  if (!profiles.includes('42')) {
    return [{ code: 'PROFILE_NOT_BASELINE', message: `the offer names only non-Baseline H.264 (profile-level-id ${h264.map((c) => c.fmtp['profile-level-id']).join(', ')}); Amazon IVS takes Baseline only` }];
  }
  return [];
}

/** What an OBS user reads in OBS's error dialog: what is wrong, and what to change. */
export function refusalMessage(violations: readonly IvsRuleViolation[]): string {
  const what = violations.map((v) => v.message).join('; ');
  const fixes: string[] = [];
  const codes = new Set(violations.map((v) => v.code));
  if (codes.has('PROFILE_NOT_BASELINE')) fixes.push('set the encoder Profile to "baseline"');
  if (codes.has('B_FRAMES')) fixes.push('set B-frames to 0 (x264 options: bframes=0)');
  if (codes.has('RESOLUTION_EXCEEDED')) fixes.push('set the Output (Scaled) Resolution to 1280x720 or less');
  if (codes.has('NO_H264_VIDEO')) fixes.push('publish H.264 video');
  return `stream refused: Amazon IVS would disconnect it (${what}). ${fixes.length ? `In the encoder settings, ${fixes.join(', ')}, then start streaming again.` : ''}`.trim();
}

/** The typed error a refused broadcaster gets (422 + Retry-After, code UNPROCESSABLE, violations in details). */
export function refusalError(violations: readonly IvsRuleViolation[], retryAfterS?: number): StagecastError {
  const details = { violations: violations.map((v) => ({ code: v.code, message: v.message })) };
  if (retryAfterS === undefined) return new Unprocessable(refusalMessage(violations), details);
  return new StagecastError('UNPROCESSABLE', refusalMessage(violations), { details, retryAfter: Math.max(1, Math.ceil(retryAfterS)) });
}
