/** Composition root: read config, build, start; stop cleanly (bounded) on SIGTERM / SIGINT. */
import { shutdownRtc } from '@stagecast/rtc';
import { ConfigError, loadConfig, type Config } from './config.js';
import { createLogger } from './logger.js';
import { createMediaServer } from './system.js';

let config: Config;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(78); // EX_CONFIG
  }
  throw err;
}

const log = createLogger(config.logLevel, { serverId: config.serverId });
for (const warning of config.warnings) log.warn({ warning }, 'config.ignored');
const server = await createMediaServer(config, log);

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'server.shutdown');
  const force = setTimeout(() => {
    log.error({ timeoutMs: config.shutdownTimeoutMs }, 'server.stop_timeout');
    log.flush();
    process.exit(1);
  }, config.shutdownTimeoutMs);
  force.unref();
  try {
    await server.stop();
    // node-datachannel's threads would keep the process alive after everything is closed.
    await shutdownRtc();
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
