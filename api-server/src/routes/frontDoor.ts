/**
 * POST /whip: the WHIP front door (RFC 9725 §4.5 redirects). The broadcaster's POST is answered 307 with the
 * Media Server's /whip as Location; a 307 keeps the method, body and — in WHIP clients that follow it by hand, as
 * packages/rtc does — the Bearer token. A browser's POST is forwarded to that Media Server and its answer returned
 * (with an absolute Location), since a browser drops Authorization on a cross-origin redirect. The offer itself is
 * read and judged only by the Media Server.
 */
import type { FastifyInstance } from 'fastify';
import { API_ROUTES } from '@stagecast/protocol';
import type { Services } from '../services.js';

const MAX_BODY_BYTES = 64 * 1024;
const CORS = {
  'access-control-allow-origin': '*',
  'access-control-expose-headers': 'Location, Retry-After',
};

export async function frontDoorRoutes(app: FastifyInstance, s: Services): Promise<void> {
  // Any body (application/sdp for WHIP) is taken as bytes and left alone: the Media Server answers 415 or 400 itself.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: MAX_BODY_BYTES }, (_req, body, done) => done(null, body));

  app.post(API_ROUTES.whipFrontDoor, async (req, reply) => {
    void reply.headers(CORS);
    const t = await s.frontDoor.target(req.headers.authorization);
    // A browser (it sends Origin) would follow the 307 without its Authorization header: its POST is forwarded.
    if (req.headers.origin !== undefined) {
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const contentType = req.headers['content-type'];
      const a = await s.frontDoor.forward(t.location, { body, ...(contentType ? { contentType } : {}), ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) });
      return reply.code(a.status).headers(a.headers).send(a.body);
    }
    return reply.code(307).header('location', t.location).header('cache-control', 'no-store').send();
  });

  // CORS preflight of a browser's POST (RFC 9725 §4.8): no credentials, says what the POST may carry.
  app.options(API_ROUTES.whipFrontDoor, async (_req, reply) =>
    reply
      .code(204)
      .headers({
        ...CORS,
        allow: 'OPTIONS, POST',
        'accept-post': 'application/sdp',
        'access-control-allow-methods': 'OPTIONS, POST',
        'access-control-allow-headers': 'Authorization, Content-Type',
        'access-control-max-age': '600',
      })
      .send(),
  );
}
