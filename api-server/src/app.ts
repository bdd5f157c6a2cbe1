/** Builds the Fastify app from the services: routes, error mapping, metrics. No listening here. */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import { ERROR_CODES, isStagecastError, type ErrorBody, type ErrorCode } from '@stagecast/protocol';
import { costRoutes } from './routes/cost.js';
import { dashboardRoutes } from './routes/dashboard.js';
import { healthRoutes } from './routes/health.js';
import { mediaRoutes } from './routes/media.js';
import { operatorRoutes } from './routes/operator.js';
import { pageRoutes } from './routes/pages.js';
import { publicRoutes } from './routes/public.js';
import { stageServerRoutes } from './routes/stageServer.js';
import { viewerRoutes } from './routes/viewers.js';
import { attachMediaServerSocket } from './routes/ws.js';
import type { Services } from './services.js';

export const BODY_LIMIT = 64 * 1024;

const CODE_BY_STATUS = new Map<number, ErrorCode>(
  (Object.entries(ERROR_CODES) as [ErrorCode, number][]).map(([code, status]) => [status, code] as const).reverse(),
);

function errorBody(code: ErrorCode, message: string, details?: unknown): ErrorBody {
  return { error: { code, message, ...(details === undefined ? {} : { details }) } };
}

export function buildApp(s: Services): FastifyInstance {
  const app = Fastify({
    loggerInstance: s.log as FastifyBaseLogger,
    bodyLimit: BODY_LIMIT,
    logController: new LogController({ disableRequestLogging: true }),
    forceCloseConnections: 'idle',
    return503OnClosing: true,
  });

  // An empty JSON body means "no body" (POST /api/viewers/join with no options); anything else is parsed strictly.
  const json = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    if (body === '' || (typeof body === 'string' && body.trim() === '')) return done(null, undefined);
    return json(req, typeof body === 'string' ? body : body.toString('utf8'), done);
  });

  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (isStagecastError(err)) {
      if (err.retryAfter !== undefined) reply.header('retry-after', String(err.retryAfter));
      if (err.status >= 500) req.log.error({ err: err.message, code: err.code }, 'http.error');
      return reply.code(err.status).send(err.toBody());
    }
    const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) {
      req.log.error({ err }, 'http.internal_error');
      return reply.code(500).send(errorBody('INTERNAL', 'internal error'));
    }
    const code = status === 413 ? 'PAYLOAD_TOO_LARGE' : status === 415 ? 'UNSUPPORTED_MEDIA_TYPE' : (CODE_BY_STATUS.get(status) ?? 'INVALID_INPUT');
    return reply.code(status).send(errorBody(code, err.message));
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send(errorBody('NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`)));

  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    s.metrics.httpDuration.observe({ method: req.method, route, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
    if (reply.statusCode >= 400) {
      req.log[reply.statusCode >= 500 ? 'error' : 'info'](
        { method: req.method, route, status: reply.statusCode, ms: Math.round(reply.elapsedTime) },
        'http.request',
      );
    }
  });

  void app.register(async (scope) => healthRoutes(scope, s));
  void app.register(async (scope) => publicRoutes(scope, s));
  void app.register(async (scope) => viewerRoutes(scope, s));
  void app.register(async (scope) => operatorRoutes(scope, s));
  void app.register(async (scope) => stageServerRoutes(scope, s));
  void app.register(async (scope) => dashboardRoutes(scope, s));
  void app.register(async (scope) => costRoutes(scope, s));
  void app.register(async (scope) => pageRoutes(scope, s));
  if (s.config.enableMediaServer) void app.register(async (scope) => mediaRoutes(scope, s));
  attachMediaServerSocket(app, {
    bus: s.bus,
    secret: s.config.mediaServerSecret,
    enabled: s.config.enableMediaServer,
    pingIntervalMs: s.config.wsPingIntervalMs,
    log: s.log,
  });
  return app;
}
