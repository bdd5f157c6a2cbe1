/** The Media Server's own endpoints (port 3001): GET / (stats) — for the dashboard, e2e tests and operators. */
import { z } from 'zod';
import { StageArnSchema } from './ids.js';

const IsoDate = z.string().datetime({ offset: true });

export const MediaLegStatsSchema = z.object({
  legId: z.string(),
  stageArn: StageArnSchema,
  state: z.enum(['connecting', 'connected', 'failed', 'closed']),
  participantId: z.string().optional(),
  connectedAt: IsoDate.optional(),
  rotateAt: IsoDate.optional(),
  attempts: z.number().int().nonnegative(),
  failures: z.number().int().nonnegative(),
  lastError: z.string().optional(),
  packetsSent: z.number().nonnegative(),
  bytesSent: z.number().nonnegative(),
  keyframesSent: z.number().nonnegative(),
  nacksReceived: z.number().nonnegative(),
  /** The stage's NACKs answered with a retransmission. */
  retransmitted: z.number().int().nonnegative().optional(),
  plisReceived: z.number().nonnegative(),
  fractionLost: z.number(),
  cumulativeLost: z.number(),
  rttMs: z.number().optional(),
  /** The leg has forwarded a decodable start (a keyframe) since it joined or the source changed. */
  started: z.boolean(),
});
export type MediaLegStats = z.infer<typeof MediaLegStatsSchema>;

export const IvsViolationSchema = z.object({ code: z.string(), message: z.string() });

/** What the H.264 inspector read from the broadcaster's bitstream (never from SDP). */
export const StreamReportSchema = z.object({
  profile: z.string().optional(),
  level: z.string().optional(),
  width: z.number().int().optional(),
  height: z.number().int().optional(),
  bFrames: z.boolean(),
  frames: z.number().int().nonnegative(),
  keyframes: z.number().int().nonnegative(),
  keyframeIntervalMs: z.number().optional(),
  bitrateBps: z.number().nonnegative(),
  frameRate: z.number().optional(),
  /** What IVS would refuse (the Media Server refuses such a stream at ingest when the provider is IVS). */
  ivsViolations: z.array(IvsViolationSchema),
});
export type StreamReport = z.infer<typeof StreamReportSchema>;

export const MediaServerStatsSchema = z.object({
  service: z.literal('media-server'),
  serverId: z.string(),
  uptimeSeconds: z.number(),
  publisher: z.object({
    online: z.boolean(),
    sessionId: z.string().optional(),
    since: IsoDate.optional(),
    bitrateBps: z.number().nonnegative(),
    packetsReceived: z.number().nonnegative(),
    bytesReceived: z.number().nonnegative(),
    keyframesReceived: z.number().nonnegative(),
    lost: z.number(),
    keyframeRequestsSent: z.number().nonnegative(),
    /** Loss recovery toward the broadcaster: NACK entries sent, packets recovered by them, packets given up on (optional: older Media Servers do not send them). */
    nacksSent: z.number().int().nonnegative().optional(),
    packetsRecovered: z.number().int().nonnegative().optional(),
    packetsLostForGood: z.number().int().nonnegative().optional(),
    /** RTX (RFC 4588) packets received and unwrapped. */
    rtxReceived: z.number().int().nonnegative().optional(),
    lastKeyframeAt: IsoDate.optional(),
  }),
  stream: StreamReportSchema.nullable(),
  stages: z.object({ expected: z.number().int().nonnegative(), connected: z.number().int().nonnegative() }),
  legs: z.array(MediaLegStatsSchema),
  api: z.object({
    registered: z.boolean(),
    registrationFresh: z.boolean(),
    heartbeat: z.enum(['ok', 'failing', 'unregistered']),
    heartbeatIntervalMs: z.number().int(),
    lastHeartbeatAt: IsoDate.optional(),
    websocket: z.enum(['down', 'connecting', 'up']),
    wsReconnects: z.number().int().nonnegative(),
    lastSyncAt: IsoDate.optional(),
  }),
  /** IVS ingest rules: absent when the Media Server runs without them. */
  ivs: z
    .object({
      mode: z.enum(['auto', 'enforce', 'warn', 'off']),
      /** Violations of refusing rules end the stream now (IVS_RULES=enforce, or auto with an IVS stage). */
      enforcing: z.boolean(),
      ivsTargets: z.number().int().nonnegative(),
      refusals: z.number().int().nonnegative(),
      refusalsByCode: z.record(z.string(), z.number().int().nonnegative()),
      refusedReconnects: z.number().int().nonnegative(),
      warnings: z.number().int().nonnegative(),
      warningsByCode: z.record(z.string(), z.number().int().nonnegative()),
      lastRefusal: z.object({ at: IsoDate, codes: z.array(z.string()), message: z.string(), sessionId: z.string().optional(), until: IsoDate.optional() }).optional(),
    })
    .optional(),
  /** What feeds this server's Router: the broadcaster itself, a relay from the origin, or nothing (absent: older servers). */
  ingest: z.enum(['broadcaster', 'relay', 'none']).optional(),
  /** The relay between Media Servers: this server's pull from the origin, and the relay sessions it serves. */
  relay: z
    .object({
      pull: z.object({
        state: z.enum(['idle', 'connecting', 'pulling', 'retrying']),
        origin: z.string().optional(),
        originUrl: z.string().optional(),
        since: IsoDate.optional(),
        packetsReceived: z.number().int().nonnegative(),
        /** Packets of the relay recovered by our NACKs toward the origin (the Router's source recovery, while pulling). */
        packetsRecovered: z.number().int().nonnegative(),
        pulls: z.number().int().nonnegative(),
        failures: z.number().int().nonnegative(),
        reconnects: z.number().int().nonnegative(),
        switches: z.number().int().nonnegative(),
        lastError: z.string().optional(),
      }),
      sinks: z.object({
        active: z.number().int().nonnegative(),
        served: z.number().int().nonnegative(),
        refused: z.number().int().nonnegative(),
        sessions: z.array(
          z.object({
            id: z.string(),
            since: IsoDate,
            packetsSent: z.number().int().nonnegative(),
            retransmitted: z.number().int().nonnegative(),
            nacksReceived: z.number().int().nonnegative(),
            plisReceived: z.number().int().nonnegative(),
          }),
        ),
      }),
    })
    .optional(),
  errors: z.object({
    legFailures: z.number().int().nonnegative(),
    syncFailures: z.number().int().nonnegative(),
    heartbeatFailures: z.number().int().nonnegative(),
    apiRequestErrors: z.number().int().nonnegative(),
    ingestRefused: z.number().int().nonnegative(),
    ingestConflicts: z.number().int().nonnegative(),
  }),
});
export type MediaServerStats = z.infer<typeof MediaServerStatsSchema>;
