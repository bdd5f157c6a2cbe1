/** Public endpoints: the JWKS (the stage server and Media Server verify our tokens with it) and /metrics. */
import type { FastifyInstance } from 'fastify';
import type { Services } from '../services.js';

export async function publicRoutes(app: FastifyInstance, s: Services): Promise<void> {
  app.get('/.well-known/jwks.json', async (_req, reply) => {
    reply.header('cache-control', 'public, max-age=300');
    return s.tokens.jwks();
  });
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', s.metrics.registry.contentType);
    return s.metrics.registry.metrics();
  });
}
