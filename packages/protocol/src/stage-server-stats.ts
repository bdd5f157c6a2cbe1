/** GET /stats of the local stage server (port 3002): what each stage's media is doing. Read by dashboards and tests. */
import { z } from 'zod';
import { StageArnSchema, StageIdSchema } from './ids.js';

export const StagePublisherStateSchema = z.enum(['offline', 'connecting', 'connected']);
export type StagePublisherState = z.infer<typeof StagePublisherStateSchema>;

export const StageMediaStatsSchema = z.object({
  stageId: StageIdSchema,
  stageArn: StageArnSchema,
  publisher: z.object({
    state: StagePublisherStateSchema,
    /** The publisher token's jti. */
    participantId: z.string().optional(),
    since: z.string().optional(),
  }),
  /** WHEP viewers with a live session. */
  viewers: z.number().int().nonnegative(),
  /** From the publisher (upstream) side. */
  bitrateBps: z.number().nonnegative(),
  packetsReceived: z.number().int().nonnegative(),
  bytesReceived: z.number().int().nonnegative(),
  keyframesReceived: z.number().int().nonnegative(),
  packetsLost: z.number().int().nonnegative(),
  keyframeRequestsSent: z.number().int().nonnegative(),
  /** Loss recovery toward the publisher: NACK entries sent, packets recovered by them, packets given up on. */
  nacksSent: z.number().int().nonnegative(),
  packetsRecovered: z.number().int().nonnegative(),
  packetsLostForGood: z.number().int().nonnegative(),
  /** Summed over the viewers (downstream) side. */
  packetsSent: z.number().int().nonnegative(),
  bytesSent: z.number().int().nonnegative(),
  /** Viewers' NACKs answered with a retransmission, and those not answered (not held, or over their budget). */
  retransmitted: z.number().int().nonnegative(),
  nacksUnanswered: z.number().int().nonnegative(),
  /** Publisher sessions that took the slot from a live one (another Media Server, or OBS reconnecting); absent from older stage servers. */
  publisherHandovers: z.number().int().nonnegative().optional(),
});
export type StageMediaStats = z.infer<typeof StageMediaStatsSchema>;

export const StageServerStatsResponseSchema = z.object({
  uptimeSeconds: z.number().nonnegative(),
  totals: z.object({
    stages: z.number().int().nonnegative(),
    publishers: z.number().int().nonnegative(),
    viewers: z.number().int().nonnegative(),
  }),
  stages: z.array(StageMediaStatsSchema),
});
export type StageServerStatsResponse = z.infer<typeof StageServerStatsResponseSchema>;
