/** Builds the Fastify app from the services: routes, error mapping, metrics. No listening here. */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { httpErrorOptions, registerErrorHandling } from '@stagecast/service';
import { costRoutes } from './routes/cost.js';
import { dashboardRoutes } from './routes/dashboard.js';
import { healthRoutes } from './routes/health.js';
import { frontDoorRoutes } from './routes/frontDoor.js';
import { mediaRoutes } from './routes/media.js';
import { operatorRoutes } from './routes/operator.js';
import { pageRoutes } from './routes/pages.js';
import { publicRoutes } from './routes/public.js';
import { stageServerRoutes } from './routes/stageServer.js';
import { viewerRoutes } from './routes/viewers.js';
import { attachMediaServerSocket } from './routes/ws.js';
import type { Services } from './services.js';

export const BODY_LIMIT = 64 * 1024;

export function buildApp(s: Services): FastifyInstance {
  const app = Fastify({
    loggerInstance: s.log as FastifyBaseLogger,
    bodyLimit: BODY_LIMIT,
    logController: new LogController({ disableRequestLogging: true }),
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    // req.ip follows X-Forwarded-For only through the proxies named in TRUSTED_PROXIES (hop by hop, from the
    // right): a client cannot choose its own address for the viewer rate limit by sending the header itself.
    ...(s.config.trustedProxies.length ? { trustProxy: s.config.trustedProxies } : {}),
    // Fastify's own refusals and Node's (431, 400) in the one error shape too.
    ...httpErrorOptions(),
  });
  registerErrorHandling(app);

  // An empty JSON body means "no body" (POST /api/viewers/join with no options); anything else is parsed strictly.
  const json = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    if (body === '' || (typeof body === 'string' && body.trim() === '')) return done(null, undefined);
    return json(req, typeof body === 'string' ? body : body.toString('utf8'), done);
  });

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
  if (s.config.enableMediaServer) {
    void app.register(async (scope) => mediaRoutes(scope, s));
    void app.register(async (scope) => frontDoorRoutes(scope, s));
  }
  attachMediaServerSocket(app, {
    bus: s.bus,
    secret: s.config.mediaServerSecret,
    enabled: s.config.enableMediaServer,
    pingIntervalMs: s.config.wsPingIntervalMs,
    log: s.log,
    presence: { opened: (id) => s.registry.socketOpened(id), closed: (id) => s.registry.socketClosed(id) },
  });
  return app;
}
