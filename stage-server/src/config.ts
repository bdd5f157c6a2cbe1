/**
 * The stage server's only contact with the environment: env (+ an optional .env beside the app) → one typed,
 * zod-validated Config. Fails fast naming every bad variable.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseEnv } from 'node:util';
import { API_ROUTES } from '@stagecast/protocol';
import { z } from 'zod';
import { ConfigError as BaseConfigError } from '@stagecast/service';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const EnvSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(3002),
  HOST: z.string().min(1).default('0.0.0.0'),
  /** Base of every stage's whipUrl / whepUrl (what publishers and viewers can reach). */
  PUBLIC_URL: z.string().url().optional(),
  STAGE_SERVER_SECRET: z.string().min(16, 'STAGE_SERVER_SECRET must be at least 16 characters'),
  DATA_DIR: z.string().min(1).default('./data'),
  API_SERVER_URL: z.string().url().default('http://127.0.0.1:3000'),
  /** Hard safety limit of WHEP viewers per stage; 0 = unlimited (the API Server does the seat accounting). */
  MAX_VIEWERS_PER_STAGE: z.coerce.number().int().min(0).default(0),
  /** Address node-datachannel binds its ICE sockets to; unset = gather on every interface. */
  RTC_BIND_ADDRESS: z.string().min(1).optional(),
  /** Optional bearer token for /stats and /metrics (/health and /ready stay open). */
  METRICS_TOKEN: z.string().min(16, 'METRICS_TOKEN must be at least 16 characters').optional(),
  LOG_LEVEL: z.enum(LOG_LEVELS).default('info'),
});

export interface Config {
  port: number;
  host: string;
  /** Without a trailing slash. Unset = http://127.0.0.1:<the port we listen on> (known once listening, so PORT=0 works). */
  publicUrl?: string;
  stageServerSecret: string;
  /** Absolute. Stages live in `${dataDir}/stage-server/stages.json`. */
  dataDir: string;
  /** Without a trailing slash. */
  apiServerUrl: string;
  jwksUrl: string;
  participantEventsUrl: string;
  maxViewersPerStage: number;
  rtcBindAddress?: string;
  /** When set, /stats and /metrics need `Authorization: Bearer <it>` (401 otherwise). */
  metricsToken?: string;
  logLevel: (typeof LOG_LEVELS)[number];
}

export class ConfigError extends BaseConfigError {
  constructor(readonly problems: string[]) {
    super(`invalid stage-server configuration: ${problems.join('; ')}`);
    this.name = 'ConfigError';
  }
}

const trimSlash = (s: string) => s.replace(/\/+$/, '');

/** `env` wins over the .env file; the .env file is read from `appDir` (the stage-server directory). */
export function loadConfig(
  env: Record<string, string | undefined> = process.env,
  appDir: string = resolve(import.meta.dirname, '..'),
): Config {
  const dotenvPath = resolve(appDir, '.env');
  const fileEnv = existsSync(dotenvPath) ? parseEnv(readFileSync(dotenvPath, 'utf8')) : {};
  const merged: Record<string, string | undefined> = { ...fileEnv };
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== '') merged[k] = v;

  const parsed = EnvSchema.safeParse(merged);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.') || '(env)'}: ${i.message}`));
  }
  const e = parsed.data;
  const publicUrl = e.PUBLIC_URL === undefined ? undefined : trimSlash(e.PUBLIC_URL);
  const apiServerUrl = trimSlash(e.API_SERVER_URL);
  return {
    port: e.PORT,
    host: e.HOST,
    publicUrl,
    stageServerSecret: e.STAGE_SERVER_SECRET,
    dataDir: resolve(e.DATA_DIR),
    apiServerUrl,
    jwksUrl: `${apiServerUrl}${API_ROUTES.jwks}`,
    participantEventsUrl: `${apiServerUrl}${API_ROUTES.participantEvents}`,
    maxViewersPerStage: e.MAX_VIEWERS_PER_STAGE,
    rtcBindAddress: e.RTC_BIND_ADDRESS,
    metricsToken: e.METRICS_TOKEN,
    logLevel: e.LOG_LEVEL,
  };
}
