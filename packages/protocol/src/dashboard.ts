/** Operator endpoints of the API Server (x-api-key): the stage pool and the scaling history, for the dashboard. */
import { z } from 'zod';
import { ServerIdSchema, StageArnSchema, StageIdSchema } from './ids.js';
import { PlaybackSchema } from './api.js';

const IsoDate = z.string().datetime({ offset: true });

/** GET /api/stages */
export const StageInfoSchema = z.object({
  stageArn: StageArnSchema,
  stageId: StageIdSchema,
  name: z.string(),
  state: z.enum(['active', 'draining']),
  capacity: z.number().int().positive(),
  /** Seats taken (reservations made by POST /api/viewers/join). */
  viewers: z.number().int().nonnegative(),
  /** Real subscriber connections reported by the stage server. */
  connected: z.number().int().nonnegative(),
  whipUrl: z.string().url(),
  playback: PlaybackSchema,
  createdAt: IsoDate,
  emptySince: IsoDate.nullable(),
  /** The Media Server publishing into it (null: none can); during a handover, the one still publishing too. */
  mediaServerId: ServerIdSchema.nullable().optional(),
  previousMediaServerId: ServerIdSchema.nullable().optional(),
});
export type StageInfo = z.infer<typeof StageInfoSchema>;
export const StageListResponseSchema = z.object({ stages: z.array(StageInfoSchema) });
export type StageListResponse = z.infer<typeof StageListResponseSchema>;

/** GET /api/scaling/events?limit=N (newest first) */
/** `consolidate`: a sparse stage's viewers were moved to fuller stages (its deletion follows as a `delete`). */
export const ScalingActionSchema = z.enum(['create', 'delete', 'adopt', 'drop', 'create_failed', 'delete_failed', 'consolidate']);
export type ScalingActionKind = z.infer<typeof ScalingActionSchema>;
export const ScalingEventSchema = z.object({
  id: z.number().int().positive(),
  at: IsoDate,
  action: ScalingActionSchema,
  stageArn: StageArnSchema.nullable(),
  reason: z.string(),
  detail: z.unknown().optional(),
});
export type ScalingEvent = z.infer<typeof ScalingEventSchema>;
export const ScalingEventsQuerySchema = z.object({ limit: z.coerce.number().int().min(1).max(1000).default(100) });
export const ScalingEventsResponseSchema = z.object({ events: z.array(ScalingEventSchema) });
export type ScalingEventsResponse = z.infer<typeof ScalingEventsResponseSchema>;
