/**
 * The broadcaster's WHIP ingest (RFC 9725): POST /whip creates a session, /whip/sessions/<id> takes PATCH
 * and DELETE. This edge authorizes POSTs (IngestAuth) and applies the one-broadcaster rule
 * (IngestService.admit), then hands the raw exchange to the transport's WhipEndpoint, which does the
 * protocol — including the check that PATCH / DELETE carry the token their session was created with.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { HttpRequest, HttpResponse } from '@stagecast/rtc';
import type { IngestEndpoint } from '../media/ports.js';
import type { IngestService } from '../services/IngestService.js';
import { sendError } from './errors.js';

export const WHIP_PATH = '/whip';
const MAX_BODY_BYTES = 64 * 1024;

export async function whipRoutes(app: FastifyInstance, d: { ingest: IngestService; endpoint: IngestEndpoint }): Promise<void> {
  await app.register(async (scope) => {
    // Every body reaches the endpoint as raw bytes: it validates SDP and fragments, and answers 415 itself.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: MAX_BODY_BYTES }, (_req, body, done) => done(null, body));

    const toRequest = (req: FastifyRequest): HttpRequest => ({
      method: req.method,
      url: req.url,
      headers: req.headers,
      body: Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0),
    });
    const send = (reply: FastifyReply, res: HttpResponse) => {
      reply.code(res.status);
      for (const [k, v] of Object.entries(res.headers)) reply.header(k, v);
      return reply.send(res.body ?? '');
    };
    const pass = async (req: FastifyRequest, reply: FastifyReply) => {
      try {
        return send(reply, await d.endpoint.handle(toRequest(req)));
      } catch (err) {
        return sendError(reply, err);
      }
    };

    scope.post(WHIP_PATH, async (req, reply) => {
      try {
        const principal = await d.ingest.authorize(req.headers.authorization);
        const r = toRequest(req);
        // A malformed offer is the client's error (400) even while another broadcaster holds the slot (409).
        const refused = d.endpoint.checkOffer(r);
        if (refused) return send(reply, refused);
        // The offer goes to the ingest service too: with IVS rules enforced it refuses an offer IVS would refuse.
        return send(reply, await d.ingest.admit(principal, () => d.endpoint.handle(r), r.body.toString('utf8')));
      } catch (err) {
        return sendError(reply, err);
      }
    });
    // OPTIONS (CORS preflight) and GET need no credentials (RFC 9725 §4.7.1, §4.1).
    scope.route({ method: ['OPTIONS', 'GET'], url: WHIP_PATH, handler: pass });
    scope.route({ method: ['OPTIONS', 'GET', 'PATCH', 'DELETE'], url: `${WHIP_PATH}/sessions/:session`, handler: pass });
  });
}
