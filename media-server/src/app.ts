/** The Fastify app: thin edges over the services. */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from './logger.js';
import type { IngestEndpoint, RelayEndpoint } from './media/ports.js';
import { httpErrorOptions, registerErrorHandling } from '@stagecast/service';
import { healthRoutes, type HealthSource } from './routes/health.js';
import { relayRoutes } from './routes/relay.js';
import { whipRoutes } from './routes/whip.js';
import type { IngestService } from './services/IngestService.js';

export async function buildApp(d: { log: Logger; health: HealthSource; ingest: IngestService; endpoint: IngestEndpoint; relay: RelayEndpoint }): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: d.log.child({ component: 'http' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 64 * 1024,
    // WHIP sessions outlive their HTTP exchange; close() must not wait for idle keep-alive sockets.
    forceCloseConnections: true,
    ...httpErrorOptions(),
  });
  registerErrorHandling(app);
  await healthRoutes(app, d.health);
  await whipRoutes(app, { ingest: d.ingest, endpoint: d.endpoint });
  await relayRoutes(app, { endpoint: d.relay });
  return app;
}
