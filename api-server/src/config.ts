/** Environment → one typed, validated Config. The only place that reads process.env. */
import { createPrivateKey } from 'node:crypto';
import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError as BaseConfigError } from '@stagecast/service';

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const int = (def: number, min = 0) => z.coerce.number().int().min(min).default(def);

/**
 * USD per participant-hour of an IVS Real-Time stage. $0.072 is the rate quoted for aws.amazon.com/ivs/pricing in
 * our IVS notes compiled 2026-11-24 (a third-party quote; AWS's page was not read directly): check your region.
 */
export const DEFAULT_PRICE_PER_PARTICIPANT_HOUR = 0.072;

const EnvSchema = z
  .object({
    PORT: int(3000).pipe(z.number().max(65535)),
    HOST: z.string().min(1).default('0.0.0.0'),
    API_SECRET_KEY: z.string().min(8, 'must be at least 8 characters'),
    MEDIA_SERVER_SECRET: z.string().min(8, 'must be at least 8 characters'),
    STAGE_SERVER_SECRET: z.string().min(16, 'must be at least 16 characters (the stage server requires as much)').optional(),
    STAGE_SERVER_URL: z.string().default('http://127.0.0.1:3002'),
    STAGE_SERVER_URLS: z.string().optional(),
    STAGE_SERVER_HEALTH_INTERVAL_MS: int(5000, 50),
    ENABLE_MEDIA_SERVER: bool.default(true),
    PUBLIC_URL: z.string().url().optional(),
    MEDIA_SERVER_URL: z.string().url().optional(),
    INGEST_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
    DATA_DIR: z.string().min(1).default('./data'),
    STAGE_PROVIDER: z.enum(['local', 'ivs', 'whip']).default('local'),
    AWS_REGION: z.string().regex(/^[a-z]{2}(-[a-z]+)+-[0-9]$/, 'must be an AWS region such as us-east-1').optional(),
    IVS_TOKEN_SIGNING_KEY: z.string().optional(),
    IVS_TOKEN_PUBLIC_KEY_ARN: z
      .string()
      .regex(/^arn:aws[a-z-]*:ivs:[a-z0-9-]+:[0-9]{12}:public-key\/[A-Za-z0-9]+$/, 'must be the ARN ImportPublicKey returned (arn:aws:ivs:<region>:<account>:public-key/<id>)')
      .optional(),
    IVS_EVENTS_URL: z.string().url().default('wss://global.events.live-video.net'),
    IVS_VIEWER_RECONCILE_INTERVAL_S: int(60, 0),
    IVS_VIEWER_RECONCILE_TPS: z.coerce.number().gt(0).max(5).default(1),
    // IVS: StageEndpoints may be cached 14 days at most (1,209,600 s); refresh well before.
    IVS_ENDPOINT_REFRESH_S: int(12 * 86_400, 60).pipe(z.number().max(13 * 86_400, 'must stay under 14 days (IVS caches stage endpoints at most that long), with a day to spare')),
    WHIP_TARGETS: z.string().optional(),
    STAGE_CAPACITY: int(50, 1),
    MIN_STAGES: int(1, 0),
    MAX_STAGES: int(100, 1),
    SCALE_UP_THRESHOLD: z.coerce.number().gt(0).max(1).default(0.8),
    SCALE_DOWN_COOLDOWN: z.coerce.number().min(0).default(60),
    SCALE_SPARE_LEAD_S: z.coerce.number().min(0).max(60).default(0),
    SCALE_WARM_SPARES: int(0, 0),
    HEARTBEAT_INTERVAL_MS: int(10_000, 50),
    VIEWER_HEARTBEAT_INTERVAL_MS: int(10_000, 50),
    VIEWER_TOKEN_TTL_SECONDS: int(3600, 60),
    PUBLISH_TOKEN_TTL_SECONDS: int(43_200, 60),
    RECONCILE_INTERVAL_S: int(300, 1),
    STAGE_POOL_ID: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/).default('default'),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    WEB_DIST_DIR: z.string().min(1).default(join(import.meta.dirname, '..', '..', 'web', 'dist')),
    VIEWER_API_KEY: z.string().min(8, 'must be at least 8 characters').optional(),
    METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
    VIEWER_JOIN_RATE_PER_MIN: z.coerce.number().min(0).default(30),
    VIEWER_JOIN_BURST: int(30, 1),
    VIEWER_HEARTBEAT_RATE_PER_MIN: z.coerce.number().min(0).default(600),
    VIEWER_HEARTBEAT_BURST: int(100, 1),
    TRUSTED_PROXIES: z.string().optional(),
    VIEWER_RATE_LIMIT_EXEMPT: z.string().optional(),
    IVS_PRICE_PER_PARTICIPANT_HOUR: z.coerce.number().min(0).max(1000).default(DEFAULT_PRICE_PER_PARTICIPANT_HOUR),
    CONSOLIDATION_ENABLED: bool.default(true),
    CONSOLIDATION_SPARSE_RATIO: z.coerce.number().min(0).max(1).default(0.5),
    CONSOLIDATION_INTERVAL_S: z.coerce.number().gt(0).default(30),
    CONSOLIDATION_MAX_MOVES: int(500, 1),
    REDIS_URL: z
      .string()
      .regex(/^rediss?:\/\/[^\s]+$/, 'must be a redis:// or rediss:// URL')
      .optional(),
    SCALER_LEASE_MS: int(10_000, 500).pipe(z.number().max(300_000)),
  })
  .superRefine((e, ctx) => {
    if (e.MIN_STAGES > e.MAX_STAGES)
      ctx.addIssue({ code: 'custom', path: ['MIN_STAGES'], message: `must not exceed MAX_STAGES (${e.MAX_STAGES})` });
  });

