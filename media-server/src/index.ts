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
  stopTimeoutMs: config.shutdownTimeoutMs,
  parts: [
    // Stopped last: node-datachannel's threads would keep the process alive after everything else is closed.
    { name: 'rtc', stop: () => shutdownRtc() },
    { name: 'server', start: () => server.start(), stop: () => server.stop() },
  ],
});
