/** One API Server: services + app, started in order and stopped in reverse. Used by index.ts and by tests. */
import type { FastifyInstance } from 'fastify';
import { buildApp } from './app.js';
import type { Config } from './config.js';
import type { Logger } from './logger.js';
import type { StageProvider } from './providers/provider.js';
import { createServices, type Services } from './services.js';

export interface ApiServer {
  app: FastifyInstance;
  services: Services;
  /** The bound port (after start). */
  port: number;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export async function createApiServer(config: Config, log: Logger, opts: { provider?: StageProvider } = {}): Promise<ApiServer> {
  const services = await createServices(config, log, opts);
  const app = buildApp(services);
  let stopped = false;
  const server: ApiServer = {
    app,
    services,
    port: 0,
    async start() {
      await services.cluster?.start();
      services.registry.start();
      await services.assignment.start();
      services.viewers.start();
      services.viewerLimits.start();
      await services.cost.start();
      // Before the first reconcile: a stage server found down leaves the listing, so the pool can still start.
      services.stageServers?.start();
      // Reconciles with the provider before the first plan (retried on each tick if the provider is away).
      await services.scaling.start();
      services.endpoints?.start();
      services.consolidation.start();
      await app.listen({ port: config.port, host: config.host });
      const addr = app.server.address();
      server.port = typeof addr === 'object' && addr ? addr.port : config.port;
      // PORT=0 (tests): the default public URL names the port actually bound.
      if (config.port === 0 && config.publicUrl === 'http://127.0.0.1:0') config.publicUrl = `http://127.0.0.1:${server.port}`;
      log.info({ port: server.port, host: config.host, provider: services.provider.kind }, 'server.listening');
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      services.lifecycle.draining = true;
      await app.close(); // sockets first: no request may reach a stopping service
      services.consolidation.stop();
      await services.endpoints?.stop();
      await services.scaling.stop();
      await services.stageServers?.stop();
      await services.cost.stop();
      services.viewers.stop();
      services.viewerLimits.stop();
      await services.assignment.stop();
      services.registry.stop();
      services.provider.stop();
      await services.cluster?.stop();
      await services.store.close();
      await services.tokens.close();
      log.info('server.stopped');
    },
  };
  return server;
}
