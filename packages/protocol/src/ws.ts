/** Messages the API Server pushes over the Media Server WebSocket (`/ws?type=media-server`). */
import { z } from 'zod';
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
]);
export type ServerMessage = z.infer<typeof ServerMessageSchema>;
export type ServerMessageType = ServerMessage['type'];

/** WebSocket close codes we use. */
export const WS_CLOSE = { normal: 1000, goingAway: 1001, policy: 1008, internal: 1011 } as const;
