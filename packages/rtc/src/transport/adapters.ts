/**
 * Tiny adapters from the framework-free WHIP/WHEP endpoints (`handle(req) → res`) to node:http and Fastify.
 * Fastify is only imported as a type: this file costs nothing to a process that does not use it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { problem, type HttpRequest, type HttpResponse } from './http.js';
import { MAX_SDP_BYTES } from './sdp.js';

export interface HandlesHttp {
  handle(req: HttpRequest): Promise<HttpResponse>;
}

/** Bodies above this are refused with 413 before any parsing (an SDP is limited to MAX_SDP_BYTES anyway). */
export const MAX_BODY_BYTES = 2 * MAX_SDP_BYTES;

/** A node:http request listener that serves one endpoint (mount it where the endpoint's basePath is). */
export function toNodeHttp(endpoint: HandlesHttp, opts: { maxBodyBytes?: number } = {}): (req: IncomingMessage, res: ServerResponse) => void {
  const limit = opts.maxBodyBytes ?? MAX_BODY_BYTES;
  const write = (res: ServerResponse, r: HttpResponse) => {
    if (res.headersSent) return;
    res.writeHead(r.status, r.headers);
    res.end(r.status === 204 || r.status === 304 ? undefined : r.body);
  };
  return (req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on('data', (c: Buffer) => {
      if (refused) return;
      size += c.length;
      if (size > limit) {
        refused = true;
        write(res, problem(413, 'PAYLOAD_TOO_LARGE', `body above ${limit} bytes`, { connection: 'close' }));
        req.resume();
        return;
      }
      chunks.push(c);
    });
    req.on('error', () => res.destroy());
    req.on('end', () => {
      if (refused) return;
      endpoint
        .handle({ method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body: Buffer.concat(chunks) })
        .then((r) => write(res, r))
        .catch(() => write(res, problem(500, 'INTERNAL', 'internal error')));
    });
  };
}

/**
 * Registers the endpoint's routes on a Fastify app, in an encapsulated scope whose only body parser takes every
 * content type as a raw Buffer (so the endpoint itself answers 415 with Accept-Post/Accept-Patch, and a JSON or
 * text body is never parsed by Fastify). `prefix` must be the endpoint's basePath. Routes: `prefix` and
 * `prefix/sessions/:id`, methods GET (HEAD), POST, PATCH, DELETE, OPTIONS.
 */
export async function toFastify(app: FastifyInstance, endpoint: HandlesHttp, prefix: string, opts: { maxBodyBytes?: number } = {}): Promise<void> {
  const base = prefix.replace(/\/+$/, '');
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: opts.maxBodyBytes ?? MAX_BODY_BYTES }, (_req, body, done) => done(null, body));
    const handler = async (req: FastifyRequest, reply: FastifyReply) => {
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const r = await endpoint.handle({ method: req.method, url: req.url, headers: req.headers, body });
      reply.code(r.status);
      for (const [k, v] of Object.entries(r.headers)) reply.header(k, v);
      return reply.send(r.status === 204 ? undefined : (r.body ?? ''));
    };
    const methods = ['GET', 'POST', 'PATCH', 'DELETE', 'OPTIONS'] as const;
    scope.route({ method: [...methods], url: base || '/', handler });
    scope.route({ method: [...methods], url: `${base}/sessions/:id`, handler });
  });
}
