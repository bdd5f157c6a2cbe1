/** /api/viewers/*: join, heartbeat, leave (x-api-key). */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { StagecastError, ViewerHeartbeatRequestSchema, ViewerIdSchema, ViewerJoinRequestSchema, type ViewerHeartbeatResponse, type ViewerJoinResponse } from '@stagecast/protocol';
import { z } from 'zod';
import { checkApiKey } from '../auth.js';
import type { Services } from '../services.js';
import type { LimitedKind } from '../services/ViewerRateLimiter.js';
import { authHook, iso, parse } from './common.js';

const IdParams = z.object({ id: ViewerIdSchema });

export async function viewerRoutes(app: FastifyInstance, s: Services): Promise<void> {
  // The API key, or the narrower VIEWER_API_KEY that can only join/heartbeat/leave (safe in /watch links).
  const viewerKey = s.config.viewerApiKey;
  app.addHook(
    'onRequest',
    authHook((h) => {
      const v = checkApiKey(h, s.config.apiSecretKey);
      return v === 'wrong' && viewerKey ? checkApiKey(h, viewerKey) : v;
    }, 'x-api-key'),
  );

  // The viewer key is public: what is done with it is rate-limited per client address (req.ip: the TCP peer, or
  // X-Forwarded-For through TRUSTED_PROXIES only). The operator's key is not limited.
  const limit = (kind: LimitedKind) => async (req: FastifyRequest) => {
    if (!viewerKey || checkApiKey(req.headers, s.config.apiSecretKey) === 'ok') return;
    const wait = s.viewerLimits.check(kind, req.ip);
    if (wait !== undefined) {
      req.log.debug({ kind, ip: req.ip, retryAfterS: wait }, 'viewer.rate_limited'); // a flood must not flood the log: /metrics counts them
      throw new StagecastError('RATE_LIMITED', `too many ${kind === 'join' ? 'joins' : 'heartbeats'} from this address with the viewer key: retry in ${wait} s`, { retryAfter: wait });
    }
  };

  app.post('/api/viewers/join', { onRequest: limit('join') }, async (req, reply): Promise<ViewerJoinResponse> => {
    const body = parse(ViewerJoinRequestSchema, req.body ?? {});
    const j = await s.viewers.join(body.userId);
    reply.code(201);
    return { ...j, expiresAt: iso(j.expiresAt) };
  });

  app.post('/api/viewers/:id/heartbeat', { onRequest: limit('heartbeat') }, async (req): Promise<ViewerHeartbeatResponse> => {
    const { id } = parse(IdParams, req.params, 'viewer id');
    const body = parse(ViewerHeartbeatRequestSchema, req.body ?? {});
    const hb = await s.viewers.heartbeat(id, body.playingStageArn);
    return { ok: true, stageArn: hb.stageArn, ...(hb.move ? { move: { ...hb.move, expiresAt: iso(hb.move.expiresAt) } } : {}) };
  });

  app.delete('/api/viewers/:id', async (req, reply) => {
    const { id } = parse(IdParams, req.params, 'viewer id');
    await s.viewers.leave(id);
    return reply.code(204).send();
  });
}