export interface WhipTargetConfig {
  url: string;
  token?: string;
}

export interface IvsConfig {
  region: string;
  /** Self-signed participant tokens (lifts CreateParticipantToken's 50 TPS): the ES384 private key and its imported public key's ARN. */
  selfSigned?: { privateKeyPem: string; publicKeyArn: string };
  /** `events_url` claim of self-signed tokens. */
  eventsUrl: string;
  /** How often viewer accounting is compared with ListParticipants; 0 = never. */
  viewerReconcileIntervalMs: number;
  /** ListParticipants calls per second at most, inside the 5 TPS stage-call budget. */
  viewerReconcileTps: number;
  /** A stage's endpoints are read again (GetStage) once this old (IVS allows caching them 14 days at most). */
  endpointMaxAgeMs: number;
}

export interface Config {
  port: number;
  host: string;
  apiSecretKey: string;
  mediaServerSecret: string;
  stageServerSecret: string;
  /** STAGE_PROVIDER=local: the stage servers' base URLs (admin API, /health), without a trailing slash; never empty. */
  stageServerUrls: string[];
  /** How often each stage server's /health is read; two failed reads in a row mark it down. */
  stageServerHealthIntervalMs: number;
  enableMediaServer: boolean;
  /** Where clients reach this API Server (the WHIP front door is publicUrl + /whip). Default http://127.0.0.1:PORT. */
  publicUrl: string;
  /**
   * MEDIA_SERVER_URL: set, broadcasters are sent straight to this one Media Server (ingest tokens name its /whip, as in
   * a one-Media-Server deployment); unset, to the front door. Either way every Media Server is found by its registration.
   */
  mediaServerUrl?: string;
  /** The broadcaster's long-lived token the Media Servers accept (their INGEST_TOKEN): the front door accepts it too. */
  ingestToken?: string;
  dataDir: string;
  stageProvider: 'local' | 'ivs' | 'whip';
  stagePoolId: string;
  /** STAGE_PROVIDER=ivs only. */
  ivs?: IvsConfig;
  /** STAGE_PROVIDER=whip only: the destinations, in WHIP_TARGETS order. */
  whipTargets: WhipTargetConfig[];
  scaling: {
    capacity: number;
    minStages: number;
    maxStages: number;
    scaleUpThreshold: number;
    scaleDownCooldownMs: number;
    /**
     * Predictive spares (SCALE_SPARE_LEAD_S): free seats for this long of joins at the recent join rate, so a join
     * storm finds seats instead of waiting for stages to be created. 0 = off (one empty spare stage, as always).
     */
    spareLeadMs: number;
    /** SCALE_WARM_SPARES: empty stages the pool always holds (creates in flight included). 0 = off. */
    warmSpares: number;
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
  /** WebSocket keep-alive ping. */
  wsPingIntervalMs: number;
  /** The built web pages (/broadcast, /watch, /dashboard). */
  webDistDir: string;
  /** A second key, accepted as x-api-key on /api/viewers/* only: safe to hand out in /watch links. */
  viewerApiKey?: string;
  /** Per client address, for requests made with the viewer key (the operator's key is never limited). */
  viewerRateLimits: {
    join: { perMinute: number; burst: number };
    heartbeat: { perMinute: number; burst: number };
    /**
     * Client addresses (IPs or CIDRs) the per-address limit does not apply to: a load-test machine or a trusted
     * front end the operator names. Their requests are counted (stagecast_viewer_rate_limit_exempt_total).
     */
    exempt: string[];
  };
  /**
   * Addresses (IPs, CIDRs, or loopback / linklocal / uniquelocal) of proxies whose X-Forwarded-For is believed.
   * Empty: the client address is the TCP peer's, whatever X-Forwarded-For says.
   */
  trustedProxies: string[];
  /** When set, GET /metrics needs `Authorization: Bearer <it>` (401 otherwise); /health and /ready stay open. */
  metricsToken?: string;
  /** The cost meter: participant-time per stage, stored by the minute. */
  cost: {
    pricePerParticipantHour: number;
    /** How often usage is written to the store (the meter's resolution). */
    tickMs: number;
    /** After a restart, a gap up to this long is metered with the pool as found; a longer one is not (unknown). */
    maxGapMs: number;
  };
  /**
   * REDIS_URL set: several API Servers share their state in Redis (RedisStore), announcements cross between them,
   * and the pool-wide jobs run on the holder of a lease of `leaseMs` (renewed every third of it). Unset: SQLite.
   */
  redis?: { url: string; leaseMs: number };
  /** Merging sparse stages when the audience shrinks (planConsolidation). */
  consolidation: {
    enabled: boolean;
    sparseRatio: number;
    intervalMs: number;
    maxMoves: number;
    /** A move the viewer never confirms is forgotten after this long (its old stage may then be deleted). */
    moveTimeoutMs: number;
  };
}

export class ConfigError extends BaseConfigError {}

/** Pure: a map of variables → Config, or a ConfigError naming every bad variable. */
export function parseConfig(env: Record<string, string | undefined>): Config {
  // An empty variable means "unset", as in most .env conventions.
  const clean = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const r = EnvSchema.safeParse(clean);
  // Cross-field rules checked here too, so one run names every bad variable even when others fail to parse.
  const extra: string[] = [];
  const provider = clean.STAGE_PROVIDER ?? 'local';
  if (provider === 'local' && !clean.STAGE_SERVER_SECRET) extra.push('  STAGE_SERVER_SECRET: required when STAGE_PROVIDER=local');
  if (provider === 'ivs' && !clean.AWS_REGION) extra.push('  AWS_REGION: required when STAGE_PROVIDER=ivs');
  let signingKeyPem: string | undefined;
  if (provider === 'ivs') {
    const key = checkSigningKey(clean.IVS_TOKEN_SIGNING_KEY);
    if (key.error) extra.push(`  IVS_TOKEN_SIGNING_KEY: ${key.error}`);
    signingKeyPem = key.pem;
    if (clean.IVS_TOKEN_SIGNING_KEY && !clean.IVS_TOKEN_PUBLIC_KEY_ARN) extra.push('  IVS_TOKEN_PUBLIC_KEY_ARN: required with IVS_TOKEN_SIGNING_KEY (the ARN ImportPublicKey returned)');
    if (!clean.IVS_TOKEN_SIGNING_KEY && clean.IVS_TOKEN_PUBLIC_KEY_ARN) extra.push('  IVS_TOKEN_SIGNING_KEY: required with IVS_TOKEN_PUBLIC_KEY_ARN');
  }
  const proxies = parseTrustedProxies(clean.TRUSTED_PROXIES);
  if (proxies.error) extra.push(`  TRUSTED_PROXIES: ${proxies.error}`);
  const stageServers = parseStageServerUrls(clean.STAGE_SERVER_URLS ? 'STAGE_SERVER_URLS' : 'STAGE_SERVER_URL', clean.STAGE_SERVER_URLS ?? clean.STAGE_SERVER_URL ?? 'http://127.0.0.1:3002');
  if (stageServers.error) extra.push(`  ${stageServers.error}`);
  const exempt = parseAddressList(clean.VIEWER_RATE_LIMIT_EXEMPT);
  if (exempt.error) extra.push(`  VIEWER_RATE_LIMIT_EXEMPT: ${exempt.error}`);
  let whipTargets: WhipTargetConfig[] = [];
  if (provider === 'whip') {
    const t = parseWhipTargets(clean.WHIP_TARGETS);
    extra.push(...t.errors.map((m) => `  WHIP_TARGETS${m}`));
    whipTargets = t.targets;
  }
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
    stageServerUrls: stageServers.urls,
    stageServerHealthIntervalMs: e.STAGE_SERVER_HEALTH_INTERVAL_MS,
    enableMediaServer: e.ENABLE_MEDIA_SERVER,
    publicUrl: (e.PUBLIC_URL ?? `http://127.0.0.1:${e.PORT}`).replace(/\/+$/, ''),
    ...(e.MEDIA_SERVER_URL ? { mediaServerUrl: e.MEDIA_SERVER_URL.replace(/\/+$/, '') } : {}),
    ...(e.INGEST_TOKEN ? { ingestToken: e.INGEST_TOKEN } : {}),
    dataDir: resolve(e.DATA_DIR),
    stageProvider: e.STAGE_PROVIDER,
    stagePoolId: e.STAGE_POOL_ID,
    ...(e.STAGE_PROVIDER === 'ivs'
      ? {
          ivs: {
            region: e.AWS_REGION!,
            ...(signingKeyPem && e.IVS_TOKEN_PUBLIC_KEY_ARN ? { selfSigned: { privateKeyPem: signingKeyPem, publicKeyArn: e.IVS_TOKEN_PUBLIC_KEY_ARN } } : {}),
            eventsUrl: e.IVS_EVENTS_URL,
            viewerReconcileIntervalMs: e.IVS_VIEWER_RECONCILE_INTERVAL_S * 1000,
            viewerReconcileTps: e.IVS_VIEWER_RECONCILE_TPS,
            endpointMaxAgeMs: e.IVS_ENDPOINT_REFRESH_S * 1000,
          },
        }
      : {}),
    whipTargets,
    scaling: {
      capacity: e.STAGE_CAPACITY,
      minStages: e.MIN_STAGES,
      maxStages: e.MAX_STAGES,
      scaleUpThreshold: e.SCALE_UP_THRESHOLD,
      scaleDownCooldownMs: Math.round(e.SCALE_DOWN_COOLDOWN * 1000),
      spareLeadMs: Math.round(e.SCALE_SPARE_LEAD_S * 1000),
      warmSpares: e.SCALE_WARM_SPARES,
      tickMs: 1000,
      joinWaitMs: 10_000,
      reconcileIntervalMs: e.RECONCILE_INTERVAL_S * 1000,
    },
    heartbeatIntervalMs: e.HEARTBEAT_INTERVAL_MS,
    viewerHeartbeatIntervalMs: e.VIEWER_HEARTBEAT_INTERVAL_MS,
    viewerTokenTtlSeconds: e.VIEWER_TOKEN_TTL_SECONDS,
    publishTokenTtlSeconds: e.PUBLISH_TOKEN_TTL_SECONDS,
    logLevel: e.LOG_LEVEL,
    wsPingIntervalMs: 30_000,
    webDistDir: resolve(e.WEB_DIST_DIR),
    ...(e.VIEWER_API_KEY ? { viewerApiKey: e.VIEWER_API_KEY } : {}),
    ...(e.METRICS_TOKEN ? { metricsToken: e.METRICS_TOKEN } : {}),
    viewerRateLimits: {
      join: { perMinute: e.VIEWER_JOIN_RATE_PER_MIN, burst: e.VIEWER_JOIN_BURST },
      heartbeat: { perMinute: e.VIEWER_HEARTBEAT_RATE_PER_MIN, burst: e.VIEWER_HEARTBEAT_BURST },
      exempt: exempt.list,
    },
    trustedProxies: proxies.list,
    cost: { pricePerParticipantHour: e.IVS_PRICE_PER_PARTICIPANT_HOUR, tickMs: 1000, maxGapMs: 300_000 },
    ...(e.REDIS_URL ? { redis: { url: e.REDIS_URL, leaseMs: e.SCALER_LEASE_MS } } : {}),
    consolidation: {
      enabled: e.CONSOLIDATION_ENABLED,
      sparseRatio: e.CONSOLIDATION_SPARSE_RATIO,
      intervalMs: Math.round(e.CONSOLIDATION_INTERVAL_S * 1000),
      maxMoves: e.CONSOLIDATION_MAX_MOVES,
      moveTimeoutMs: 3 * e.VIEWER_HEARTBEAT_INTERVAL_MS,
    },
  };
}

