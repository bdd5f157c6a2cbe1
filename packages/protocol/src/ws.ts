/** Messages the API Server pushes over the Media Server WebSocket (`/ws?type=media-server`). */
import { z } from 'zod';
import { OriginSchema } from './api.js';
import { ServerIdSchema, StageArnSchema } from './ids.js';

const IsoDate = z.string().datetime({ offset: true });

const StageEventData = z.object({ stageArn: StageArnSchema, timestamp: IsoDate });

/** `seq` grows by one per message on a connection, so a receiver can see a gap. */
export const ServerMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('stage_created'), seq: z.number().int().optional(), data: StageEventData }),
  z.object({ type: z.literal('stage_deleted'), seq: z.number().int().optional(), data: StageEventData }),
  z.object({
    type: z.literal('media_server_offline'),
    seq: z.number().int().optional(),
    data: z.object({ serverId: ServerIdSchema, timestamp: IsoDate }),
  }),
  z.object({
    type: z.literal('media_server_online'),
    seq: z.number().int().optional(),
    data: z.object({ serverId: ServerIdSchema, timestamp: IsoDate }),
  }),
  /**
   * A stage's owner changed (also sent at creation, after stage_created). `serverId` publishes into it; during a
   * handover `previousServerId` keeps its leg until the new one is connected. Any other Media Server drops its leg.
   */
  z.object({
    type: z.literal('stage_assigned'),
    seq: z.number().int().optional(),
    data: z.object({
      stageArn: StageArnSchema,
      serverId: ServerIdSchema.nullable(),
      previousServerId: ServerIdSchema.nullable().optional(),
      timestamp: IsoDate,
    }),
  }),
  /** The Media Server holding the broadcaster changed (null: none has it). Every other Media Server pulls from it. */
  z.object({
    type: z.literal('origin_changed'),
    seq: z.number().int().optional(),
    data: z.object({ origin: OriginSchema.nullable(), timestamp: IsoDate }),
  }),
]);
export type ServerMessage = z.infer<typeof ServerMessageSchema>;
export type ServerMessageType = ServerMessage['type'];

/** WebSocket close codes we use. */
export const WS_CLOSE = { normal: 1000, goingAway: 1001, policy: 1008, internal: 1011 } as const;
