/** GET /api/dashboard (x-api-key): the whole live picture for the /dashboard page in one poll. */
import type { FastifyInstance } from 'fastify';
import { ScalingEventsQuerySchema, type DashboardResponse } from '@stagecast/protocol';
import { checkApiKey } from '../auth.js';
import type { Services } from '../services.js';
import { authHook, iso, parse } from './common.js';
import { mediaServerView, scalingEventView, stageServerView, stageView } from './views.js';

export async function dashboardRoutes(app: FastifyInstance, s: Services): Promise<void> {
  app.addHook('onRequest', authHook((h) => checkApiKey(h, s.config.apiSecretKey), 'x-api-key'));

  app.get('/api/dashboard', async (req, reply): Promise<DashboardResponse> => {
    const { limit } = parse(ScalingEventsQuerySchema, { limit: 20, ...(req.query as object) }, 'query');
    reply.header('cache-control', 'no-store');
    const stages = (await s.store.listStages()).map(stageView);
    const servers = (await s.assignment.servers()).map(({ server: m, assignedStages }) => {
      const publisher = m.state === 'online' ? s.registry.publisher(m.id) : undefined;
      return mediaServerView(m, { assignedStages, ...(publisher ? { publisher } : {}) });
    });
    const stageServers = s.stageServers ? (await s.stageServers.list()).map(stageServerView) : undefined;
    const live = servers.find((m) => m.state === 'online' && m.publisherOnline);
    return {
      at: iso(Date.now()),
      stages,
      servers,
      ...(stageServers ? { stageServers } : {}),
      broadcaster: { online: !!live, bitrateBps: live?.publisher?.bitrateBps ?? 0, serverId: live?.serverId ?? null },
      origin: s.registry.origin,
      totals: {
        viewers: stages.reduce((n, st) => n + st.viewers, 0),
        connected: stages.reduce((n, st) => n + st.connected, 0),
        capacity: stages.reduce((n, st) => n + st.capacity, 0),
      },
      events: (await s.store.listScalingEvents(limit)).map(scalingEventView),
      refused: (() => {
        const limited = s.viewerLimits.counts();
        return { joinsRateLimited: limited.joins, joinsCapacityExceeded: s.viewers.refusedForCapacity, heartbeatsRateLimited: limited.heartbeats };
      })(),
    };
  });
}