const MAX_STAGE_SERVERS = 256;

/**
 * STAGE_SERVER_URLS (a comma-separated list) or STAGE_SERVER_URL (one): http(s) base URLs without credentials, query
 * or fragment, each once. `name` is the variable read (STAGE_SERVER_URLS wins when both are set); an error names it.
 */
export function parseStageServerUrls(name: string, raw: string): { urls: string[]; error?: string } {
  const list = raw.split(',').map((x) => x.trim()).filter(Boolean);
  if (list.length === 0) return { urls: [], error: `${name}: must list at least one stage server URL (http://host:port)` };
  if (list.length > MAX_STAGE_SERVERS) return { urls: [], error: `${name}: at most ${MAX_STAGE_SERVERS} stage servers` };
  const bad: string[] = [];
  const urls: string[] = [];
  for (const item of list) {
    let u: URL;
    try {
      u = new URL(item);
    } catch {
      bad.push(`${JSON.stringify(item)} is not a URL`);
      continue;
    }
    const where = `${u.protocol}//${u.host}`;
    if (u.protocol !== 'http:' && u.protocol !== 'https:') bad.push(`${where} must be http or https`);
    else if (u.username || u.password) bad.push(`${where} must not carry credentials (the admin API takes STAGE_SERVER_SECRET)`);
    else if (u.search || u.hash) bad.push(`${where}${u.pathname} must have no ?query or #fragment`);
    else {
      const base = (u.origin + u.pathname).replace(/\/+$/, '');
      if (urls.includes(base)) bad.push(`${base} is listed twice`);
      else urls.push(base);
    }
  }
  if (bad.length) return { urls: [], error: `${name}: ${bad.join('; ')}` };
  return { urls };
}

