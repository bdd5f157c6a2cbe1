/** REST bodies of the API Server (port 3000). */
import { z } from 'zod';
import { ParticipantIdSchema, ServerIdSchema, StageArnSchema, StageIdSchema, ViewerIdSchema } from './ids.js';

const IsoDate = z.string().datetime({ offset: true });

// ---- GET /health ---------------------------------------------------------------------------
export const HealthResponseSchema = z.object({
  status: z.enum(['ok', 'degraded']),
  service: z.string(),
  uptimeSeconds: z.number(),
  checks: z.record(z.string(), z.object({ ok: z.boolean(), detail: z.string().optional() })),
});
export type HealthResponse = z.infer<typeof HealthResponseSchema>;

// ---- Media Server registry (MEDIA_SERVER_SECRET) --------------------------------------------
export const RegisterRequestSchema = z.object({
  serverId: ServerIdSchema,
  ipAddress: z.string().min(1).max(255),
  port: z.number().int().min(1).max(65535),
  /** Base URL others reach this Media Server at (WHIP front door, relay between Media Servers). Default: http://ipAddress:port. */
  url: z.string().url().max(2048).optional(),
  /** Most stage legs this server takes (MAX_LEGS); absent: no limit. */
  maxLegs: z.number().int().positive().optional(),
});
export type RegisterRequest = z.input<typeof RegisterRequestSchema>;
export const RegisterResponseSchema = z.object({
  ok: z.literal(true),
  serverId: ServerIdSchema,
  heartbeatIntervalMs: z.number().int().positive(),
});
export type RegisterResponse = z.infer<typeof RegisterResponseSchema>;

/** What a Media Server says about itself on each heartbeat. */
export const LegReportSchema = z.object({
  stageArn: StageArnSchema,
  state: z.enum(['connecting', 'connected', 'failed', 'closed']),
});
/** The broadcaster's stream as the Media Server measures it (for the dashboard). */
export const PublisherReportSchema = z.object({
  bitrateBps: z.number().nonnegative(),
  width: z.number().int().nonnegative().optional(),
  height: z.number().int().nonnegative().optional(),
  frameRate: z.number().nonnegative().optional(),
  profile: z.string().max(64).optional(),
});
export type PublisherReport = z.infer<typeof PublisherReportSchema>;
export const HeartbeatRequestSchema = z.object({
  serverId: ServerIdSchema,
  publisherOnline: z.boolean().optional(),
  legs: z.array(LegReportSchema).max(10_000).optional(),
  publisher: PublisherReportSchema.optional(),
  /** The server's last heartbeat: it is shutting down, so mark it offline now rather than after 3 missed intervals. */
  stopping: z.boolean().optional(),
  /**
   * Draining (SIGTERM received): give its stages to other Media Servers. It keeps serving each stage until the new
   * owner's leg is connected (make-before-break), then sends its last heartbeat with `stopping`.
   */
  draining: z.boolean().optional(),
  /** Where this server's broadcast comes from: the broadcaster's own WHIP session (it is the origin), a relay from the origin, or none. */
  ingest: z.enum(['broadcaster', 'relay', 'none']).optional(),
});
export type HeartbeatRequest = z.input<typeof HeartbeatRequestSchema>;
export const HeartbeatResponseSchema = z.object({ ok: z.literal(true), heartbeatIntervalMs: z.number().int().positive() });

export const StageSummarySchema = z.object({
  stageArn: StageArnSchema,
  stageId: StageIdSchema,
  viewerCount: z.number().int().nonnegative(),
  capacity: z.number().int().positive().optional(),
  state: z.enum(['active', 'draining']).optional(),
  /** The one Media Server that publishes into this stage; null while no live Media Server can take it. */
  mediaServerId: ServerIdSchema.nullable().optional(),
  /**
   * Set during a handover: the Media Server that still publishes until `mediaServerId`'s leg is connected
   * (make-before-break). Both keep a leg meanwhile; every other Media Server keeps none.
   */
  previousMediaServerId: ServerIdSchema.nullable().optional(),
});
export type StageSummary = z.infer<typeof StageSummarySchema>;
/** The Media Server that holds the broadcaster's WHIP session; every other Media Server pulls the broadcast from it. */
export const OriginSchema = z.object({
  serverId: ServerIdSchema,
  /** Its base URL; the relay endpoint is `url + MEDIA_ROUTES.relay`. */
  url: z.string().url(),
});
export type Origin = z.infer<typeof OriginSchema>;
export const StagesResponseSchema = z.object({
  stages: z.array(StageSummarySchema),
  /** Absent from older API Servers; null while no Media Server has the broadcaster. */
  origin: OriginSchema.nullable().optional(),
});
export type StagesResponse = z.infer<typeof StagesResponseSchema>;

