/**
 * Watches an H.264 RTP stream and reports what IVS Real-Time would refuse: profile (from the SPS in
 * the bitstream, never from SDP), B-frames (from slice headers), resolution, bitrate and keyframe
 * interval (from RTP timestamps).
 */
import { analyzeH264Payload, H264PayloadInfo, NAL_SPS } from './h264.js';
import { h264SliceType, parseH264Sps, SLICE_B, type H264Sps } from './h264-sps.js';

export interface H264StreamReport {
  /** Last SPS seen, if any. */
  sps?: H264Sps;
  profile?: string;
  level?: string;
  width?: number;
  height?: number;
  /** B slices seen in the bitstream. */
  bFramesSeen: boolean;
  bSlices: number;
  frames: number;
  keyframes: number;
  /** Interval between the last two IDR access units, from RTP timestamps. */
  keyframeIntervalMs?: number;
  maxKeyframeIntervalMs?: number;
  /** Payload bitrate over the last complete window (≥ 1 s of RTP time). */
  bitrateBps: number;
  maxBitrateBps: number;
  frameRate?: number;
  spsChanges: number;
}

export interface H264StreamInspector {
  /** Feed one RTP payload (the bytes after the RTP header, without padding) and its RTP timestamp. */
  push(buf: Uint8Array, offset: number, length: number, rtpTimestamp: number): void;
  report(): H264StreamReport;
  /** Forget everything (a new source). */
  reset(): void;
}

class Inspector implements H264StreamInspector {
  private readonly clockRate: number;
  private readonly info = new H264PayloadInfo();
  private sps: H264Sps | undefined;
  private spsKey = '';
  private spsChanges = 0;
  private bSlices = 0;
  private frames = 0;
  private keyframes = 0;
  private started = false;
  private lastTs = 0;
  private extTs = 0;
  private auTs = -1;
  private auIsKey = false;
  private lastKeyTs = -1;
  private keyIntervalMs: number | undefined;
  private maxKeyIntervalMs: number | undefined;
  private winStartTs = 0;
  private winBytes = 0;
  private winFrames = 0;
  private bitrate = 0;
  private maxBitrate = 0;
  private frameRate: number | undefined;

  constructor(clockRate: number) {
    this.clockRate = clockRate;
  }

  reset(): void {
    this.sps = undefined;
    this.spsKey = '';
    this.spsChanges = 0;
    this.bSlices = 0;
    this.frames = 0;
    this.keyframes = 0;
    this.started = false;
    this.auTs = -1;
    this.auIsKey = false;
    this.lastKeyTs = -1;
    this.keyIntervalMs = undefined;
    this.maxKeyIntervalMs = undefined;
    this.winBytes = 0;
    this.winFrames = 0;
    this.bitrate = 0;
    this.maxBitrate = 0;
    this.frameRate = undefined;
  }

  push(buf: Uint8Array, offset: number, length: number, rtpTimestamp: number): void {
    const ts = rtpTimestamp >>> 0;
    if (!this.started) {
      this.started = true;
      this.lastTs = ts;
      this.extTs = 2 ** 32;
      this.winStartTs = this.extTs;
    } else {
      // Unwrap with a signed 32-bit difference (handles wrap and mild reordering).
      this.extTs += (ts - this.lastTs) | 0;
      this.lastTs = ts;
    }
    const ext = this.extTs;
    if (ext !== this.auTs && ext > this.auTs) {
      this.auTs = ext;
      this.auIsKey = false;
      this.frames++;
      this.winFrames++;
      const span = ext - this.winStartTs;
      if (span >= this.clockRate) {
        this.bitrate = Math.round((this.winBytes * 8 * this.clockRate) / span);
        if (this.bitrate > this.maxBitrate) this.maxBitrate = this.bitrate;
        this.frameRate = ((this.winFrames - 1) * this.clockRate) / span;
        this.winStartTs = ext;
        this.winBytes = 0;
        this.winFrames = 1;
      }
    }
    this.winBytes += length > 0 ? length : 0;
    const info = this.info;
    if (!analyzeH264Payload(buf, offset, length, info)) return;
    if (info.idrStart && !this.auIsKey && ext === this.auTs) {
      this.auIsKey = true;
      this.keyframes++;
      if (this.lastKeyTs >= 0 && ext > this.lastKeyTs) {
        const ms = ((ext - this.lastKeyTs) * 1000) / this.clockRate;
        this.keyIntervalMs = ms;
        if (this.maxKeyIntervalMs === undefined || ms > this.maxKeyIntervalMs) this.maxKeyIntervalMs = ms;
      }
      this.lastKeyTs = ext;
    }
    if (info.spsOffset >= 0 && info.nalMask & (1 << NAL_SPS)) {
      const sps = parseH264Sps(buf, info.spsOffset, info.spsEnd);
      if (sps) {
        const key = `${sps.profileIdc}/${sps.constraintFlags}/${sps.levelIdc}/${sps.width}x${sps.height}/${sps.maxNumReorderFrames}`;
        if (key !== this.spsKey) {
          if (this.spsKey !== '') this.spsChanges++;
          this.spsKey = key;
          this.sps = sps;
        }
      }
    }
    if (info.sliceOffset >= 0 && h264SliceType(buf, info.sliceOffset, info.sliceEnd) === SLICE_B) this.bSlices++;
  }

