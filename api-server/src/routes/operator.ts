/** Operator endpoints (x-api-key): the stage pool and the scaling history, for the dashboard. */
import type { FastifyInstance } from 'fastify';
import { ScalingEventsQuerySchema, type ScalingEventsResponse, type StageListResponse } from '@stagecast/protocol';
import { checkApiKey } from '../auth.js';
import type { Services } from '../services.js';
import { authHook, parse } from './common.js';
import { scalingEventView, stageView } from './views.js';

export async function operatorRoutes(app: FastifyInstance, s: Services): Promise<void> {
  app.addHook('onRequest', authHook((h) => checkApiKey(h, s.config.apiSecretKey), 'x-api-key'));

  app.get('/api/stages', async (): Promise<StageListResponse> => ({
    stages: (await s.store.listStages()).map(stageView),
  }));

  app.get('/api/scaling/events', async (req): Promise<ScalingEventsResponse> => {
    const { limit } = parse(ScalingEventsQuerySchema, req.query, 'query');
    return {
      events: (await s.store.listScalingEvents(limit)).map(scalingEventView),
    };
  });
}
