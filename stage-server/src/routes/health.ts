/**
 * GET /health (liveness), GET /ready (readiness), GET /stats, GET /metrics: read-only, no secrets. /stats and
 * /metrics take METRICS_TOKEN as a bearer when it is set; /health and /ready are always open.
 */
import type { FastifyInstance } from 'fastify';
import { metricsGuard } from '@stagecast/service';
import type { HealthResponse, StageServerStatsResponse } from '@stagecast/protocol';
import type { Metrics } from '../services/metrics.js';
import type { ParticipantReporter } from '../services/ParticipantReporter.js';
import type { StageService } from '../services/StageService.js';

export interface HealthDeps {
  stages: StageService;
  reporter: ParticipantReporter;
  metrics: Metrics;
  startedAt: number;
  /** Readiness: false before the stages are loaded and once stopping began (draining). */
  state: () => 'starting' | 'ready' | 'draining';
  metricsToken?: string;
}

export function healthRoutes(d: HealthDeps) {
  const uptime = () => Math.round((Date.now() - d.startedAt) / 100) / 10;
  return async function plugin(app: FastifyInstance): Promise<void> {
    app.get('/health', async (): Promise<HealthResponse> => {
      const r = d.reporter.stats();
      // The API Server being away degrades viewer accounting, not the media: still 200, reported as a check.
      const reporterOk = r.failureStreak < 3;
      return {
        status: reporterOk ? 'ok' : 'degraded',
        service: 'stage-server',
        uptimeSeconds: uptime(),
        checks: {
          stages: { ok: true, detail: `${d.stages.list().length} stages` },
          participantEvents: { ok: reporterOk, detail: `${r.queued} queued, ${r.failureStreak} consecutive failures` },
        },
      };
    });

    // Can it take new stages and viewers? Not before the stages are loaded, nor while it drains at shutdown.
    app.get('/ready', async (_req, reply) => {
      const state = d.state();
      const ok = state === 'ready';
      const body: HealthResponse = {
        status: ok ? 'ok' : 'degraded',
        service: 'stage-server',
        uptimeSeconds: uptime(),
        checks: { state: ok ? { ok: true } : { ok: false, detail: state === 'draining' ? 'draining: shutting down' : 'starting: stages not loaded yet' } },
      };
      return reply.code(ok ? 200 : 503).send(body);
    });

    const guard = metricsGuard(d.metricsToken);
    app.get('/stats', { onRequest: guard }, async (): Promise<StageServerStatsResponse> => {
      const stages = d.stages.stats();
      return {
        uptimeSeconds: uptime(),
        totals: {
          stages: stages.length,
          publishers: stages.filter((s) => s.publisher.state === 'connected').length,
          viewers: stages.reduce((n, s) => n + s.viewers, 0),
        },
        stages,
      };
    });

    app.get('/metrics', { onRequest: guard }, async (_req, reply) => {
      const text = await d.metrics.scrape();
      return reply.type(d.metrics.contentType).send(text);
    });
  };
}
