/**
 * The whole system as real processes, wired together on 127.0.0.1: the stage server (local IVS stand-in), the API
 * Server (STAGE_PROVIDER=local, small stages, short heartbeats) and the Media Server, each started as
 * `npm start -w <app>` would (helpers/apps.ts), with their data in a temporary directory removed by stop().
 * The API Server and the Media Server get fixed free ports up front: the API Server names the Media Server's
 * WHIP URL in ingest tokens, and a restarted API Server must come back where the others expect it.
 *
 * API
 *   const sys = await startSystem({ stageCapacity: 2 })   // stage server → API Server → Media Server, all healthy
 *   sys.api · sys.stage · sys.media                        // App: url, port, logs, waitForLog(), stop(), kill9()
 *   sys.whipUrl                                            // the Media Server's WHIP ingest (POST /whip)
 *   await sys.ingestToken()                                // POST /api/media/ingest-token (x-api-key)
 *   await sys.join() / sys.leave(viewerId)                 // POST /api/viewers/join, DELETE /api/viewers/:id
 *   await sys.stages()                                     // GET /api/stages (operator view of the pool)
 *   await sys.mediaStats() / sys.stageStats()              // Media Server GET /, stage server GET /stats
 *   await sys.killApi() / sys.startApi()                   // SIGKILL, then the same port and data dir
 *   await sys.stop()                                       // Media Server → API Server → stage server; rm -rf
 *   logTime(line)                                          // ms epoch of a pino line (ISO or epoch `time`)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  IngestTokenResponseSchema,
  MediaServerStatsSchema,
  StageListResponseSchema,
  StageServerStatsResponseSchema,
  ViewerJoinResponseSchema,
  type IngestTokenResponse,
  type MediaServerStats,
  type StageListResponse,
  type StageServerStatsResponse,
  type ViewerJoinResponse,
} from '@stagecast/protocol';
import { buildWebIfNeeded } from '../../scripts/web-build.js';
import { startApp, type App } from './apps.js';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

export const SECRETS = {
  API_SECRET_KEY: 'e2e-api-key-0123456789',
  MEDIA_SERVER_SECRET: 'e2e-media-secret-0123456789',
  STAGE_SERVER_SECRET: 'e2e-stage-secret-0123456789',
} as const;

export interface SystemOptions {
  /** Viewers per stage (API STAGE_CAPACITY). Default 2, so a few joins scale the pool. */
  stageCapacity?: number;
  minStages?: number;
  maxStages?: number;
  /** Seconds a stage stays empty before it is deleted. Default 1. */
  scaleDownCooldownS?: number;
  /** Media Server heartbeat interval the API Server asks for (ms). Default 500. */
  heartbeatIntervalMs?: number;
  /** ICE bind address of the stage server and the Media Server (inside a netns: 127.0.0.2). Default 127.0.0.1. */
  rtcBindAddress?: string;
  /** Extra environment per app (wins over the defaults). */
  env?: { api?: Record<string, string>; stage?: Record<string, string>; media?: Record<string, string> };
  /** Parent of the temporary data directory. */
  tmpRoot?: string;
}

export interface StagecastSystem {
  readonly dataDir: string;
  readonly api: App;
  readonly stage: App;
  readonly media: App;
  readonly apiUrl: string;
  readonly mediaUrl: string;
  readonly whipUrl: string;
  ingestToken(): Promise<IngestTokenResponse>;
  join(userId?: string): Promise<ViewerJoinResponse>;
  leave(viewerId: string): Promise<number>;
  stages(): Promise<StageListResponse['stages']>;
  mediaStats(): Promise<MediaServerStats>;
  stageStats(): Promise<StageServerStatsResponse>;
  killApi(): Promise<void>;
  startApi(): Promise<App>;
  stop(): Promise<void>;
}

/** ms epoch of a pino log line. */
export function logTime(l: Record<string, unknown>): number {
  const t = l.time;
  return typeof t === 'number' ? t : Date.parse(String(t));
}

async function getJson(url: string, init: RequestInit = {}): Promise<{ status: number; body: unknown }> {
  const r = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000), headers: { ...(init.body ? { 'content-type': 'application/json' } : {}), ...(init.headers as Record<string, string>) } });
  const text = await r.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: r.status, body };
}

