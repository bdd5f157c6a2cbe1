/** /api/media/*: the Media Server's endpoints (MEDIA_SERVER_SECRET), plus the two client ones (x-api-key). */
import type { FastifyInstance } from 'fastify';
import {
  HeartbeatRequestSchema,
  RegisterRequestSchema,
  TokenRequestSchema,
  type HeartbeatRequest,
  type IngestTokenResponse,
  type RegisterResponse,
  type StagesResponse,
  type TokenResponse,
} from '@stagecast/protocol';
import { checkApiKey, checkMediaServerSecret, eitherVerdict } from '../auth.js';
import type { Services } from '../services.js';
import { authHook, iso, parse } from './common.js';
import { mediaServerView } from './views.js';

export async function mediaRoutes(app: FastifyInstance, s: Services): Promise<void> {
  await app.register(async (scope) => {
    scope.addHook('onRequest', authHook((h) => checkMediaServerSecret(h, s.config.mediaServerSecret), 'media server secret'));

    scope.post('/api/media/register', async (req): Promise<RegisterResponse> => {
      const body = parse(RegisterRequestSchema, req.body);
      await s.registry.register(body);
      return { ok: true, serverId: body.serverId, heartbeatIntervalMs: s.registry.heartbeatIntervalMs };
    });

    scope.post('/api/media/heartbeat', async (req) => {
      const body = parse(HeartbeatRequestSchema, req.body as HeartbeatRequest);
      await s.registry.heartbeat(body);
      return { ok: true as const, heartbeatIntervalMs: s.registry.heartbeatIntervalMs };
    });


    scope.post('/api/media/token', async (req): Promise<TokenResponse> => {
      const body = parse(TokenRequestSchema, req.body);
      const t = await s.publishTokens.stageToken(body.stageArn, body.serverId, { whipFailed: body.whipFailed === true });
      return { token: t.token, whipUrl: t.whipUrl, participantId: t.participantId, expiresAt: iso(t.expiresAt) };
    });
  });

  // The stage list is read-only: the Media Server reads it with its secret, the operator with x-api-key (the seed's
  // deployment guide checks the API Server with `curl -H "x-api-key: …" /api/media/stages`). The viewer key opens nothing here.
  await app.register(async (scope) => {
    scope.addHook(
      'onRequest',
      authHook((h) => eitherVerdict(checkMediaServerSecret(h, s.config.mediaServerSecret), checkApiKey(h, s.config.apiSecretKey)), 'media server secret or x-api-key'),
    );
    scope.get('/api/media/stages', async (): Promise<StagesResponse> => ({
      stages: (await s.store.listStages())
        .filter((st) => st.state === 'active')
        .map((st) => ({ stageArn: st.arn, stageId: st.id, viewerCount: st.viewers, capacity: st.capacity, state: st.state })),
    }));
  });

  await app.register(async (scope) => {
    scope.addHook('onRequest', authHook((h) => checkApiKey(h, s.config.apiSecretKey), 'x-api-key'));

    scope.get('/api/media/servers', async () => ({
      servers: (await s.registry.list()).map((m) => mediaServerView(m)),
    }));

    scope.post('/api/media/ingest-token', async (): Promise<IngestTokenResponse> => {
      const t = await s.publishTokens.ingestToken();
      return { whipUrl: t.whipUrl, token: t.token, expiresAt: iso(t.expiresAt) };
    });
  });
}
