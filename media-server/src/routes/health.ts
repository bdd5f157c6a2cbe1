/** GET /health (liveness), GET /ready (readiness), GET / (stats), GET /metrics. */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { HealthResponse, MediaServerStats } from '@stagecast/protocol';
import type { Registry } from 'prom-client';
import { bearerToken } from '../services/IngestAuth.js';

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

const sha256 = (s: string) => createHash('sha256').update(s).digest();

/** The stats and metrics guard: a missing or wrong bearer is 401 (constant time; nothing about the token is echoed). */
export function metricsGuard(token: string | undefined) {
  const expected = token ? sha256(token) : undefined;
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (!expected) return;
    const given = bearerToken(req.headers.authorization);
    if (given !== undefined && timingSafeEqual(sha256(given), expected)) return;
    reply.header('www-authenticate', 'Bearer');
    await reply.code(401).send({ error: { code: 'UNAUTHORIZED', message: 'Authorization: Bearer <METRICS_TOKEN> required' } });
  };
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
