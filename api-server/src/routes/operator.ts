/** Operator endpoints (x-api-key): the stage pool and the scaling history, for the dashboard. */
import type { FastifyInstance } from 'fastify';
import { ScalingEventsQuerySchema, type ScalingEventsResponse, type StageListResponse } from '@stagecast/protocol';
import { checkApiKey } from '../auth.js';
import type { Services } from '../services.js';
import { authHook, iso, parse } from './common.js';

export async function operatorRoutes(app: FastifyInstance, s: Services): Promise<void> {
  app.addHook('onRequest', authHook((h) => checkApiKey(h, s.config.apiSecretKey), 'x-api-key'));

  app.get('/api/stages', async (): Promise<StageListResponse> => ({
    stages: s.store.listStages().map((st) => ({
      stageArn: st.arn,
      stageId: st.id,
      name: st.name,
      state: st.state,
      capacity: st.capacity,
      viewers: st.viewers,
      connected: st.connected,
      whipUrl: st.whipUrl,
      playback: st.playback,
      createdAt: iso(st.createdAt),
      emptySince: st.emptySince === null ? null : iso(st.emptySince),
    })),
  }));

  app.get('/api/scaling/events', async (req): Promise<ScalingEventsResponse> => {
    const { limit } = parse(ScalingEventsQuerySchema, req.query, 'query');
    return {
      events: s.store.listScalingEvents(limit).map((e) => ({
        id: e.id,
        at: iso(e.at),
        action: e.action,
        stageArn: e.stageArn,
        reason: e.reason,
        ...(e.detail !== undefined ? { detail: e.detail } : {}),
      })),
    };
  });
}
