/** GET /api/cost?from=&to=&stepMinutes= (x-api-key): participant-hours and the estimated IVS bill, from the store. */
import type { FastifyInstance } from 'fastify';
import { COST_MAX_SPAN_DAYS, CostQuerySchema, InvalidInput, type CostResponse } from '@stagecast/protocol';
import { checkApiKey } from '../auth.js';
import type { Services } from '../services.js';
import { authHook, iso, parse } from './common.js';

const DAY_MS = 86_400_000;

export async function costRoutes(app: FastifyInstance, s: Services): Promise<void> {
  app.addHook('onRequest', authHook((h) => checkApiKey(h, s.config.apiSecretKey), 'x-api-key'));

  app.get('/api/cost', async (req, reply): Promise<CostResponse> => {
    const q = parse(CostQuerySchema, req.query, 'query');
    const to = q.to ? Date.parse(q.to) : Date.now();
    const from = q.from ? Date.parse(q.from) : to - DAY_MS;
    if (!(from < to)) throw new InvalidInput('from must be before to', [{ path: ['from'], code: 'custom', message: 'must be before to' }]);
    if (to - from > COST_MAX_SPAN_DAYS * DAY_MS)
      throw new InvalidInput(`the window may span at most ${COST_MAX_SPAN_DAYS} days`, [{ path: ['from'], code: 'custom', message: 'window too long' }]);
    reply.header('cache-control', 'no-store');
    const r = await s.cost.report(from, to, q.stepMinutes);
    return {
      from: iso(r.from),
      to: iso(r.to),
      currency: 'USD',
      pricePerParticipantHour: r.pricePerParticipantHour,
      meteredUntil: r.meteredUntil === null ? null : iso(r.meteredUntil),
      totals: r.totals,
      stages: r.stages,
      stepMinutes: r.stepMinutes,
      series: r.series.map((p) => ({ at: iso(p.at), viewers: p.viewers, publishers: p.publishers })),
      live: r.live,
    };
  });
}