/** POST /api/media/token: a PUBLISH token for one stage, for the Media Server's WHIP leg. */
export const TokenRequestSchema = z.object({
  stageArn: StageArnSchema,
  serverId: ServerIdSchema.optional(),
  /**
   * The sender's last WHIP POST into this stage failed at the endpoint (network error or an HTTP error answer): the
   * API Server reads the stage's endpoints again at the provider before answering (IVS endpoints may change).
   */
  whipFailed: z.boolean().optional(),
});
export type TokenRequest = z.input<typeof TokenRequestSchema>;
export const TokenResponseSchema = z.object({
  /** Bearer token for `whipUrl`. Empty: send no Authorization (a STAGE_PROVIDER=whip destination without a token). */
  token: z.string(),
  whipUrl: z.string().url(),
  participantId: ParticipantIdSchema,
  expiresAt: IsoDate,
});
export type TokenResponse = z.infer<typeof TokenResponseSchema>;

export const MediaServerInfoSchema = z.object({
  serverId: ServerIdSchema,
  ipAddress: z.string(),
  port: z.number().int(),
  state: z.enum(['online', 'offline']),
  registeredAt: IsoDate,
  lastHeartbeat: IsoDate,
  publisherOnline: z.boolean(),
  stages: z.array(LegReportSchema),
  url: z.string().optional(),
  maxLegs: z.number().int().positive().optional(),
  draining: z.boolean().optional(),
  ingest: z.enum(['broadcaster', 'relay', 'none']).optional(),
  /** Stages assigned to it (it owns them, or hands them over). */
  assignedStages: z.number().int().nonnegative().optional(),
  /** From the latest heartbeat, when the Media Server sends it. */
  publisher: PublisherReportSchema.optional(),
});
export type MediaServerInfo = z.infer<typeof MediaServerInfoSchema>;
export const ServersResponseSchema = z.object({ servers: z.array(MediaServerInfoSchema) });

// ---- Broadcaster ingest (x-api-key) ---------------------------------------------------------
export const IngestTokenResponseSchema = z.object({ whipUrl: z.string().url(), token: z.string().min(1), expiresAt: IsoDate });
export type IngestTokenResponse = z.infer<typeof IngestTokenResponseSchema>;

// ---- Viewers (x-api-key) --------------------------------------------------------------------
export const ViewerJoinRequestSchema = z
  .object({
    /** Opaque label of the client (shown to operators, never trusted). */
    userId: z.string().max(128).optional(),
  })
  .strict();
export const PlaybackSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('whep'), url: z.string().url() }),
  z.object({ type: z.literal('ivs') }),
  /** STAGE_PROVIDER=whip: the stage is a WHIP destination; viewers watch there, not through Stagecast. */
  z.object({ type: z.literal('external') }),
]);
export type Playback = z.infer<typeof PlaybackSchema>;
export const ViewerJoinResponseSchema = z.object({
  viewerId: ViewerIdSchema,
  stageArn: StageArnSchema,
  stageId: StageIdSchema,
  token: z.string().min(1),
  playback: PlaybackSchema,
  expiresAt: IsoDate,
  heartbeatIntervalMs: z.number().int().positive(),
});
export type ViewerJoinResponse = z.infer<typeof ViewerJoinResponseSchema>;
/** POST /api/viewers/:id/heartbeat. An empty body is fine (older clients). */
export const ViewerHeartbeatRequestSchema = z.object({
  /** The stage this client plays now: after a move, naming the new stage confirms the switch. */
  playingStageArn: StageArnSchema.optional(),
});
export type ViewerHeartbeatRequest = z.input<typeof ViewerHeartbeatRequestSchema>;
/**
 * Consolidation moved this viewer's seat to another stage: subscribe there with this token, and only then stop the
 * old subscription (make-before-break); the next heartbeat names the new stage in `playingStageArn`. Repeated on
 * every heartbeat until then (with a fresh token each time).
 */
export const ViewerMoveSchema = z.object({
  stageArn: StageArnSchema,
  stageId: StageIdSchema,
  token: z.string().min(1),
  playback: PlaybackSchema,
  expiresAt: IsoDate,
});
export type ViewerMove = z.infer<typeof ViewerMoveSchema>;
export const ViewerHeartbeatResponseSchema = z.object({
  ok: z.literal(true),
  /** The viewer's seat. A client that does not know `move` joins again when this differs from its stage. */
  stageArn: StageArnSchema,
  move: ViewerMoveSchema.optional(),
});
export type ViewerHeartbeatResponse = z.infer<typeof ViewerHeartbeatResponseSchema>;

// ---- Stage-server → API Server: real viewer connections (STAGE_SERVER_SECRET) ---------------
export const ParticipantEventSchema = z.object({
  stageArn: StageArnSchema,
  participantId: ParticipantIdSchema,
  kind: z.enum(['subscriber', 'publisher']),
  type: z.enum(['joined', 'left']),
  timestamp: IsoDate,
});
export type ParticipantEvent = z.infer<typeof ParticipantEventSchema>;
export const ParticipantEventsRequestSchema = z.object({ events: z.array(ParticipantEventSchema).min(1).max(1000) });
