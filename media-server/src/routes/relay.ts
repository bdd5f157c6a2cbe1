/**
 * The relay between Media Servers (MEDIA_ROUTES.relay): another Media Server POSTs a recvonly WHEP offer with the
 * Media Server secret as Bearer and gets 201 + SDP + Location; DELETE (same Bearer) ends the session. The endpoint
 * checks the secret (constant time) and the SDP; this edge only hands it the raw exchange.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { MEDIA_ROUTES } from '@stagecast/protocol';
import type { HttpResponse } from '@stagecast/rtc';
import type { RelayEndpoint } from '../media/ports.js';
import { sendError } from './errors.js';

const MAX_BODY_BYTES = 64 * 1024;

export async function relayRoutes(app: FastifyInstance, d: { endpoint: RelayEndpoint }): Promise<void> {
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: MAX_BODY_BYTES }, (_req, body, done) => done(null, body));
    const send = (reply: FastifyReply, res: HttpResponse) => {
      reply.code(res.status);
      for (const [k, v] of Object.entries(res.headers)) reply.header(k, v);
      return reply.send(res.body ?? '');
    };
    const pass = async (req: FastifyRequest, reply: FastifyReply) => {
      try {
        return send(reply, await d.endpoint.handle({ method: req.method, url: req.url, headers: req.headers, body: Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0) }));
      } catch (err) {
        return sendError(reply, err);
      }
    };
    scope.route({ method: ['OPTIONS', 'GET', 'POST'], url: MEDIA_ROUTES.relay, handler: pass });
    scope.route({ method: ['OPTIONS', 'GET', 'PATCH', 'DELETE'], url: `${MEDIA_ROUTES.relay}/sessions/:session`, handler: pass });
  });
}