  report(): H264StreamReport {
    const r: H264StreamReport = {
      bFramesSeen: this.bSlices > 0,
      bSlices: this.bSlices,
      frames: this.frames,
      keyframes: this.keyframes,
      bitrateBps: this.bitrate,
      maxBitrateBps: this.maxBitrate,
      spsChanges: this.spsChanges,
    };
    if (this.sps) {
      r.sps = this.sps;
      r.profile = this.sps.profileName;
      r.level = this.sps.level;
      r.width = this.sps.width;
      r.height = this.sps.height;
    }
    if (this.keyIntervalMs !== undefined) r.keyframeIntervalMs = this.keyIntervalMs;
    if (this.maxKeyIntervalMs !== undefined) r.maxKeyframeIntervalMs = this.maxKeyIntervalMs;
    if (this.frameRate !== undefined) r.frameRate = this.frameRate;
    return r;
  }
}

export function h264StreamInspector(opts: { clockRate?: number } = {}): H264StreamInspector {
  return new Inspector(opts.clockRate ?? 90000);
}

export type IvsViolationCode = 'PROFILE_NOT_BASELINE' | 'B_FRAMES' | 'RESOLUTION_EXCEEDED' | 'BITRATE_EXCEEDED' | 'KEYFRAME_INTERVAL';

export interface IvsViolation {
  code: IvsViolationCode;
  message: string;
  actual?: number | string;
  limit?: number | string;
}

export interface IvsLimits {
  maxPixels: number;
  maxDimension: number;
  maxBitrateBps: number;
  maxKeyframeIntervalMs: number;
  /** Tolerance on the keyframe interval for RTP-timestamp rounding (one frame at 60 fps). */
  keyframeToleranceMs: number;
}

/** IVS Real-Time ingest limits (AWS: Amazon IVS Real-Time Streaming, "Stream ingest" and "Service quotas"). */
export const IVS_LIMITS: IvsLimits = {
  maxPixels: 1280 * 720,
  maxDimension: 1280,
  maxBitrateBps: 8_500_000,
  maxKeyframeIntervalMs: 2000,
  keyframeToleranceMs: 17,
};

/**
 * What IVS would refuse in a stream, as stable codes. Only facts observed in the bitstream are judged:
 * a report without an SPS yields no profile or resolution violation.
 */
export function checkIvsRules(report: H264StreamReport, limits: IvsLimits = IVS_LIMITS): IvsViolation[] {
  const v: IvsViolation[] = [];
  if (report.sps && report.sps.profileIdc !== 66) {
    v.push({
      code: 'PROFILE_NOT_BASELINE',
      message: `H.264 profile ${report.sps.profileName} (profile_idc ${report.sps.profileIdc}); IVS takes Baseline or Constrained Baseline only`,
      actual: report.sps.profileName,
      limit: 'Constrained Baseline',
    });
  }
  if (report.bFramesSeen) {
    v.push({ code: 'B_FRAMES', message: `${report.bSlices} B slices seen; IVS does not accept B-frames`, actual: report.bSlices, limit: 0 });
  }
  if (report.width !== undefined && report.height !== undefined) {
    const pixels = report.width * report.height;
    if (pixels > limits.maxPixels || Math.max(report.width, report.height) > limits.maxDimension) {
      v.push({
        code: 'RESOLUTION_EXCEEDED',
        message: `${report.width}x${report.height} exceeds 1280x720`,
        actual: `${report.width}x${report.height}`,
        limit: '1280x720',
      });
    }
  }
  if (report.bitrateBps > limits.maxBitrateBps) {
    v.push({ code: 'BITRATE_EXCEEDED', message: `${report.bitrateBps} bps exceeds ${limits.maxBitrateBps} bps`, actual: report.bitrateBps, limit: limits.maxBitrateBps });
  }
  if (report.keyframeIntervalMs !== undefined && report.keyframeIntervalMs > limits.maxKeyframeIntervalMs + limits.keyframeToleranceMs) {
    v.push({
      code: 'KEYFRAME_INTERVAL',
      message: `keyframe interval ${Math.round(report.keyframeIntervalMs)} ms exceeds ${limits.maxKeyframeIntervalMs} ms`,
      actual: Math.round(report.keyframeIntervalMs),
      limit: limits.maxKeyframeIntervalMs,
    });
  }
  return v;
}
