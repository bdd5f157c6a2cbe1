/** The admin API the API Server's `local` provider drives (Bearer STAGE_SERVER_SECRET). */
import type { FastifyInstance } from 'fastify';
import { CreateStageRequestSchema, StageIdSchema, STAGE_SERVER_ROUTES } from '@stagecast/protocol';
import { z } from 'zod';
import type { StageService } from '../services/StageService.js';
import { requireSecret } from './auth.js';
import { parseInput } from './errors.js';

const StageParams = z.object({ stageId: StageIdSchema });

export function adminRoutes(stages: StageService, secret: string) {
  return async function plugin(app: FastifyInstance): Promise<void> {
    app.addHook('onRequest', async (req) => requireSecret(req.headers.authorization, secret));

    app.post(STAGE_SERVER_ROUTES.stages, async (req, reply) => {
      const body = parseInput(CreateStageRequestSchema.strict(), req.body ?? {}, 'stage');
      const stage = await stages.create(body);
      return reply.status(201).send({ stage });
    });

    app.get(STAGE_SERVER_ROUTES.stages, async () => ({ stages: stages.list() }));

    app.get(`${STAGE_SERVER_ROUTES.stages}/:stageId`, async (req) => {
      const { stageId } = parseInput(StageParams, req.params, 'stage id');
      return { stage: stages.get(stageId) };
    });

    // Idempotent, like IVS DeleteStage is for our provider's purpose: deleting a stage that is already gone is a
    // success (204), so a provider that retries after a timeout, or reconciles, never sees a spurious error.
    app.delete(`${STAGE_SERVER_ROUTES.stages}/:stageId`, async (req, reply) => {
      const { stageId } = parseInput(StageParams, req.params, 'stage id');
      await stages.delete(stageId);
      return reply.status(204).send();
    });
  };
}
