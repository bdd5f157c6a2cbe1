/** Public endpoints: the JWKS (the stage server and Media Server verify our tokens with it) and /metrics. */
import type { FastifyInstance } from 'fastify';
import { Unauthorized } from '@stagecast/protocol';
import { checkBearer } from '../auth.js';
import type { Services } from '../services.js';

export async function publicRoutes(app: FastifyInstance, s: Services): Promise<void> {
  app.get('/.well-known/jwks.json', async (_req, reply) => {
    reply.header('cache-control', 'public, max-age=300');
    return s.tokens.jwks();
  });
  // METRICS_TOKEN, when set: a missing or wrong bearer is 401 alike (a scraper has nothing to learn from a 403).
  const token = s.config.metricsToken;
  const guard = async (req: { headers: Record<string, string | string[] | undefined> }, reply: { header(k: string, v: string): unknown }) => {
    if (token && checkBearer(req.headers, token) !== 'ok') {
      reply.header('www-authenticate', 'Bearer');
      throw new Unauthorized('Authorization: Bearer <METRICS_TOKEN> required');
    }
  };
  app.get('/metrics', { onRequest: guard }, async (_req, reply) => {
    reply.header('content-type', s.metrics.registry.contentType);
    return s.metrics.registry.metrics();
  });
}
