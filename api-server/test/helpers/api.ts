/** An API Server in this process on a real port (127.0.0.1:0), with a real SQLite file in a temp dir. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { parseConfig, type Config } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { createApiServer, type ApiServer } from '../../src/system.js';

export const SECRETS = {
  apiKey: 'api-key-6f1c2d9e8b7a4c3f5e2d1a0b',
  media: 'media-secret-9a8b7c6d5e4f3a2b1c0d',
  stage: 'stage-secret-1a2b3c4d5e6f7a8b9c0d',
} as const;

export class LogCapture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
  lines(): Record<string, unknown>[] {
    return this.text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }
}

export interface TestApi {
  server: ApiServer;
  url: string;
  wsUrl: string;
  config: Config;
  logs: LogCapture;
  dataDir: string;
  stop(): Promise<void>;
}

export async function startApi(o: {
  stageUrl: string;
  env?: Record<string, string>;
  tune?: (c: Config) => void;
  dataDir?: string;
  logLevel?: string;
}): Promise<TestApi> {
  const ownDir = !o.dataDir;
  const dataDir = o.dataDir ?? mkdtempSync(join(tmpdir(), 'sc-api-'));
  const config = parseConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    API_SECRET_KEY: SECRETS.apiKey,
    MEDIA_SERVER_SECRET: SECRETS.media,
    STAGE_SERVER_SECRET: SECRETS.stage,
    STAGE_SERVER_URL: o.stageUrl,
    DATA_DIR: dataDir,
    LOG_LEVEL: o.logLevel ?? 'info',
    ...o.env,
  });
  config.scaling.tickMs = 100;
  o.tune?.(config);
  const logs = new LogCapture();
  const log = createLogger(config.logLevel, logs);
  const server = await createApiServer(config, log);
  try {
    await server.start();
  } catch (err) {
    await server.stop().catch(() => undefined);
    if (ownDir) rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  const url = `http://127.0.0.1:${server.port}`;
  return {
    server,
    url,
    wsUrl: `ws://127.0.0.1:${server.port}`,
    config,
    logs,
    dataDir,
    async stop() {
      await server.stop();
      if (ownDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export const apiKey = { 'x-api-key': SECRETS.apiKey };
export const mediaAuth = { authorization: `Bearer ${SECRETS.media}` };
export const stageAuth = { authorization: `Bearer ${SECRETS.stage}` };

export async function call(
  url: string,
  o: { method?: string; headers?: Record<string, string>; json?: unknown; body?: string } = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const headers: Record<string, string> = { ...o.headers };
  let body: string | undefined = o.body;
  if (o.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(o.json);
  }
  const res = await fetch(url, { method: o.method ?? (body !== undefined ? 'POST' : 'GET'), headers, ...(body !== undefined ? { body } : {}) });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON */
  }
  return { status: res.status, body: parsed, headers: res.headers };
}
