/**
 * One error shape for every HTTP answer of every app: `{error:{code,message}}` with the status of its code
 * (packages/protocol's closed list). That covers our typed errors, Fastify's own (`FST_ERR_*`: bad JSON, body too
 * large, unsupported content type, an over-long path parameter, a malformed URL), unknown routes, and the errors
 * Node's HTTP server answers before Fastify sees a request (431 header fields too large, 408, 400 unparsable).
 */
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyServerOptions } from 'fastify';
import { ERROR_CODES, StagecastError, isStagecastError, type ErrorBody, type ErrorCode } from '@stagecast/protocol';

export function errorBody(code: ErrorCode, message: string, details?: unknown): ErrorBody {
  return { error: { code, message, ...(details === undefined ? {} : { details }) } };
}

/** Fastify's codes whose status alone would not name them well. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_MAX_PARAM_LENGTH: 'URI_TOO_LONG',
  FST_ERR_BAD_URL: 'INVALID_INPUT',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'INVALID_INPUT',
  FST_ERR_CTP_INVALID_JSON_BODY: 'INVALID_INPUT',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'INVALID_INPUT',
};

const CODE_BY_STATUS = new Map<number, ErrorCode>(
  (Object.entries(ERROR_CODES) as [ErrorCode, number][]).map(([code, status]) => [status, code] as const).reverse(),
);

/** Any error → a typed one. Errors we did not make and that are not a client's 4xx become INTERNAL ('internal error'). */
export function toStagecastError(err: unknown): StagecastError {
  if (isStagecastError(err)) return err;
  const fe = err as Partial<FastifyError> | undefined;
  const status = typeof fe?.statusCode === 'number' ? fe.statusCode : 500;
  const code = (fe?.code ? FASTIFY_CODES[fe.code] : undefined) ?? (status >= 400 && status < 500 ? (CODE_BY_STATUS.get(status) ?? 'INVALID_INPUT') : undefined);
  if (!code) return new StagecastError('INTERNAL', 'internal error', { cause: err });
  const message = status === 400 && fe?.code === 'FST_ERR_VALIDATION' ? `invalid request: ${fe.message ?? ''}` : (fe?.message ?? 'bad request');
  return new StagecastError(code, message, { cause: err });
}

/** Sends `err` in the one shape, with its headers (Retry-After, WWW-Authenticate). Logs what is not a client's error. */
export function sendError(reply: FastifyReply, err: unknown): FastifyReply {
  const e = toStagecastError(err);
  if (e.code === 'INTERNAL' && !isStagecastError(err)) reply.log.error({ err }, 'http.internal_error');
  else if (e.status >= 500) reply.log.warn({ code: e.code, err: e.message }, 'http.error');
  if (e.retryAfter !== undefined) void reply.header('retry-after', String(e.retryAfter));
  if (e.code === 'UNAUTHORIZED') void reply.header('www-authenticate', 'Bearer');
  return reply.code(e.status).type('application/json; charset=utf-8').send(e.toBody());
}

/** The answer Node's HTTP server gives a request it cannot parse, written on the socket (no Fastify request exists). */
export function clientErrorResponse(err: NodeJS.ErrnoException): string {
  const [status, code, message]: [number, ErrorCode, string] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'HEADERS_TOO_LARGE', 'request header fields too large']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'REQUEST_TIMEOUT', 'request not received in time']
        : [400, 'INVALID_INPUT', 'malformed HTTP request'];
  const body = JSON.stringify(errorBody(code, message));
  const reason = { 400: 'Bad Request', 408: 'Request Timeout', 431: 'Request Header Fields Too Large' }[status];
  return `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}

/**
 * Options every app passes to Fastify(): its clientError handler (Node's 431/400/408 in our shape), frameworkErrors
 * (FST_ERR_BAD_URL, FST_ERR_MAX_PARAM_LENGTH — answered by Fastify before any handler, so the error handler never
 * sees them), and no built-in 503 while closing (Fastify writes it in its own shape; registerErrorHandling answers it).
 */
export function httpErrorOptions(): Pick<FastifyServerOptions, 'clientErrorHandler' | 'frameworkErrors' | 'return503OnClosing'> {
  return {
    return503OnClosing: false,
    clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket) {
      // A reset connection has nobody to answer.
      if (err.code === 'ECONNRESET' || socket.destroyed) return;
      if (socket.writable) socket.write(clientErrorResponse(err));
      socket.destroy(err);
    },
    frameworkErrors(err, _req, reply) {
      void sendError(reply, err);
    },
  };
}

/** The error handler, the 404 of unknown routes and the 503 of a closing server. Register before the routes. */
export function registerErrorHandling(app: FastifyInstance): void {
  let closing = false;
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  // A request that arrives while the server closes: the load balancer should try another instance.
  app.addHook('onRequest', (_req, reply, done) => {
    if (!closing) return done();
    void reply.header('connection', 'close');
    void sendError(reply, new StagecastError('CAPACITY_EXCEEDED', 'the server is stopping', { retryAfter: 5 }));
  });
  app.setErrorHandler((err, _req, reply) => sendError(reply, err));
  app.setNotFoundHandler((req, reply) => sendError(reply, new StagecastError('NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`)));
}
