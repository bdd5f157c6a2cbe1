/** Stage server → API Server: real viewer connections (Bearer STAGE_SERVER_SECRET). */
import type { FastifyInstance } from 'fastify';
import { ParticipantEventsRequestSchema } from '@stagecast/protocol';
import { checkBearer } from '../auth.js';
import type { Services } from '../services.js';
import { authHook, parse } from './common.js';

export async function stageServerRoutes(app: FastifyInstance, s: Services): Promise<void> {
  app.addHook('onRequest', authHook((h) => checkBearer(h, s.config.stageServerSecret), 'stage server secret'));
  app.post('/api/stage-server/participant-events', async (req) => {
    const body = parse(ParticipantEventsRequestSchema, req.body);
    return { ok: true as const, ...(await s.viewers.applyParticipantEvents(body.events)) };
  });
}
