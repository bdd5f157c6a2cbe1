/**
 * The whole system as real processes, for the Media Server bench: stage server, API Server (local provider, a pool
 * of one-seat stages so every viewer has a stage of its own) and `mediaServers` Media Servers (bench-media-<i+1>,
 * each on its own port with its PUBLIC_URL), all on 127.0.0.1, each in its own data directory. e2e/helpers/apps.ts starts them; every child is SIGKILLed if the bench dies.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApp, type App } from '../../e2e/helpers/apps.js';
import { freePort } from '../../e2e/helpers/ports.js';
import { waitFor } from '../../e2e/helpers/wait.js';
import { json } from './env.js';
import { track } from './ipc.js';

export const SECRETS = {
  API_SECRET_KEY: 'bench-api-key-0123456789',
  MEDIA_SERVER_SECRET: 'bench-media-secret-0123456789',
  STAGE_SERVER_SECRET: 'bench-stage-secret-0123456789',
} as const;
export const INGEST_TOKEN = 'bench-ingest-token-0123456789';

export interface System {
  stage: App;
  api: App;
  /** The first Media Server started (the broadcaster publishes into it: the origin). */
  media?: App;
  medias: App[];
  /** Starts Media Server i (0 ≤ i < mediaServers). */
  startMedia(i?: number): Promise<App>;
  activeStages(): Promise<Array<{ stageArn: string; stageId: string; viewers: number }>>;
  join(): Promise<{ stageArn: string; stageId: string; token: string; playback: { url: string } }>;
  publishToken(stageArn: string): Promise<{ token: string; whipUrl: string }>;
  /** Each stage's owner Media Server (GET /api/media/stages, as a Media Server reads it). */
  owners(): Promise<Map<string, string | null>>;
  stop(): Promise<void>;
}

export async function startSystem(o: { minStages: number; maxStages: number; mediaServers?: number }): Promise<System> {
  const dir = mkdtempSync(join(tmpdir(), 'sc-bench-system-'));
  const apiPort = await freePort();
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  const apps: App[] = [];
  try {
    const stage = await startApp('stage-server', { ...SECRETS, DATA_DIR: join(dir, 'stage'), API_SERVER_URL: apiUrl, RTC_BIND_ADDRESS: '127.0.0.1' });
    track(stage.child);
    apps.push(stage);
    const mediaPorts: number[] = [];
    for (let i = 0; i < Math.max(1, o.mediaServers ?? 1); i++) mediaPorts.push(await freePort());
    const api = await startApp('api-server', {
      ...SECRETS,
      PORT: String(apiPort),
      DATA_DIR: join(dir, 'api'),
      STAGE_SERVER_URL: stage.url,
      MEDIA_SERVER_URL: `http://127.0.0.1:${mediaPorts[0]}`,
      STAGE_CAPACITY: '1',
      MIN_STAGES: String(o.minStages),
      MAX_STAGES: String(o.maxStages),
      SCALE_DOWN_COOLDOWN: '3600',
      VIEWER_HEARTBEAT_INTERVAL_MS: '3600000',
    });
    track(api.child);
    apps.push(api);
    const key = { 'x-api-key': SECRETS.API_SECRET_KEY };
    const sys: System = {
      stage,
      api,
      medias: [],
      async startMedia(i = 0) {
        const port = mediaPorts[i];
        if (port === undefined) throw new Error(`Media Server ${i}: the system was started with ${mediaPorts.length}`);
        const media = await startApp('media-server', {
          ...SECRETS,
          PORT: String(port),
          PUBLIC_URL: `http://127.0.0.1:${port}`,
          API_SERVER_URL: apiUrl,
          INGEST_TOKEN,
          RTC_BIND_ADDRESS: '127.0.0.1',
          SERVER_ID: mediaPorts.length === 1 ? 'bench-media' : `bench-media-${i + 1}`,
        });
        track(media.child);
        apps.push(media);
        sys.medias[i] = media;
        sys.media ??= media;
        return media;
      },
      async activeStages() {
        const r = await json<{ stages: Array<{ stageArn: string; stageId: string; state: string; viewers: number }> }>(`${apiUrl}/api/stages`, { headers: key });
        return r.body.stages.filter((s) => s.state === 'active');
      },
      async join() {
        // A 503 (no seat came in time) is retried, as a client honouring Retry-After would; bounded.
        for (let attempt = 1; ; attempt++) {
          const r = await json(`${apiUrl}/api/viewers/join`, { method: 'POST', headers: key, body: '{}' });
          if (r.status === 201) return r.body;
          if (r.status !== 503 || attempt >= 6) throw new Error(`join: ${r.status} ${JSON.stringify(r.body)} (attempt ${attempt})`);
          console.error(`join: 503 (${JSON.stringify(r.body)}), retrying`);
        }
      },
      async owners() {
        const r = await json<{ stages: Array<{ stageArn: string; mediaServerId?: string | null }> }>(`${apiUrl}/api/media/stages`, { headers: { authorization: `Bearer ${SECRETS.MEDIA_SERVER_SECRET}` } });
        if (r.status !== 200) throw new Error(`media stages: ${r.status} ${JSON.stringify(r.body)}`);
        return new Map(r.body.stages.map((st) => [st.stageArn, st.mediaServerId ?? null]));
      },
      async publishToken(stageArn) {
        const r = await json(`${apiUrl}/api/media/token`, { method: 'POST', headers: { authorization: `Bearer ${SECRETS.MEDIA_SERVER_SECRET}` }, body: JSON.stringify({ stageArn }) });
        if (r.status !== 200) throw new Error(`publish token: ${r.status} ${JSON.stringify(r.body)}`);
        return r.body;
      },
      async stop() {
        for (const a of [...apps].reverse()) await a.stop().catch(() => undefined);
        rmSync(dir, { recursive: true, force: true });
      },
    };
    await waitFor(async () => (await sys.activeStages()).length >= o.minStages, `${o.minStages} stages active`, 60_000, 200);
    return sys;
  } catch (e) {
    for (const a of apps.reverse()) await a.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}
