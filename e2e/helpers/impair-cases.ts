/**
 * The impairment cases (loss, jitter, a blackout), and how their figures are read and compared: shared by the scenario
 * (e2e/scenarios/impair.ts), its test (e2e/impairment.test.ts) and the bench (bench/impair.ts), so the three agree.
 */
import type { Impairment } from './udp-relay.js';

export interface ImpairCase {
  name: string;
  /** The broadcaster ⇄ Media Server hop: up = towards the Media Server (media), down = towards the broadcaster (RTCP). */
  ingest: { up?: Impairment; down?: Impairment };
  /** The stage server ⇄ viewer hop: down = towards the viewer (media), up = towards the stage server (RTCP). */
  viewer: { up?: Impairment; down?: Impairment };
  /** A total blackout of the ingest hop, this long, in the middle of the window. */
  blackoutMs?: number;
}

export const CASES: readonly ImpairCase[] = [
  { name: 'baseline', ingest: {}, viewer: {} },
  { name: 'ingest-1', ingest: { up: { loss: 0.01 } }, viewer: {} },
  // Jitter on both directions: the broadcaster's NACK/PLI feedback and its retransmissions suffer too.
  { name: 'ingest-3-jitter', ingest: { up: { loss: 0.03, jitterMs: [0, 20] }, down: { loss: 0.03, jitterMs: [0, 20] } }, viewer: {} },
  { name: 'viewer-3', ingest: {}, viewer: { down: { loss: 0.03 } } },
  { name: 'blackout', ingest: {}, viewer: {}, blackoutMs: 2000 },
];

/**
 * Chromium counts a freeze when a frame comes later than max(3 × mean frame interval, mean + 150 ms) — 200 ms at
 * the fake camera's 20 fps — but only once the next frame arrives. A picture still frozen when the window ends is in
 * no counter, so the scenario adds it (stalledAtEndMs) when the last frame is older than this.
 */
export const FREEZE_MS = 200;

/**
 * Where the loss-recovery counters are read: the Media Server's GET / (`publisher.*`, about the broadcaster) and the
 * stage server's GET /stats entry of the viewer's stage (about its publisher, the Media Server's leg). The stage
 * server receives no RTX (the leg resends on the media SSRC): null there.
 */
export const RECOVERY_FIELDS = ['nacksSent', 'recovered', 'lostForGood', 'lost', 'rtxReceived'] as const;
export type RecoveryField = (typeof RECOVERY_FIELDS)[number];
export const MEDIA_PATHS: Record<RecoveryField, string[]> = {
  nacksSent: ['publisher.nacksSent'],
  recovered: ['publisher.packetsRecovered'],
  lostForGood: ['publisher.packetsLostForGood'],
  lost: ['publisher.lost'],
  rtxReceived: ['publisher.rtxReceived'],
};
export const STAGE_PATHS: Record<RecoveryField, string[]> = {
  nacksSent: ['nacksSent'],
  recovered: ['packetsRecovered'],
  lostForGood: ['packetsLostForGood'],
  lost: ['packetsLost'],
  rtxReceived: [],
};

/** A number at a dotted path of a JSON value, or undefined. */
export function at(obj: unknown, path: string): number | undefined {
  let v: unknown = obj;
  for (const k of path.split('.')) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
  return typeof v === 'number' ? v : undefined;
}

/** The first path present in both snapshots, and the counter's increase between them (a reset counts from 0). */
export function deltaAt(before: unknown, after: unknown, paths: string[]): { value: number | null; path: string | null } {
  for (const p of paths) {
    const a = at(before, p);
    const b = at(after, p);
    if (b === undefined) continue;
    return { value: a === undefined || b < a ? b : b - a, path: p };
  }
  return { value: null, path: null };
}

