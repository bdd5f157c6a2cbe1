/** Composition root: read config, build, start; stop cleanly (bounded) on SIGTERM / SIGINT (runProcess). */
import { shutdownRtc } from '@stagecast/rtc';
import { loadConfigOrExit, runProcess } from '@stagecast/service';
import { loadConfig } from './config.js';
import { createLogger } from './logger.js';
import { createMediaServer } from './system.js';

const config = loadConfigOrExit(loadConfig);
const log = createLogger(config.logLevel, { serverId: config.serverId });
for (const warning of config.warnings) log.warn({ warning }, 'config.ignored');
const server = await createMediaServer(config, log);

await runProcess({
  log,
  // The drain (stages moved to other Media Servers) comes before the stop sequence's own deadline.
  stopTimeoutMs: config.shutdownTimeoutMs + config.drainTimeoutMs,
  parts: [
    // Stopped last: node-datachannel's threads would keep the process alive after everything else is closed.
    { name: 'rtc', stop: () => shutdownRtc() },
    { name: 'server', start: () => server.start(), stop: () => server.stop() },
  ],
});
