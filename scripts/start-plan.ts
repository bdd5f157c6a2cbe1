/**
 * What `npm start` runs, as plain data: which processes, on which ports, with which environment. Pure (no I/O), so
 * the plan is tested without starting anything; scripts/start.ts applies it.
 *
 * MEDIA_SERVERS=N and STAGE_SERVERS=M (default 1; `auto` = one per core) start N Media Servers on consecutive ports
 * from MEDIA_PORT (3001) and M stage servers from STAGE_PORT (default: right after the Media Servers, 3002 with one),
 * each with its own PUBLIC_URL (and SERVER_ID / DATA_DIR where two would clash), and one API Server on API_PORT
 * (3000) that lists every stage server in STAGE_SERVER_URLS.
 */
import { join } from 'node:path';

export interface PlannedApp {
  /** Unique: the log prefix and the key of its process. */
  name: string;
  /** The workspace it runs (`node --import tsx src/index.ts` there). */
  dir: 'stage-server' | 'api-server' | 'media-server';
  port: number;
  /** Its base URL (PUBLIC_HOST, 127.0.0.1 by default): where it is health-waited and what is printed. */
  url: string;
  /** Set over the environment `npm start` was given (and PORT from `port`). */
  env: Record<string, string>;
}

export interface StartPlan {
  /** Start order, group by group: every stage server, then the API Server, then every Media Server. */
  groups: PlannedApp[][];
  api: string;
  /** The WHIP URL for OBS: the API Server's front door, which redirects to the Media Server that takes the broadcast. */
  whip: string;
  mediaServers: string[];
  stageServers: string[];
}

export interface PlanContext {
  /** Secrets given or generated (API_SECRET_KEY, MEDIA_SERVER_SECRET, STAGE_SERVER_SECRET, INGEST_TOKEN, VIEWER_API_KEY). */
  secrets: Record<string, string>;
  dataDir: string;
  webDist: string;
}

export class PlanError extends Error {}

/** Most processes of one kind `npm start` runs (one machine). */
export const MAX_PER_KIND = 64;

/** MEDIA_SERVERS / STAGE_SERVERS: unset or empty → 1; `auto` → cores; else a whole number 1…MAX_PER_KIND. */
export function processCount(name: string, raw: string | undefined, cores: number): number {
  if (raw === undefined || raw.trim() === '') return 1;
  const v = raw.trim().toLowerCase();
  if (v === 'auto') return Math.max(1, Math.min(MAX_PER_KIND, Math.floor(cores)));
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > MAX_PER_KIND) throw new PlanError(`${name}=${raw}: must be a whole number from 1 to ${MAX_PER_KIND}, or auto (one per core: ${cores})`);
  return Number(v);
}

function port(name: string, raw: string | undefined, def: number): number {
  if (raw === undefined || raw.trim() === '') return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new PlanError(`${name}=${raw}: must be a port number (1…65535)`);
  return n;
}

export function planProcesses(env: Record<string, string | undefined>, cores: number, ctx: PlanContext): StartPlan {
  const media = processCount('MEDIA_SERVERS', env.MEDIA_SERVERS, cores);
  const stages = processCount('STAGE_SERVERS', env.STAGE_SERVERS, cores);
  const apiPort = port('API_PORT', env.API_PORT, 3000);
  const mediaPort = port('MEDIA_PORT', env.MEDIA_PORT, 3001);
  // Right after the Media Servers unless set: 3002 with one Media Server, as always.
  const stagePort = port('STAGE_PORT', env.STAGE_PORT, mediaPort + media);
  const mediaPorts = Array.from({ length: media }, (_, i) => mediaPort + i);
  const stagePorts = Array.from({ length: stages }, (_, i) => stagePort + i);
  const all = [apiPort, ...mediaPorts, ...stagePorts];
  if (all.some((p) => p > 65535)) throw new PlanError(`ports run past 65535 (MEDIA_PORT=${mediaPort} ×${media}, STAGE_PORT=${stagePort} ×${stages})`);
  const clash = all.find((p, i) => all.indexOf(p) !== i);
  if (clash !== undefined)
    throw new PlanError(
      `port ${clash} is planned twice: API_PORT=${apiPort}, Media Servers ${mediaPorts[0]}…${mediaPorts.at(-1)}, stage servers ${stagePorts[0]}…${stagePorts.at(-1)} (set MEDIA_PORT / STAGE_PORT apart)`,
    );

  const host = env.PUBLIC_HOST || '127.0.0.1';
  const url = (p: number) => `http://${host}:${p}`;
  const api = url(apiPort);
  const stageUrls = stagePorts.map(url);
  const mediaUrls = mediaPorts.map(url);
  // Every process: the secrets, where the API Server is, logging. STAGE_SERVER_URL(S) only where it is read.
  const common: Record<string, string> = {
    ...ctx.secrets,
    DATA_DIR: ctx.dataDir,
    API_SERVER_URL: api,
    LOG_LEVEL: env.LOG_LEVEL || 'info',
  };
  const numbered = (base: string, i: number, n: number) => (n === 1 ? base : `${base}-${i + 1}`);

  const stageApps: PlannedApp[] = stagePorts.map((p, i) => ({
    name: numbered('stage-server', i, stages),
    dir: 'stage-server',
    port: p,
    url: url(p),
    // Each keeps its stages in its own file: the first where a single stage server always has.
    env: { ...common, PUBLIC_URL: url(p), ...(i > 0 ? { DATA_DIR: join(ctx.dataDir, `stage-server-${i + 1}`) } : {}) },
  }));
  const apiApp: PlannedApp = {
    name: 'api-server',
    dir: 'api-server',
    port: apiPort,
    url: api,
    env: {
      ...common,
      STAGE_PROVIDER: env.STAGE_PROVIDER || 'local',
      STAGE_SERVER_URLS: stageUrls.join(','),
      STAGE_SERVER_URL: '',
      MEDIA_SERVER_URL: mediaUrls[0]!,
      WEB_DIST_DIR: ctx.webDist,
    },
  };
  const mediaApps: PlannedApp[] = mediaPorts.map((p, i) => ({
    name: numbered('media-server', i, media),
    dir: 'media-server',
    port: p,
    url: url(p),
    env: {
      ...common,
      PUBLIC_URL: url(p),
      SERVER_ID: media === 1 && env.SERVER_ID ? env.SERVER_ID : `media-${i + 1}`,
      // The operator key has no job in the Media Server (it warns when given one): it is kept off that process.
      API_SECRET_KEY: '',
    },
  }));
  return { groups: [stageApps, [apiApp], mediaApps], api, whip: `${api}/whip`, mediaServers: mediaUrls, stageServers: stageUrls };
}
