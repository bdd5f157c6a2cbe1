/** Environment → one typed, validated Config. The only place in the Media Server that reads process.env. */
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { ConfigError as BaseConfigError } from '@stagecast/service';

const int = (def: number, min = 0) => z.coerce.number().int().min(min).default(def);
const url = z.string().url();

const EnvSchema = z.object({
  PORT: int(3001).pipe(z.number().max(65535)),
  HOST: z.string().min(1).default('0.0.0.0'),
  PUBLIC_URL: url.optional(),
  SERVER_ID: z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/, 'letters, digits and _ . : - only').optional(),
  ADVERTISED_IP: z.string().min(1).max(255).default('127.0.0.1'),
  API_SERVER_URL: url.default('http://127.0.0.1:3000'),
  MEDIA_SERVER_SECRET: z.string().min(8, 'must be at least 8 characters'),
  INGEST_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  SYNC_INTERVAL_MS: int(60_000, 100),
  HEARTBEAT_INTERVAL_MS: z.coerce.number().int().min(50).optional(),
  RTC_BIND_ADDRESS: z.string().min(1).optional(),
  LEG_TOKEN_RENEW_BEFORE_S: int(600, 1),
  LEG_MAX_AGE_S: int(82_800, 10).pipe(z.number().max(86_000, 'must stay under 24 h (IVS cuts a participant at 24 h)')),
  REQUEST_TIMEOUT_MS: int(5000, 100),
  SHUTDOWN_TIMEOUT_MS: int(10_000, 100),
  MAX_LEGS: z.coerce.number().int().min(1).optional(),
  DRAIN_TIMEOUT_MS: int(15_000, 0),
  IVS_RULES: z.enum(['auto', 'enforce', 'warn', 'off']).default('auto'),
  IVS_REFUSAL_HOLD_S: int(30, 1).pipe(z.number().max(3600)),
  INGEST_SILENCE_TAKEOVER_S: int(5, 1).pipe(z.number().max(3600)),
  METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export interface Config {
  port: number;
  host: string;
  /** Base URL broadcasters and other Media Servers use (Location headers are absolute under it; registered with the
   *  API Server). No trailing slash. Undefined: http://ADVERTISED_IP:<the bound port> (so PORT=0 works). */
  publicUrl?: string;
  serverId: string;
  advertisedIp: string;
  apiServerUrl: string;
  mediaServerSecret: string;
  ingestToken?: string;
  syncIntervalMs: number;
  /** Undefined: use what the API Server says at registration. */
  heartbeatIntervalMs?: number;
  rtcBindAddress?: string;
  legTokenRenewBeforeMs: number;
  legMaxAgeMs: number;
  requestTimeoutMs: number;
  shutdownTimeoutMs: number;
  /** Most stage legs this server takes, told to the API Server at registration; undefined = no limit. */
  maxLegs?: number;
  /**
   * On SIGTERM, how long (ms) the server keeps serving while the API Server moves its stages to others (drain),
   * before it stops anyway. 0: no drain.
   */
  drainTimeoutMs: number;
  logLevel: string;
  /** IVS ingest rules: auto = enforce while any stage is IVS, else warn; enforce; warn; off. */
  ivsRules: 'auto' | 'enforce' | 'warn' | 'off';
  /** A refused broadcaster token's POSTs get the same 422 for this long (ms). */
  ivsRefusalHoldMs: number;
  /** A broadcaster session silent this long (ms) no longer holds the slot against another token. */
  ingestSilenceTakeoverMs: number;
  /** When set, GET / (stats) and /metrics need `Authorization: Bearer <it>`; /health and /ready stay open. */
  metricsToken?: string;
  /** Variables set but not used here, each with why (logged as config.ignored at start; never their values). */
  warnings: string[];
}

/**
 * Set in the seed's environment (and by many .env files shared by every app) but with no job in the Media Server:
 * said at start rather than parsed and silently dropped.
 */
const IGNORED: Record<string, string> = {
  API_SECRET_KEY:
    'not used by the Media Server: it authenticates to the API Server with MEDIA_SERVER_SECRET, and the operator key (which opens the dashboard and ingest tokens) need not be on this host — remove it here',
};

export class ConfigError extends BaseConfigError {}

/** Pure: a map of variables → Config, or a ConfigError naming every bad variable. */
export function parseConfig(env: Record<string, string | undefined>, host = hostname()): Config {
  const clean = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const r = EnvSchema.safeParse(clean);
  if (!r.success) {
    const lines = r.error.issues.map((i) => {
      const name = i.path.join('.') || '(env)';
      return `  ${name}: ${i.path.length === 1 && !(String(i.path[0]) in clean) ? 'required' : i.message}`;
    });
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const e = r.data;
  const safeHost = host.replace(/[^A-Za-z0-9_.:-]/g, '-').slice(0, 100) || 'media';
  const c: Config = {
    port: e.PORT,
    host: e.HOST,
    serverId: e.SERVER_ID ?? `${safeHost}-${e.PORT}`,
    advertisedIp: e.ADVERTISED_IP,
    apiServerUrl: e.API_SERVER_URL.replace(/\/+$/, ''),
    mediaServerSecret: e.MEDIA_SERVER_SECRET,
    syncIntervalMs: e.SYNC_INTERVAL_MS,
    legTokenRenewBeforeMs: e.LEG_TOKEN_RENEW_BEFORE_S * 1000,
    legMaxAgeMs: e.LEG_MAX_AGE_S * 1000,
    requestTimeoutMs: e.REQUEST_TIMEOUT_MS,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    drainTimeoutMs: e.DRAIN_TIMEOUT_MS,
    logLevel: e.LOG_LEVEL,
    ivsRules: e.IVS_RULES,
    ivsRefusalHoldMs: e.IVS_REFUSAL_HOLD_S * 1000,
    ingestSilenceTakeoverMs: e.INGEST_SILENCE_TAKEOVER_S * 1000,
    warnings: Object.entries(IGNORED)
      .filter(([name]) => clean[name] !== undefined)
      .map(([name, why]) => `${name}: ${why}`),
  };
  if (e.PUBLIC_URL) c.publicUrl = e.PUBLIC_URL.replace(/\/+$/, '');
  if (e.INGEST_TOKEN) c.ingestToken = e.INGEST_TOKEN;
  if (e.METRICS_TOKEN) c.metricsToken = e.METRICS_TOKEN;
  if (e.HEARTBEAT_INTERVAL_MS !== undefined) c.heartbeatIntervalMs = e.HEARTBEAT_INTERVAL_MS;
  if (e.MAX_LEGS !== undefined) c.maxLegs = e.MAX_LEGS;
  if (e.RTC_BIND_ADDRESS) c.rtcBindAddress = e.RTC_BIND_ADDRESS;
  return c;
}

/** Reads `.env` beside the app (media-server/.env) if present, then the process environment (which wins). */
export function loadConfig(): Config {
  const envFile = join(import.meta.dirname, '..', '.env');
  if (existsSync(envFile)) process.loadEnvFile(envFile);
  return parseConfig(process.env);
}
