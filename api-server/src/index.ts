/** Composition root: read config, build, start; stop cleanly on SIGTERM / SIGINT. */
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './logger.js';
import { createApiServer } from './system.js';

let config;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(78); // EX_CONFIG
  }
  throw err;
}

const log = createLogger(config.logLevel);
const server = await createApiServer(config, log);

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'server.stopping');
  const force = setTimeout(() => {
    log.error('server.stop_timeout');
    process.exit(1);
  }, 15_000);
  force.unref();
  try {
    await server.stop();
    log.flush();
    process.exitCode = 0;
  } catch (err) {
    log.error({ err }, 'server.stop_failed');
    process.exitCode = 1;
  }
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));

try {
  await server.start();
} catch (err) {
  log.fatal({ err }, 'server.start_failed');
  await server.stop().catch(() => undefined);
  log.flush();
  process.exit(1);
}
