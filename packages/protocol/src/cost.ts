/** GET /api/cost (x-api-key): participant-hours and the estimated IVS bill, read from the API Server's store. */
import { z } from 'zod';
import { StageArnSchema } from './ids.js';

const IsoDate = z.string().datetime({ offset: true });

/** Longest window one request may cover. */
export const COST_MAX_SPAN_DAYS = 93;

export const CostQuerySchema = z
  .object({
    /** Start of the window (ISO 8601). Default: 24 h before `to`. Usage is kept by the minute: the minute holding `from` counts whole. */
    from: IsoDate.optional(),
    /** End of the window, exclusive (ISO 8601). Default: now. */
    to: IsoDate.optional(),
    /** Minutes per point of `series`. Default: the smallest that gives at most 240 points. */
    stepMinutes: z.coerce.number().int().min(1).max(1440).optional(),
  })
  .strict();
export type CostQuery = z.infer<typeof CostQuerySchema>;

const Usage = {
  viewerHours: z.number().nonnegative(),
  publisherHours: z.number().nonnegative(),
  participantHours: z.number().nonnegative(),
  /** participantHours × pricePerParticipantHour. */
  estimatedCost: z.number().nonnegative(),
};

export const CostResponseSchema = z.object({
  from: IsoDate,
  to: IsoDate,
  currency: z.literal('USD'),
  pricePerParticipantHour: z.number().nonnegative(),
  /** Until when usage has been metered (null: never). */
  meteredUntil: IsoDate.nullable(),
  totals: z.object({ ...Usage, participantMinutes: z.number().nonnegative() }),
  /** Per stage, stages deleted since included; most expensive first. */
  stages: z.array(z.object({ stageArn: StageArnSchema, ...Usage })),
  stepMinutes: z.number().int().positive(),
  /** Average participants connected in each step (viewers, publisher legs), oldest first; steps with none are omitted. */
  series: z.array(z.object({ at: IsoDate, viewers: z.number().nonnegative(), publishers: z.number().nonnegative() })),
  /** Right now. */
  live: z.object({
    viewers: z.number().int().nonnegative(),
    publishers: z.number().int().nonnegative(),
    participants: z.number().int().nonnegative(),
    costPerHour: z.number().nonnegative(),
  }),
});
export type CostResponse = z.infer<typeof CostResponseSchema>;
