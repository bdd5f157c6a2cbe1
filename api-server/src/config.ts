/** Environment → one typed, validated Config. The only place that reads process.env. */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const int = (def: number, min = 0) => z.coerce.number().int().min(min).default(def);

const EnvSchema = z
  .object({
    PORT: int(3000).pipe(z.number().max(65535)),
    HOST: z.string().min(1).default('0.0.0.0'),
    API_SECRET_KEY: z.string().min(8, 'must be at least 8 characters'),
    MEDIA_SERVER_SECRET: z.string().min(8, 'must be at least 8 characters'),
    STAGE_SERVER_SECRET: z.string().min(8, 'must be at least 8 characters').optional(),
    STAGE_SERVER_URL: z.string().url().default('http://127.0.0.1:3002'),
    ENABLE_MEDIA_SERVER: bool.default(true),
    MEDIA_SERVER_URL: z.string().url().default('http://127.0.0.1:3001'),
    DATA_DIR: z.string().min(1).default('./data'),
    STAGE_PROVIDER: z.enum(['local']).default('local'),
    STAGE_CAPACITY: int(50, 1),
    MIN_STAGES: int(1, 0),
    MAX_STAGES: int(100, 1),
    SCALE_UP_THRESHOLD: z.coerce.number().gt(0).max(1).default(0.8),
    SCALE_DOWN_COOLDOWN: z.coerce.number().min(0).default(60),
    HEARTBEAT_INTERVAL_MS: int(10_000, 50),
    VIEWER_HEARTBEAT_INTERVAL_MS: int(10_000, 50),
    VIEWER_TOKEN_TTL_SECONDS: int(3600, 60),
    PUBLISH_TOKEN_TTL_SECONDS: int(43_200, 60),
    RECONCILE_INTERVAL_S: int(300, 1),
    STAGE_POOL_ID: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/).default('default'),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    PUBLIC_URL: z.string().url().optional(),
  })
  .superRefine((e, ctx) => {
    if (e.MIN_STAGES > e.MAX_STAGES)
      ctx.addIssue({ code: 'custom', path: ['MIN_STAGES'], message: `must not exceed MAX_STAGES (${e.MAX_STAGES})` });
  });

export interface Config {
  port: number;
  host: string;
  apiSecretKey: string;
  mediaServerSecret: string;
  stageServerSecret: string;
  stageServerUrl: string;
  enableMediaServer: boolean;
  mediaServerUrl: string;
  dataDir: string;
  stageProvider: 'local';
  stagePoolId: string;
  scaling: {
    capacity: number;
    minStages: number;
    maxStages: number;
    scaleUpThreshold: number;
    scaleDownCooldownMs: number;
    /** How often the planner runs on its own. */
    tickMs: number;
    /** How long a join that found no seat waits for a new stage. */
    joinWaitMs: number;
    /** How often the store is reconciled with the provider while running (orphans from timed-out creates). */
    reconcileIntervalMs: number;
  };
  heartbeatIntervalMs: number;
  viewerHeartbeatIntervalMs: number;
  viewerTokenTtlSeconds: number;
  publishTokenTtlSeconds: number;
  logLevel: string;
  publicUrl?: string;
  /** WebSocket keep-alive ping. */
  wsPingIntervalMs: number;
}

export class ConfigError extends Error {}

/** Pure: a map of variables → Config, or a ConfigError naming every bad variable. */
export function parseConfig(env: Record<string, string | undefined>): Config {
  // An empty variable means "unset", as in most .env conventions.
  const clean = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const r = EnvSchema.safeParse(clean);
  // Cross-field rules checked here too, so one run names every bad variable even when others fail to parse.
  const extra: string[] = [];
  if ((clean.STAGE_PROVIDER ?? 'local') === 'local' && !clean.STAGE_SERVER_SECRET) extra.push('  STAGE_SERVER_SECRET: required when STAGE_PROVIDER=local');
  if (!r.success || extra.length) {
    const lines = [...(r.success ? [] : r.error.issues.map((i) => `  ${i.path.join('.') || '(env)'}: ${i.path.length === 1 && !(String(i.path[0]) in clean) ? 'required' : i.message}`)), ...extra];
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const e = r.data!;
  return {
    port: e.PORT,
    host: e.HOST,
    apiSecretKey: e.API_SECRET_KEY,
    mediaServerSecret: e.MEDIA_SERVER_SECRET,
    stageServerSecret: e.STAGE_SERVER_SECRET ?? '',
    stageServerUrl: e.STAGE_SERVER_URL.replace(/\/+$/, ''),
    enableMediaServer: e.ENABLE_MEDIA_SERVER,
    mediaServerUrl: e.MEDIA_SERVER_URL.replace(/\/+$/, ''),
    dataDir: resolve(e.DATA_DIR),
    stageProvider: e.STAGE_PROVIDER,
    stagePoolId: e.STAGE_POOL_ID,
    scaling: {
      capacity: e.STAGE_CAPACITY,
      minStages: e.MIN_STAGES,
      maxStages: e.MAX_STAGES,
      scaleUpThreshold: e.SCALE_UP_THRESHOLD,
      scaleDownCooldownMs: Math.round(e.SCALE_DOWN_COOLDOWN * 1000),
      tickMs: 1000,
      joinWaitMs: 10_000,
      reconcileIntervalMs: e.RECONCILE_INTERVAL_S * 1000,
    },
    heartbeatIntervalMs: e.HEARTBEAT_INTERVAL_MS,
    viewerHeartbeatIntervalMs: e.VIEWER_HEARTBEAT_INTERVAL_MS,
    viewerTokenTtlSeconds: e.VIEWER_TOKEN_TTL_SECONDS,
    publishTokenTtlSeconds: e.PUBLISH_TOKEN_TTL_SECONDS,
    logLevel: e.LOG_LEVEL,
    ...(e.PUBLIC_URL ? { publicUrl: e.PUBLIC_URL.replace(/\/+$/, '') } : {}),
    wsPingIntervalMs: 30_000,
  };
}

/** Reads `.env` beside the app (api-server/.env) if present, then the process environment (which wins). */
export function loadConfig(): Config {
  const envFile = join(import.meta.dirname, '..', '.env');
  if (existsSync(envFile)) process.loadEnvFile(envFile);
  return parseConfig(process.env);
}
