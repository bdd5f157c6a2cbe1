/**
 * The whole system as real processes, wired together on 127.0.0.1: stage servers (local IVS stand-ins), the API
 * Server (STAGE_PROVIDER=local, small stages, short heartbeats) and Media Servers, each started as
 * `npm start -w <app>` would (helpers/apps.ts), with their data in a temporary directory removed by stop().
 * The API Server and every Media Server get fixed free ports up front: the API Server names a Media Server's WHIP
 * URL in ingest tokens, and a restarted API Server must come back where the others expect it.
 * With `mediaServers: N` / `stageServers: M` it is a pool: Media Server i has SERVER_ID e2e-media-<i+1>, its own
 * PORT and PUBLIC_URL; the API Server gets every stage server in STAGE_SERVER_URLS (and the first in
 * STAGE_SERVER_URL, which older API Servers read).
 *
 * API
 *   const sys = await startSystem({ stageCapacity: 2 })   // stage server → API Server → Media Server, all healthy
 *   sys.api · sys.stage · sys.media                        // App: url, port, logs, waitForLog(), stop(), kill9(), sigterm()
 *   sys.medias[i] · sys.stageServers[i] · sys.mediaIds[i]  // every Media Server / stage server of a pool
 *   sys.whipUrl                                            // the first Media Server's WHIP ingest (POST /whip)
 *   sys.frontDoorUrl                                       // the API Server's WHIP front door (POST /whip → 307)
 *   await sys.ingestToken()                                // POST /api/media/ingest-token (x-api-key)
 *   await sys.join() / sys.leave(viewerId)                 // POST /api/viewers/join, DELETE /api/viewers/:id
 *   await sys.heartbeat(viewerId, stageArn?)               // POST /api/viewers/:id/heartbeat → { status, body }
 *   await sys.stages()                                     // GET /api/stages (operator view of the pool)
 *   await sys.mediaStages()                                // GET /api/media/stages (owners, handovers, origin)
 *   await sys.mediaStats(i?) / sys.stageStats(i?)          // Media Server GET /, stage server GET /stats
 *   await sys.killApi() / sys.startApi()                   // SIGKILL, then the same port and data dir
 *   await sys.stop()                                       // Media Servers → API Server → stage servers; rm -rf
 *   logTime(line)                                          // ms epoch of a pino line (ISO or epoch `time`)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  API_ROUTES,
  IngestTokenResponseSchema,
  MediaServerStatsSchema,
  StageListResponseSchema,
  StageServerStatsResponseSchema,
  StagesResponseSchema,
  ViewerJoinResponseSchema,
  type IngestTokenResponse,
  type MediaServerStats,
  type StageListResponse,
  type StageServerStatsResponse,
  type StagesResponse,
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
  /** Viewer heartbeat interval (ms). Default 120000: test viewers that send none keep their seats. */
  viewerHeartbeatIntervalMs?: number;
  /** Media Server processes (default 1). */
  mediaServers?: number;
  /** Stage server processes (default 1). */
  stageServers?: number;
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
  /** The first stage server. */
  readonly stage: App;
  /** The first Media Server. */
  readonly media: App;
  /** Every stage server, in start order (a killed one stays in its place). */
  readonly stageServers: readonly App[];
  /** Every Media Server, in start order (a killed one stays in its place until startMedia(i) replaces it). */
  readonly medias: readonly App[];
  /** SERVER_ID of medias[i]. */
  readonly mediaIds: readonly string[];
  /** Base URL (PUBLIC_URL) of medias[i]. */
  readonly mediaUrls: readonly string[];
  readonly apiUrl: string;
  readonly mediaUrl: string;
  readonly whipUrl: string;
  /** The API Server's WHIP front door: POST answers 307 to a live Media Server's /whip. */
  readonly frontDoorUrl: string;
  ingestToken(): Promise<IngestTokenResponse>;
  join(userId?: string): Promise<ViewerJoinResponse>;
  leave(viewerId: string): Promise<number>;
  heartbeat(viewerId: string, playingStageArn?: string): Promise<{ status: number; body: unknown }>;
  stages(): Promise<StageListResponse['stages']>;
  /** GET /api/media/stages as a Media Server sees it: each stage's owner (and previous owner), and the origin. */
  mediaStages(): Promise<StagesResponse>;
  mediaStats(i?: number): Promise<MediaServerStats>;
  stageStats(i?: number): Promise<StageServerStatsResponse>;
  /** (Re)starts Media Server i on its port with its SERVER_ID, once the previous process is gone. */
  startMedia(i: number): Promise<App>;
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
  const nMedia = Math.max(1, o.mediaServers ?? 1);
  const nStage = Math.max(1, o.stageServers ?? 1);
  const apiPort = await freePort();
  const mediaPorts: number[] = [];
  for (let i = 0; i < nMedia; i++) mediaPorts.push(await freePort());
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  const mediaUrls = mediaPorts.map((p) => `http://127.0.0.1:${p}`);
  const mediaIds = mediaPorts.map((_, i) => `e2e-media-${i + 1}`);
  const mediaUrl = mediaUrls[0]!;
  const started: App[] = [];
  const stageServers: App[] = [];
  const medias: App[] = [];
  let api: App | undefined;
  let stopped = false;

  const apiEnv = (): Record<string, string> => ({
    ...SECRETS,
    PORT: String(apiPort),
    DATA_DIR: join(dataDir, 'api'),
    STAGE_PROVIDER: 'local',
    STAGE_SERVER_URL: stageServers[0]!.url,
    ...(nStage > 1 ? { STAGE_SERVER_URLS: stageServers.map((s) => s.url).join(',') } : {}),
    MEDIA_SERVER_URL: mediaUrl,
    STAGE_CAPACITY: String(o.stageCapacity ?? 2),
    MIN_STAGES: String(o.minStages ?? 1),
    MAX_STAGES: String(o.maxStages ?? 6),
    SCALE_DOWN_COOLDOWN: String(o.scaleDownCooldownS ?? 1),
    HEARTBEAT_INTERVAL_MS: String(o.heartbeatIntervalMs ?? 500),
    // Test viewers do not send heartbeats unless they rejoin like /watch: their seats must outlive the test.
    VIEWER_HEARTBEAT_INTERVAL_MS: String(o.viewerHeartbeatIntervalMs ?? 120_000),
    ...o.env?.api,
  });

  const mediaEnv = (i: number): Record<string, string> => ({
    MEDIA_SERVER_SECRET: SECRETS.MEDIA_SERVER_SECRET,
    PORT: String(mediaPorts[i]),
    PUBLIC_URL: mediaUrls[i]!,
    API_SERVER_URL: apiUrl,
    SERVER_ID: mediaIds[i]!,
    RTC_BIND_ADDRESS: bind,
    ...o.env?.media,
  });

  const sys: StagecastSystem = {
    dataDir,
    get api() {
      return api!;
    },
    get stage() {
      return stageServers[0]!;
    },
    get media() {
      return medias[0]!;
    },
    stageServers,
    medias,
    mediaIds,
    mediaUrls,
    apiUrl,
    mediaUrl,
    whipUrl: `${mediaUrl}/whip`,
    frontDoorUrl: `${apiUrl}${API_ROUTES.whipFrontDoor}`,
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
    heartbeat(viewerId, playingStageArn) {
      return getJson(`${apiUrl}/api/viewers/${encodeURIComponent(viewerId)}/heartbeat`, {
        method: 'POST',
        headers: { 'x-api-key': SECRETS.API_SECRET_KEY },
        body: JSON.stringify(playingStageArn ? { playingStageArn } : {}),
      });
    },
    async stages() {
      const r = await getJson(`${apiUrl}/api/stages`, { headers: { 'x-api-key': SECRETS.API_SECRET_KEY } });
      if (r.status !== 200) throw new Error(`stages: ${r.status} ${JSON.stringify(r.body)}`);
      return StageListResponseSchema.parse(r.body).stages;
    },
    async mediaStages() {
      const r = await getJson(`${apiUrl}/api/media/stages`, { headers: { authorization: `Bearer ${SECRETS.MEDIA_SERVER_SECRET}` } });
      if (r.status !== 200) throw new Error(`media stages: ${r.status} ${JSON.stringify(r.body)}`);
      return StagesResponseSchema.parse(r.body);
    },
    async mediaStats(i = 0) {
      const r = await getJson(`${mediaUrls[i]}/`);
      if (r.status !== 200) throw new Error(`media stats: ${r.status} ${JSON.stringify(r.body)}`);
      return MediaServerStatsSchema.parse(r.body);
    },
    async stageStats(i = 0) {
      const r = await getJson(`${stageServers[i]!.url}/stats`);
      if (r.status !== 200) throw new Error(`stage stats: ${r.status} ${JSON.stringify(r.body)}`);
      return StageServerStatsResponseSchema.parse(r.body);
    },
    async startMedia(i) {
      const prev = medias[i];
      if (prev?.alive()) return prev;
      const m = await startApp('media-server', mediaEnv(i));
      started.push(m);
      medias[i] = m;
      await m.waitForLog((l) => l.msg === 'registered', `Media Server ${mediaIds[i]} registered with the API Server`);
      return m;
    },
    async killApi() {
      await api?.kill9();
    },
    async startApi() {
      if (api && api.child.exitCode === null && api.child.signalCode === null) return api;
      api = await startApp('api-server', apiEnv());
      started.push(api);
      await waitFor(async () => (await fetch(`${apiUrl}/health`)).status < 500 || undefined, 'API Server /health', 10_000);
      return api;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      const errors: unknown[] = [];
      // Media Servers at once: each drains toward the others, and stopping them one by one would move every stage
      // from server to server on the way out.
      const results = await Promise.allSettled(medias.map((m) => m.stop()));
      for (const r of results) if (r.status === 'rejected') errors.push(r.reason);
      for (const a of [api, ...stageServers]) {
        if (!a) continue;
        try {
          await a.stop();
        } catch (err) {
          errors.push(err);
        }
      }
      // Earlier processes (before a restart) are already dead; make sure.
      for (const a of started) await a.kill9().catch(() => undefined);
      rmSync(dataDir, { recursive: true, force: true });
      if (errors.length) throw errors[0];
    },
  };

  try {
    for (let i = 0; i < nStage; i++) {
      const stage = await startApp('stage-server', {
        STAGE_SERVER_SECRET: SECRETS.STAGE_SERVER_SECRET,
        DATA_DIR: join(dataDir, `stage-${i + 1}`),
        API_SERVER_URL: apiUrl,
        RTC_BIND_ADDRESS: bind,
        ...o.env?.stage,
      });
      started.push(stage);
      stageServers.push(stage);
    }
    await sys.startApi();
    for (let i = 0; i < nMedia; i++) await sys.startMedia(i);
  } catch (err) {
    await sys.stop().catch(() => undefined);
    throw err;
  }
  return sys;
}
