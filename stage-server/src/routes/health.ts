/** GET /health, GET /stats, GET /metrics: unauthenticated, read-only, no secrets. */
import type { FastifyInstance } from 'fastify';
import type { HealthResponse, StageServerStatsResponse } from '@stagecast/protocol';
import type { Metrics } from '../services/metrics.js';
import type { ParticipantReporter } from '../services/ParticipantReporter.js';
import type { StageService } from '../services/StageService.js';

export interface HealthDeps {
  stages: StageService;
  reporter: ParticipantReporter;
  metrics: Metrics;
  startedAt: number;
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

    app.get('/stats', async (): Promise<StageServerStatsResponse> => {
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

    app.get('/metrics', async (_req, reply) => {
      const text = await d.metrics.scrape();
      return reply.type(d.metrics.contentType).send(text);
    });
  };
}
