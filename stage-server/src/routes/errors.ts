/** Maps every error to `{error:{code,message}}` with the status of its code; nothing else leaves the server. */
import type { FastifyError, FastifyInstance } from 'fastify';
import { InvalidInput, isStagecastError, StagecastError, type ErrorCode } from '@stagecast/protocol';
import type { z } from 'zod';

/** Parses untrusted input with a protocol schema; 400 with the issues as details. */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const r = schema.safeParse(value);
  if (!r.success) {
    throw new InvalidInput(
      `invalid ${what}`,
      r.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })),
    );
  }
  return r.data;
}

const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'INVALID_INPUT',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'INVALID_INPUT',
};

export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | StagecastError, req, reply) => {
    let e: StagecastError;
    if (isStagecastError(err)) e = err;
    else {
      const fe = err as FastifyError;
      const code = (fe.code && FASTIFY_CODES[fe.code]) ?? (fe.statusCode === 400 ? 'INVALID_INPUT' : undefined);
      e = code ? new StagecastError(code, fe.message) : new StagecastError('INTERNAL', 'internal error');
      if (!code) req.log.error({ err }, 'http.unhandled_error');
    }
    if (e.retryAfter !== undefined) void reply.header('retry-after', String(e.retryAfter));
    if (e.code === 'UNAUTHORIZED') void reply.header('www-authenticate', 'Bearer');
    return reply.status(e.status).send(e.toBody());
  });
  app.setNotFoundHandler((req, reply) =>
    reply.status(404).send(new StagecastError('NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`).toBody()),
  );
}
