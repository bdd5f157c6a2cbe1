/** Admin API of the local stage server (port 3002), driven by the API Server's `local` provider. Bearer STAGE_SERVER_SECRET. */
import { z } from 'zod';
import { StageArnSchema, StageIdSchema } from './ids.js';

export const CreateStageRequestSchema = z.object({
  name: z.string().regex(/^[A-Za-z0-9_-]{0,128}$/).optional(),
  tags: z.record(z.string().max(128), z.string().max(256)).optional(),
});
export type CreateStageRequest = z.input<typeof CreateStageRequestSchema>;

export const LocalStageSchema = z.object({
  stageArn: StageArnSchema,
  stageId: StageIdSchema,
  name: z.string(),
  tags: z.record(z.string(), z.string()),
  createdAt: z.string(),
  /** WHIP ingest URL of the stage (publisher). */
  whipUrl: z.string().url(),
  /** WHEP playback URL of the stage (viewers). */
  whepUrl: z.string().url(),
});
export type LocalStage = z.infer<typeof LocalStageSchema>;
export const CreateStageResponseSchema = z.object({ stage: LocalStageSchema });
export const ListStagesResponseSchema = z.object({ stages: z.array(LocalStageSchema) });

/** Admin routes, relative to STAGE_SERVER_URL. */
export const STAGE_SERVER_ROUTES = {
  stages: '/admin/stages',
  stage: (stageId: string) => `/admin/stages/${encodeURIComponent(stageId)}`,
  whip: (stageId: string) => `/stages/${encodeURIComponent(stageId)}/whip`,
  whep: (stageId: string) => `/stages/${encodeURIComponent(stageId)}/whep`,
} as const;
