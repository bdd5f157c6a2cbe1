/** The guard in front of an app's stats page and /metrics: METRICS_TOKEN as a bearer, when one is set. */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { bearerToken, secretEquals } from './auth.js';

/** Missing or wrong bearer → 401 JSON, compared in constant time; nothing about the token is echoed. No token: open. */
export function metricsGuard(token: string | undefined) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (!token) return;
    const given = bearerToken(req.headers.authorization);
    if (given !== undefined && secretEquals(given, token)) return;
    reply.header('www-authenticate', 'Bearer');
    await reply.code(401).send({ error: { code: 'UNAUTHORIZED', message: 'Authorization: Bearer <METRICS_TOKEN> required' } });
  };
}