const PROXY_KEYWORDS = new Set(['loopback', 'linklocal', 'uniquelocal']);

/** TRUSTED_PROXIES: a comma-separated list of IPs, CIDRs (10.0.0.0/8) or loopback / linklocal / uniquelocal. */
export function parseTrustedProxies(raw: string | undefined): { list: string[]; error?: string } {
  if (!raw) return { list: [] };
  const list = raw.split(',').map((x) => x.trim()).filter(Boolean);
  const bad = list.filter((x) => {
    if (PROXY_KEYWORDS.has(x)) return false;
    const [ip, bits, ...rest] = x.split('/');
    const v = isIP(ip ?? '');
    if (!v || rest.length) return true;
    if (bits === undefined) return false;
    const n = Number(bits);
    return !/^\d{1,3}$/.test(bits) || n > (v === 4 ? 32 : 128);
  });
  if (bad.length) return { list: [], error: `not an IP, CIDR or loopback/linklocal/uniquelocal: ${bad.map((b) => JSON.stringify(b)).join(', ')}` };
  return { list };
}

/** VIEWER_RATE_LIMIT_EXEMPT: a comma-separated list of IPs and CIDRs (no keywords: each address is named on purpose). */
export function parseAddressList(raw: string | undefined): { list: string[]; error?: string } {
  const r = parseTrustedProxies(raw);
  if (r.error) return { list: [], error: r.error.replace(' or loopback/linklocal/uniquelocal', '') };
  const keywords = r.list.filter((x) => PROXY_KEYWORDS.has(x));
  if (keywords.length) return { list: [], error: `not an IP or CIDR: ${keywords.map((k) => JSON.stringify(k)).join(', ')}` };
  return r;
}

