import type { FastifyInstance } from 'fastify';
import type { HealthResponse } from '@stagecast/protocol';
import type { Services } from '../services.js';

/**
 * GET /health is liveness: 200 while the process works — its store answers — whatever the provider or the Media
 * Servers do (restarting us would not bring IVS back). A shared store (Redis) that is away is reported, not a
 * liveness failure either: the API Server recovers by itself when it returns, and restarting every API Server at
 * once would only add an outage. GET /ready is readiness, for a load balancer: can it take
 * new work? 503 with the failing check while the store is closed, the provider failing, the pool not yet
 * reconciled, or the server draining at shutdown.
 */
export async function healthRoutes(app: FastifyInstance, s: Services): Promise<void> {
  const storeCheck = async (): Promise<{ ok: boolean; detail?: string }> => {
    try {
      await s.store.ping();
      return { ok: true };
    } catch (err) {
      return { ok: false, detail: (err as Error).message };
    }
  };
  const body = (ok: boolean, checks: HealthResponse['checks']): HealthResponse => ({
    status: ok ? 'ok' : 'degraded',
    service: 'api-server',
    uptimeSeconds: Math.round((Date.now() - s.startedAt) / 1000),
    checks,
  });

  app.get('/health', async (_req, reply) => {
    const store = await storeCheck();
    const p = await s.provider.health();
    const checks: HealthResponse['checks'] = {
      store,
      // Reported for people; not a liveness failure.
      provider: p.detail === undefined ? { ok: p.ok } : { ok: p.ok, detail: p.detail },
      reconciled: s.scaling.isReconciled ? { ok: true } : { ok: false, detail: 'store not yet reconciled with the provider' },
    };
    const live = store.ok || s.cluster !== undefined;
    return reply.code(live ? 200 : 503).send(body(store.ok, checks));
  });

  app.get('/ready', async (_req, reply) => {
    const checks: HealthResponse['checks'] = { store: await storeCheck() };
    const timeout = new Promise<{ ok: false; detail: string }>((r) => setTimeout(() => r({ ok: false, detail: 'timeout' }), 2000).unref());
    const p = await Promise.race([s.provider.health(), timeout]);
    checks.provider = p.detail === undefined ? { ok: p.ok } : { ok: p.ok, detail: p.detail };
    checks.reconciled = s.scaling.isReconciled ? { ok: true } : { ok: false, detail: 'store not yet reconciled with the provider' };
    checks.draining = s.lifecycle.draining ? { ok: false, detail: 'shutting down' } : { ok: true };
    const ok = Object.values(checks).every((c) => c.ok);
    return reply.code(ok ? 200 : 503).send(body(ok, checks));
  });
}
