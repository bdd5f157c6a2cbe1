/** Composition root: read config, build, start; stop cleanly on SIGTERM / SIGINT (runProcess). */
import { loadConfigOrExit, runProcess } from '@stagecast/service';
import { loadConfig } from './config.js';
import { createLogger } from './logger.js';
import { createApiServer } from './system.js';

const config = loadConfigOrExit(loadConfig);
const log = createLogger(config.logLevel);
const server = await createApiServer(config, log);

await runProcess({ log, stopTimeoutMs: 15_000, parts: [{ name: 'server', start: () => server.start(), stop: () => server.stop() }] });
