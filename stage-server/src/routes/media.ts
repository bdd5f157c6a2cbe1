/**
 * WHIP (publisher) and WHEP (viewers) of every stage: /stages/:stageId/whip[/...] and /stages/:stageId/whep[/...].
 * A thin edge: the raw request goes to the stage's room, whose endpoints speak RFC 9725 / WHEP themselves
 * (content types, ETags, CORS), so bodies are taken raw whatever their content type.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { MediaRole } from '../services/http.js';
import type { StageService } from '../services/StageService.js';

export function mediaRoutes(stages: StageService) {
  return async function plugin(app: FastifyInstance): Promise<void> {
    // Encapsulated: only these routes take raw bodies (SDP, trickle fragments), up to 64 KiB.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: 64 * 1024 }, (_req, body, done) => done(null, body));

    const handler = (role: MediaRole) => async (req: FastifyRequest, reply: FastifyReply) => {
      const { stageId } = req.params as { stageId: string };
      const room = stages.room(stageId); // NotFound → 404
      const res = await room.handleHttp(role, {
        method: req.method,
        url: req.url,
        headers: req.headers,
        body: Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0),
      });
      void reply.status(res.status).headers(res.headers);
      return reply.send(res.body ?? '');
    };

    const methods = ['GET', 'POST', 'PATCH', 'DELETE', 'OPTIONS'] as const;
    for (const role of ['whip', 'whep'] as const) {
      app.route({ method: [...methods], url: `/stages/:stageId/${role}`, handler: handler(role) });
      app.route({ method: [...methods], url: `/stages/:stageId/${role}/*`, handler: handler(role) });
    }
  };
}
