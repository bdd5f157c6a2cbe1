import type { FastifyInstance } from 'fastify';
import type { HealthResponse } from '@stagecast/protocol';
import type { Services } from '../services.js';

/** GET /health: the store and the provider; 503 when degraded. */
export async function healthRoutes(app: FastifyInstance, s: Services): Promise<void> {
  app.get('/health', async (_req, reply) => {
    const checks: HealthResponse['checks'] = {};
    try {
      s.store.ping();
      checks.store = { ok: true };
    } catch (err) {
      checks.store = { ok: false, detail: (err as Error).message };
    }
    const timeout = new Promise<{ ok: false; detail: string }>((r) => setTimeout(() => r({ ok: false, detail: 'timeout' }), 2000).unref());
    const p = await Promise.race([s.provider.health(), timeout]);
    checks.provider = p.detail === undefined ? { ok: p.ok } : { ok: p.ok, detail: p.detail };
    checks.reconciled = s.scaling.isReconciled ? { ok: true } : { ok: false, detail: 'store not yet reconciled with the provider' };
    const ok = Object.values(checks).every((c) => c.ok);
    const body: HealthResponse = {
      status: ok ? 'ok' : 'degraded',
      service: 'api-server',
      uptimeSeconds: Math.round((Date.now() - s.startedAt) / 1000),
      checks,
    };
    return reply.code(ok ? 200 : 503).send(body);
  });
}
