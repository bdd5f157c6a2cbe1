/** GET /api/dashboard (x-api-key): everything the /dashboard page shows, in one poll. */
import { z } from 'zod';
import { MediaServerInfoSchema, OriginSchema } from './api.js';
import { ScalingEventSchema, StageInfoSchema } from './dashboard.js';

/** A stage server of STAGE_PROVIDER=local as the API Server's health reads see it. */
export const StageServerInfoSchema = z.object({
  url: z.string().url(),
  /** down: two health reads in a row failed; its stages were removed and it takes no new one until a read succeeds. */
  state: z.enum(['up', 'down']),
  since: z.string().datetime({ offset: true }),
  checkedAt: z.string().datetime({ offset: true }).nullable(),
  lastError: z.string().nullable(),
  stages: z.number().int().nonnegative(),
  viewers: z.number().int().nonnegative(),
});
export type StageServerInfo = z.infer<typeof StageServerInfoSchema>;

export const DashboardResponseSchema = z.object({
  at: z.string().datetime({ offset: true }),
  stages: z.array(StageInfoSchema),
  servers: z.array(MediaServerInfoSchema),
  /** STAGE_PROVIDER=local only. */
  stageServers: z.array(StageServerInfoSchema).optional(),
  /** The broadcaster as the online Media Servers report it. */
  broadcaster: z.object({ online: z.boolean(), bitrateBps: z.number().nonnegative(), serverId: z.string().nullable() }),
  /** The Media Server holding the broadcaster's WHIP session (null: none). */
  origin: OriginSchema.nullable().optional(),
  totals: z.object({ viewers: z.number().int().nonnegative(), connected: z.number().int().nonnegative(), capacity: z.number().int().nonnegative() }),
  events: z.array(ScalingEventSchema),
  /** Requests refused since the API Server started: joins and heartbeats over the viewer key's per-address rate limit (429), joins with no seat (503). */
  refused: z.object({
    joinsRateLimited: z.number().int().nonnegative(),
    joinsCapacityExceeded: z.number().int().nonnegative(),
    heartbeatsRateLimited: z.number().int().nonnegative(),
  }),
});
export type DashboardResponse = z.infer<typeof DashboardResponseSchema>;

