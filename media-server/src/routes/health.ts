/** GET /health (liveness), GET /ready (readiness), GET / (stats), GET /metrics. */
import type { FastifyInstance } from 'fastify';
import { metricsGuard } from '@stagecast/service';
import type { HealthResponse, MediaServerStats } from '@stagecast/protocol';
import type { Registry } from 'prom-client';

export interface HealthSource {
  /** Liveness: 200 while the process works — even with the API Server away (the media keeps flowing). */
  health(): HealthResponse;
  /** Readiness: whether it can take new work (registered, events connected, not stopping). */
  ready(): HealthResponse;
  stats(): MediaServerStats;
  metrics: Registry;
  /** When set, GET / and /metrics need `Authorization: Bearer <metricsToken>`. */
  metricsToken?: string;
}

export async function healthRoutes(app: FastifyInstance, s: HealthSource): Promise<void> {
  app.get('/health', async (_req, reply) => {
    const h = s.health();
    return reply.code(h.status === 'ok' ? 200 : 503).send(h);
  });
  app.get('/ready', async (_req, reply) => {
    const r = s.ready();
    return reply.code(r.status === 'ok' ? 200 : 503).send(r);
  });
  const guard = metricsGuard(s.metricsToken);
  app.get('/', { onRequest: guard }, async () => s.stats());
  app.get('/metrics', { onRequest: guard }, async (_req, reply) => {
    const body = await s.metrics.metrics();
    return reply.header('content-type', s.metrics.contentType).send(body);
  });
}
