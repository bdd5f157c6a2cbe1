/** Typed errors → status + {error:{code,message}}. */
import type { FastifyReply } from 'fastify';
import { isStagecastError } from '@stagecast/protocol';

export function sendError(reply: FastifyReply, err: unknown): FastifyReply {
  if (isStagecastError(err)) {
    if (err.code === 'UNAUTHORIZED') reply.header('www-authenticate', 'Bearer');
    if (err.retryAfter !== undefined) reply.header('retry-after', String(err.retryAfter));
    return reply.code(err.status).send(err.toBody());
  }
  reply.log.error({ err }, 'request.failed');
  return reply.code(500).send({ error: { code: 'INTERNAL', message: 'internal error' } });
}
