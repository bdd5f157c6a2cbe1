/**
 * The stage server the `local` provider drives in tests. The REAL stage server (stage-server/src/index.ts, started as
 * a child process on an ephemeral port) when it exists and answers its admin API; otherwise the fake admin server.
 * Either way the tests speak to it only over the admin HTTP API, so switching changes nothing else.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ListStagesResponseSchema, STAGE_SERVER_ROUTES, type LocalStage } from '@stagecast/protocol';
import { startFakeStageAdmin } from './fake-stage-admin.js';
import { waitFor } from './wait.js';

export const REPO_ROOT = resolve(import.meta.dirname, '..', '..', '..');
const STAGE_SERVER_ENTRY = join(REPO_ROOT, 'stage-server', 'src', 'index.ts');

export interface StageBackend {
  kind: 'real' | 'fake';
  url: string;
  secret: string;
  list(): Promise<LocalStage[]>;
  /** Creates a stage directly at the stage server (as if the API Server crashed before recording it). */
  createDirect(tags: Record<string, string>): Promise<LocalStage>;
  deleteDirect(stageId: string): Promise<void>;
  /** Ends it at once, as a crash would (the real server: SIGKILL). */
  kill(): Promise<void>;
  close(): Promise<void>;
}

/** Set to 'fake' to force the fake (e.g. while the stage server is broken). */
export const STAGE_BACKEND: 'auto' | 'fake' = 'auto';

async function adminClient(url: string, secret: string) {
  const h = { authorization: `Bearer ${secret}` };
  return {
    async list(): Promise<LocalStage[]> {
      const r = await fetch(url + STAGE_SERVER_ROUTES.stages, { headers: h });
      if (!r.ok) throw new Error(`list: ${r.status}`);
      return ListStagesResponseSchema.parse(await r.json()).stages;
    },
    async createDirect(tags: Record<string, string>): Promise<LocalStage> {
      const r = await fetch(url + STAGE_SERVER_ROUTES.stages, {
        method: 'POST',
        headers: { ...h, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'direct', tags }),
      });
      if (!r.ok) throw new Error(`create: ${r.status}`);
      return ((await r.json()) as { stage: LocalStage }).stage;
    },
    async deleteDirect(stageId: string): Promise<void> {
      const r = await fetch(url + STAGE_SERVER_ROUTES.stage(stageId), { method: 'DELETE', headers: h });
      if (!r.ok && r.status !== 404) throw new Error(`delete: ${r.status}`);
    },
  };
}

async function startReal(secret: string): Promise<StageBackend | undefined> {
  const dataDir = mkdtempSync(join(tmpdir(), 'sc-stage-'));
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', STAGE_SERVER_ENTRY], {
    cwd: join(REPO_ROOT, 'stage-server'),
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      PORT: '0',
      HOST: '127.0.0.1',
      STAGE_SERVER_SECRET: secret,
      DATA_DIR: dataDir,
      API_SERVER_URL: 'http://127.0.0.1:9', // participant reports go nowhere in these tests
      RTC_BIND_ADDRESS: '127.0.0.1',
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let port = 0;
  let out = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    const m = /"msg":"server\.listening"/.test(out) ? /"port":(\d+)[^\n]*"msg":"server\.listening"|"msg":"server\.listening"[^\n]*"port":(\d+)/.exec(out) : null;
    if (m) port = Number(m[1] ?? m[2]);
  });
  child.stderr!.resume();
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await gone;
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    await waitFor(() => port > 0 || (child.exitCode !== null ? Promise.reject(new Error('exited')) : false), {
      timeoutMs: 15_000,
      what: 'stage server to listen',
    });
    const url = `http://127.0.0.1:${port}`;
    const c = await adminClient(url, secret);
    await c.list();
    return {
      kind: 'real',
      url,
      secret,
      ...c,
      kill,
      close: async () => {
        if (child.exitCode === null && child.signalCode === null) {
          const gone = new Promise((r) => child.once('exit', r));
          child.kill('SIGTERM');
          const t = setTimeout(() => child.kill('SIGKILL'), 5000);
          await gone;
          clearTimeout(t);
        }
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  } catch {
    await kill();
    return undefined;
  }
}

export async function startStageBackend(secret: string): Promise<StageBackend> {
  if (STAGE_BACKEND === 'auto' && existsSync(STAGE_SERVER_ENTRY)) {
    const real = await startReal(secret);
    if (real) return real;
  }
  const fake = await startFakeStageAdmin(secret);
  const c = await adminClient(fake.url, secret);
  return { kind: 'fake', url: fake.url, secret, ...c, kill: () => fake.close(), close: () => fake.close() };
}
