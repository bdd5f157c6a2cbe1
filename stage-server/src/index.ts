/** Composition root of the stage server: config → services → listen; SIGTERM/SIGINT → graceful stop. */
import { createStageServer } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './logger.js';
import { createRtcPlane } from './services/rtc-plane.js';

let config;
try {
  config = loadConfig();
} catch (e) {
  if (e instanceof ConfigError) {
    console.error(e.message);
    process.exit(78); // EX_CONFIG
  }
  throw e;
}
const logger = createLogger(config.logLevel);
const server = createStageServer(config, logger, { plane: createRtcPlane() });

let shuttingDown = false;
async function shutdown(signal: string): Promise<void> {
  if (shuttingDown) return;
  shuttingDown = true;
  logger.info({ signal }, 'server.stopping');
  const force = setTimeout(() => {
    logger.error('server.stop_timeout');
    process.exit(1);
  }, 10_000);
  force.unref();
  try {
    await server.stop();
    logger.info('server.stopped');
    process.exit(0);
  } catch (err) {
    logger.error({ err }, 'server.stop_failed');
    process.exit(1);
  }
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));

try {
  const port = await server.start();
  logger.info({ port, publicUrl: server.publicUrl() }, 'server.listening');
} catch (err) {
  logger.fatal({ err }, 'server.start_failed');
  await server.stop().catch(() => undefined);
  process.exit(1);
}