export interface CaseResult {
  name: string;
  windowMs: number;
  impairment: Omit<ImpairCase, 'name'>;
  viewer: {
    framesDecoded: number;
    fps: number;
    /** fps over the window against the baseline's, % (null for the baseline itself or without one). */
    framesVsBaselinePct: number | null;
    /** Chromium's freezeCount over the window, plus 1 if still frozen at its end. */
    freezes: number;
    freezeCount: number;
    /** Chromium's totalFreezesDuration over the window, ms. */
    freezesMs: number;
    /** How long the picture had been still when the window ended, if longer than FREEZE_MS; else 0. */
    stalledAtEndMs: number;
    frozenMs: number;
    frozenPct: number;
    pliCount: number;
    nackCount: number;
    packetsLost: number;
    framesDropped: number;
  };
  broadcaster: { kbps: number; targetKbps: number; nackCount: number; pliCount: number; firCount: number; retransmittedPacketsSent: number; keyFramesEncoded: number };
  relays: { ingest: Record<string, number>; viewer: Record<string, number> };
  mediaServer: Record<RecoveryField, number | null> & { keyframeRequestsSent: number | null; legNacksReceived: number | null; legPlisReceived: number | null };
  stageServer: Record<RecoveryField, number | null> & { keyframeRequestsSent: number | null };
  /** Which path each recovery field was read from (null: not there). */
  sources: { mediaServer: Record<string, string | null>; stageServer: Record<string, string | null> };
  blackout?: { startedAt: number; returnedAt: number; firstFrameAfterMs: number | null; recoveryMs: number | null };
}

export interface GoalCheck {
  goal: string;
  met: boolean;
  got: string;
}

/**
 * The goals, per case, as written. The viewer hop at 3 % loss is held to the 3 %-loss goal (frozen
 * ≤ 2 %, frames ≥ 90 % of the no-loss run), not to "no freeze", which the issue asks at 1 %: on today's code, where
 * the stage server already answers the viewer's NACKs, 40-s and 20-s runs each showed one freeze of 205–250 ms
 * (Chromium's threshold is 200 ms at the fake camera's 20 fps) for ~60–130 packets dropped — a recovered packet
 * that arrives a little late, or a lost retransmission waiting for the next NACK round, is still a "freeze" by that
 * count. Zero would make the case fail on a hiccup the goal does not target.
 */
export function checkGoal(c: CaseResult): GoalCheck | undefined {
  const v = c.viewer;
  switch (c.name) {
    case 'ingest-1':
      return { goal: 'no freeze', met: v.freezes === 0, got: `${v.freezes} freezes, ${Math.round(v.frozenMs)} ms` };
    case 'ingest-3-jitter':
      return {
        goal: 'frozen ≤ 2 %, frames ≥ 90 % of baseline',
        met: v.frozenPct <= 2 && (v.framesVsBaselinePct ?? 0) >= 90,
        got: `frozen ${v.frozenPct} %, frames ${v.framesVsBaselinePct ?? '-'} %`,
      };
    case 'viewer-3':
      return {
        goal: 'frozen ≤ 2 %, frames ≥ 90 % of baseline',
        met: v.frozenPct <= 2 && (v.framesVsBaselinePct ?? 0) >= 90,
        got: `frozen ${v.frozenPct} % (${v.freezes} freezes), frames ${v.framesVsBaselinePct ?? '-'} %`,
      };
    case 'blackout': {
      const ms = c.blackout?.recoveryMs ?? null;
      return { goal: 'picture back ≤ 500 ms after the link returns', met: ms !== null && ms <= 500, got: ms === null ? 'not back within the window' : `${ms} ms` };
    }
    default:
      return undefined;
  }
}

/** The bench's and the test's one-line-per-case view. */
export const TABLE_HEADERS = ['case', 'goal', 'frames vs base %', 'freezes', 'frozen ms', 'frozen %', 'PLIs', 'viewer NACKs', 'MS NACKs sent', 'recovered', 'lost for good', 'lost (MS)', 'relay drops', 'recovery ms'];
export function tableRow(c: CaseResult): Array<string | number> {
  const n = (v: number | null | undefined) => (v === null || v === undefined ? '-' : v);
  const drops = (c.relays.ingest.upDropped ?? 0) + (c.relays.ingest.downDropped ?? 0) + (c.relays.viewer.upDropped ?? 0) + (c.relays.viewer.downDropped ?? 0);
  const g = checkGoal(c);
  return [
    c.name,
    g ? (g.met ? 'met' : 'MISSED') : '',
    n(c.viewer.framesVsBaselinePct),
    c.viewer.freezes,
    Math.round(c.viewer.frozenMs),
    c.viewer.frozenPct,
    c.viewer.pliCount,
    c.viewer.nackCount,
    n(c.mediaServer.nacksSent),
    n(c.mediaServer.recovered),
    n(c.mediaServer.lostForGood),
    n(c.mediaServer.lost),
    drops,
    c.blackout ? n(c.blackout.recoveryMs) : '',
  ];
}
