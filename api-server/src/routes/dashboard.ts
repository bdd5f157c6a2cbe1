/** GET /api/dashboard (x-api-key): the whole live picture for the /dashboard page in one poll. */
import type { FastifyInstance } from 'fastify';
import { ScalingEventsQuerySchema, type DashboardResponse, type MediaServerInfo } from '@stagecast/protocol';
import { checkApiKey } from '../auth.js';
import type { Services } from '../services.js';
import { authHook, iso, parse } from './common.js';

export async function dashboardRoutes(app: FastifyInstance, s: Services): Promise<void> {
  app.addHook('onRequest', authHook((h) => checkApiKey(h, s.config.apiSecretKey), 'x-api-key'));

  app.get('/api/dashboard', async (req, reply): Promise<DashboardResponse> => {
    const { limit } = parse(ScalingEventsQuerySchema, { limit: 20, ...(req.query as object) }, 'query');
    reply.header('cache-control', 'no-store');
    const stages = s.store.listStages().map((st) => ({
      stageArn: st.arn,
      stageId: st.id,
      name: st.name,
      state: st.state,
      capacity: st.capacity,
      viewers: st.viewers,
      connected: st.connected,
      whipUrl: st.whipUrl,
      playback: st.playback,
      createdAt: iso(st.createdAt),
      emptySince: st.emptySince === null ? null : iso(st.emptySince),
    }));
    const servers = s.registry.list().map((m): MediaServerInfo => {
      const publisher = m.state === 'online' ? s.registry.publisher(m.id) : undefined;
      return {
        serverId: m.id,
        ipAddress: m.ip,
        port: m.port,
        state: m.state,
        registeredAt: iso(m.registeredAt),
        lastHeartbeat: iso(m.lastHeartbeat),
        publisherOnline: m.publisherOnline,
        stages: m.legs,
        ...(publisher ? { publisher } : {}),
      };
    });
    const live = servers.find((m) => m.state === 'online' && m.publisherOnline);
    return {
      at: iso(Date.now()),
      stages,
      servers,
      broadcaster: { online: !!live, bitrateBps: live?.publisher?.bitrateBps ?? 0, serverId: live?.serverId ?? null },
      totals: {
        viewers: stages.reduce((n, st) => n + st.viewers, 0),
        connected: stages.reduce((n, st) => n + st.connected, 0),
        capacity: stages.reduce((n, st) => n + st.capacity, 0),
      },
      events: s.store.listScalingEvents(limit).map((e) => ({
        id: e.id,
        at: iso(e.at),
        action: e.action,
        stageArn: e.stageArn,
        reason: e.reason,
        ...(e.detail !== undefined ? { detail: e.detail } : {}),
      })),
    };
  });
}
