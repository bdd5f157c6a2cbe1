/** Composition root of the stage server: config → services → listen; SIGTERM/SIGINT → graceful stop (runProcess). */
import { loadConfigOrExit, runProcess } from '@stagecast/service';
import { createStageServer } from './app.js';
import { loadConfig } from './config.js';
import { createLogger } from './logger.js';
import { createRtcPlane } from './services/rtc-plane.js';

const config = loadConfigOrExit(loadConfig);
const logger = createLogger(config.logLevel);
const server = createStageServer(config, logger, { plane: createRtcPlane() });

await runProcess({
  log: logger,
  stopTimeoutMs: 10_000,
  parts: [
    {
      name: 'server',
      async start() {
        const port = await server.start();
        logger.info({ port, publicUrl: server.publicUrl() }, 'server.listening');
      },
      stop: () => server.stop(),
    },
  ],
});
