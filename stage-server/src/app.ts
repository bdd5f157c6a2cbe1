/**
 * Builds the stage server from its config: services, HTTP edge and their lifecycle. index.ts only reads the config,
 * calls this and wires signals; tests call it in-process.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { httpErrorOptions, ParticipantTokenVerifier } from '@stagecast/service';
import type { AddressInfo } from 'node:net';
import type { Config } from './config.js';
import { adminRoutes } from './routes/admin.js';
import { registerErrorHandling } from './routes/errors.js';
import { healthRoutes } from './routes/health.js';
import { mediaRoutes } from './routes/media.js';
import { createMetrics } from './services/metrics.js';
import { ParticipantReporter } from './services/ParticipantReporter.js';
import { IdleRoom, type RoomFactory } from './services/room.js';
import type { MediaPlane } from './services/media-plane.js';
import { StageRoom } from './services/StageRoom.js';
import { StageService } from './services/StageService.js';
import { FileStageStore, stagesFilePath } from './store/file.js';

export interface StageServer {
  app: FastifyInstance;
  stages: StageService;
  reporter: ParticipantReporter;
  tokens: ParticipantTokenVerifier;
  /** Listens on config.host:config.port; resolves with the bound port. */
  start(): Promise<number>;
  /** Graceful: ends every session, flushes participant events, closes the HTTP server. Idempotent. */
  stop(): Promise<void>;
  publicUrl(): string;
}

export interface StageServerOverrides {
  /** The media plane every stage's room runs on (the composition root passes packages/rtc's). */
  plane?: MediaPlane;
  /** Replaces the rooms altogether (tests); default: a StageRoom on `plane`, or an IdleRoom without one. */
  roomFactory?: (deps: RoomDeps) => RoomFactory;
  reporter?: Partial<ConstructorParameters<typeof ParticipantReporter>[0]>;
}

export interface RoomDeps {
  config: Config;
  tokens: ParticipantTokenVerifier;
  reporter: ParticipantReporter;
  logger: Logger;
  publicUrl: () => string;
}

export function createStageServer(config: Config, logger: Logger, overrides: StageServerOverrides = {}): StageServer {
  let boundPort: number | undefined;
  const publicUrl = () => config.publicUrl ?? `http://127.0.0.1:${boundPort ?? config.port}`;

  const tokens = new ParticipantTokenVerifier({ jwksUrl: config.jwksUrl });
  const reporter = new ParticipantReporter({
    url: config.participantEventsUrl,
    secret: config.stageServerSecret,
    logger,
    ...overrides.reporter,
  });
  const plane = overrides.plane;
  const roomFactory: RoomFactory = overrides.roomFactory
    ? overrides.roomFactory({ config, tokens, reporter, logger, publicUrl })
    : plane
      ? (stage) =>
          new StageRoom({
            stage,
            plane,
            tokens,
            reporter,
            logger,
            publicUrl,
            maxViewers: config.maxViewersPerStage,
            bindAddress: config.rtcBindAddress,
          })
      : (stage) => new IdleRoom(stage);
  const stages = new StageService({
    store: new FileStageStore(stagesFilePath(config.dataDir)),
    publicUrl,
    roomFactory,
    logger,
  });
  const metrics = createMetrics({ stages: () => stages.stats(), reporter: () => reporter.stats() });

  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    // Per-request lines are noise next to the media events; errors are still logged by the error handler.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 64 * 1024,
    // Media sessions are long-lived; close() must not wait for keep-alive sockets of idle HTTP clients.
    forceCloseConnections: true,
    ...httpErrorOptions(),
  });
  registerErrorHandling(app);
  void app.register(adminRoutes(stages, config.stageServerSecret));
  void app.register(mediaRoutes(stages));
  let stopping: Promise<void> | undefined;
  let loaded = false;
  void app.register(
    healthRoutes({
      stages,
      reporter,
      metrics,
      startedAt: Date.now(),
      state: () => (stopping ? 'draining' : loaded ? 'ready' : 'starting'),
      ...(config.metricsToken ? { metricsToken: config.metricsToken } : {}),
    }),
  );

  return {
    app,
    stages,
    reporter,
    tokens,
    publicUrl,
    async start() {
      await stages.start();
      loaded = true;
      reporter.start();
      await app.listen({ port: config.port, host: config.host });
      boundPort = (app.server.address() as AddressInfo).port;
      return boundPort;
    },
    stop() {
      stopping ??= (async () => {
        await stages.stop();
        await reporter.stop();
        await app.close();
        logger.info('server.stopped');
      })();
      return stopping;
    },
  };
}