export async function startSystem(o: SystemOptions = {}): Promise<StagecastSystem> {
  // The API Server serves web/dist: on a fresh clone there is none, and after an edit of web/ it is stale.
  buildWebIfNeeded(undefined, () => undefined);
  const dataDir = mkdtempSync(join(o.tmpRoot ?? tmpdir(), 'sc-e2e-system-'));
  const bind = o.rtcBindAddress ?? '127.0.0.1';
  const apiPort = await freePort();
  const mediaPort = await freePort();
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  const mediaUrl = `http://127.0.0.1:${mediaPort}`;
  const started: App[] = [];
  let stage: App | undefined;
  let api: App | undefined;
  let media: App | undefined;
  let stopped = false;

  const apiEnv = (stageUrl: string): Record<string, string> => ({
    ...SECRETS,
    PORT: String(apiPort),
    DATA_DIR: join(dataDir, 'api'),
    STAGE_PROVIDER: 'local',
    STAGE_SERVER_URL: stageUrl,
    MEDIA_SERVER_URL: mediaUrl,
    STAGE_CAPACITY: String(o.stageCapacity ?? 2),
    MIN_STAGES: String(o.minStages ?? 1),
    MAX_STAGES: String(o.maxStages ?? 6),
    SCALE_DOWN_COOLDOWN: String(o.scaleDownCooldownS ?? 1),
    HEARTBEAT_INTERVAL_MS: String(o.heartbeatIntervalMs ?? 500),
    // Test viewers do not send heartbeats: their seats must outlive the test.
    VIEWER_HEARTBEAT_INTERVAL_MS: '120000',
    ...o.env?.api,
  });

  const sys: StagecastSystem = {
    dataDir,
    get api() {
      return api!;
    },
    get stage() {
      return stage!;
    },
    get media() {
      return media!;
    },
    apiUrl,
    mediaUrl,
    whipUrl: `${mediaUrl}/whip`,
    async ingestToken() {
      const r = await getJson(`${apiUrl}/api/media/ingest-token`, { method: 'POST', headers: { 'x-api-key': SECRETS.API_SECRET_KEY } });
      if (r.status !== 200) throw new Error(`ingest-token: ${r.status} ${JSON.stringify(r.body)}`);
      return IngestTokenResponseSchema.parse(r.body);
    },
    async join(userId) {
      const r = await getJson(`${apiUrl}/api/viewers/join`, { method: 'POST', headers: { 'x-api-key': SECRETS.API_SECRET_KEY }, body: JSON.stringify(userId ? { userId } : {}) });
      if (r.status !== 201) throw new Error(`join: ${r.status} ${JSON.stringify(r.body)}`);
      return ViewerJoinResponseSchema.parse(r.body);
    },
    async leave(viewerId) {
      return (await getJson(`${apiUrl}/api/viewers/${viewerId}`, { method: 'DELETE', headers: { 'x-api-key': SECRETS.API_SECRET_KEY } })).status;
    },
    async stages() {
      const r = await getJson(`${apiUrl}/api/stages`, { headers: { 'x-api-key': SECRETS.API_SECRET_KEY } });
      if (r.status !== 200) throw new Error(`stages: ${r.status} ${JSON.stringify(r.body)}`);
      return StageListResponseSchema.parse(r.body).stages;
    },
    async mediaStats() {
      const r = await getJson(`${mediaUrl}/`);
      if (r.status !== 200) throw new Error(`media stats: ${r.status} ${JSON.stringify(r.body)}`);
      return MediaServerStatsSchema.parse(r.body);
    },
    async stageStats() {
      const r = await getJson(`${stage!.url}/stats`);
      if (r.status !== 200) throw new Error(`stage stats: ${r.status} ${JSON.stringify(r.body)}`);
      return StageServerStatsResponseSchema.parse(r.body);
    },
    async killApi() {
      await api?.kill9();
    },
    async startApi() {
      if (api && api.child.exitCode === null && api.child.signalCode === null) return api;
      api = await startApp('api-server', apiEnv(stage!.url));
      started.push(api);
      await waitFor(async () => (await fetch(`${apiUrl}/health`)).status < 500 || undefined, 'API Server /health', 10_000);
      return api;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      const errors: unknown[] = [];
      for (const a of [media, api, stage]) {
        if (!a) continue;
        try {
          await a.stop();
        } catch (err) {
          errors.push(err);
        }
      }
      // Earlier API Server processes (before a restart) are already dead; make sure.
      for (const a of started) await a.kill9().catch(() => undefined);
      rmSync(dataDir, { recursive: true, force: true });
      if (errors.length) throw errors[0];
    },
  };

  try {
    stage = await startApp('stage-server', {
      STAGE_SERVER_SECRET: SECRETS.STAGE_SERVER_SECRET,
      DATA_DIR: join(dataDir, 'stage'),
      API_SERVER_URL: apiUrl,
      RTC_BIND_ADDRESS: bind,
      ...o.env?.stage,
    });
    started.push(stage);
    await sys.startApi();
    media = await startApp('media-server', {
      MEDIA_SERVER_SECRET: SECRETS.MEDIA_SERVER_SECRET,
      PORT: String(mediaPort),
      API_SERVER_URL: apiUrl,
      SERVER_ID: 'e2e-media-1',
      RTC_BIND_ADDRESS: bind,
      ...o.env?.media,
    });
    started.push(media);
    await media.waitForLog((l) => l.msg === 'registered', 'Media Server registered with the API Server');
  } catch (err) {
    await sys.stop().catch(() => undefined);
    throw err;
  }
  return sys;
}
