/** GET /health, GET / (stats), GET /metrics. */
import type { FastifyInstance } from 'fastify';
import type { HealthResponse, MediaServerStats } from '@stagecast/protocol';
import type { Registry } from 'prom-client';

export interface HealthSource {
  health(): HealthResponse;
  stats(): MediaServerStats;
  metrics: Registry;
}

export async function healthRoutes(app: FastifyInstance, s: HealthSource): Promise<void> {
  app.get('/health', async (_req, reply) => {
    const h = s.health();
    return reply.code(h.status === 'ok' ? 200 : 503).send(h);
  });
  app.get('/', async () => s.stats());
  app.get('/metrics', async (_req, reply) => {
    const body = await s.metrics.metrics();
    return reply.header('content-type', s.metrics.contentType).send(body);
  });
}