/** The ES384 (P-384) private key for self-signed IVS tokens; PEM, `\n` escapes allowed (one-line .env values). Never echoed. */
function checkSigningKey(raw: string | undefined): { pem?: string; error?: string } {
  if (!raw) return {};
  const pem = raw.includes('-----BEGIN') && !raw.includes('\n') ? raw.replace(/\\n/g, '\n') : raw;
  try {
    const key = createPrivateKey(pem);
    if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'secp384r1')
      return { error: 'must be an ECDSA P-384 (secp384r1) private key, as IVS self-signed tokens are ES384' };
    return { pem };
  } catch {
    return { error: 'not a PEM private key (expected the output of `openssl ecparam -name secp384r1 -genkey -noout`)' };
  }
}

const MAX_WHIP_TARGETS = 64;

/**
 * WHIP_TARGETS: a JSON array of {url, token?}. Every bad entry is named by its index (and origin: a URL's path may
 * be a secret, as Cloudflare's is); tokens are never echoed. Returns error suffixes to append to "WHIP_TARGETS".
 */
export function parseWhipTargets(raw: string | undefined): { targets: WhipTargetConfig[]; errors: string[] } {
  if (!raw) return { targets: [], errors: [': required when STAGE_PROVIDER=whip (JSON: [{"url":"https://…/whip","token":"…"}])'] };
  let list: unknown;
  try {
    list = JSON.parse(raw);
  } catch {
    // JSON.parse's message quotes the input, which holds tokens: say only that it is not JSON.
    return { targets: [], errors: [': not valid JSON (expected [{"url":"https://…/whip","token":"…"}])'] };
  }
  if (!Array.isArray(list) || list.length === 0) return { targets: [], errors: [': must be a non-empty JSON array of {url, token?}'] };
  if (list.length > MAX_WHIP_TARGETS) return { targets: [], errors: [`: at most ${MAX_WHIP_TARGETS} destinations`] };
  const targets: WhipTargetConfig[] = [];
  const errors: string[] = [];
  const seen = new Map<string, number>();
  list.forEach((entry: unknown, i) => {
    const bad = (msg: string) => errors.push(`[${i}]: ${msg}`);
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return bad('must be an object {url, token?}');
    const { url, token, ...rest } = entry as Record<string, unknown>;
    const unknownKeys = Object.keys(rest);
    if (unknownKeys.length) return bad(`unknown key(s) ${unknownKeys.map((k) => JSON.stringify(k)).join(', ')} (allowed: url, token)`);
    if (typeof url !== 'string') return bad('url is required (a string)');
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return bad('url is not a URL');
    }
    const where = `(${parsed.protocol}//${parsed.host})`;
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') return bad(`url must be http or https ${where}`);
    if (parsed.username || parsed.password) return bad(`url must not carry credentials; use token ${where}`);
    if (parsed.hash) return bad(`url must not have a #fragment ${where}`);
    if (token !== undefined && (typeof token !== 'string' || !/^[\x21-\x7e]{1,4096}$/.test(token)))
      return bad(`token must be a non-empty string of printable characters without spaces ${where}`);
    const dup = seen.get(parsed.href);
    if (dup !== undefined) return bad(`same url as entry ${dup} ${where}`);
    seen.set(parsed.href, i);
    targets.push({ url, ...(token !== undefined ? { token: token as string } : {}) });
  });
  return { targets: errors.length ? [] : targets, errors };
}

/** Reads `.env` beside the app (api-server/.env) if present, then the process environment (which wins). */
export function loadConfig(): Config {
  const envFile = join(import.meta.dirname, '..', '.env');
  if (existsSync(envFile)) process.loadEnvFile(envFile);
  return parseConfig(process.env);
}
