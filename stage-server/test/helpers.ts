/** Test helpers of the stage server: in-process and child-process servers, temp dirs, waiting for conditions. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pino from 'pino';
import { createStageServer, type StageServer, type StageServerOverrides } from '../src/app.js';
import { loadConfig, type Config } from '../src/config.js';

export const SECRET = 'test-stage-server-secret-0123456789';
export const appDir = resolve(import.meta.dirname, '..');
const repoRoot = resolve(appDir, '..');

export async function waitFor<T>(
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  { timeoutMs = 5000, intervalMs = 20, what = 'condition' } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export async function tempDir(): Promise<{ path: string; remove: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), 'stage-server-test-'));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

export function testConfig(env: Record<string, string>): Config {
  // An app dir without a .env file: tests must not depend on a developer's local settings.
  return loadConfig(
    { PORT: '0', HOST: '127.0.0.1', STAGE_SERVER_SECRET: SECRET, LOG_LEVEL: 'silent', API_SERVER_URL: 'http://127.0.0.1:9', ...env },
    join(tmpdir(), 'stage-server-no-dotenv'),
  );
}

/** A stage server in this process on 127.0.0.1:0. */
export async function startInProcess(
  env: Record<string, string>,
  overrides?: StageServerOverrides,
  logger: pino.Logger = pino({ level: 'silent' }),
): Promise<{ server: StageServer; base: string; config: Config }> {
  const config = testConfig(env);
  const server = createStageServer(config, logger, overrides);
  const port = await server.start();
  return { server, base: `http://127.0.0.1:${port}`, config };
}

export interface ChildServer {
  child: ChildProcess;
  port: number;
  base: string;
  output: () => string;
  /** Resolves with the exit code / signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `node --import tsx stage-server/src/index.ts` with PORT=0; the port is read from the `server.listening` log line. */
export async function startProcess(env: Record<string, string>, timeoutMs = 20_000): Promise<ChildServer> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(appDir, 'src', 'index.ts')], {
    cwd: repoRoot,
    env: {
      PATH: process.env.PATH ?? '',
      PORT: '0',
      HOST: '127.0.0.1',
      STAGE_SERVER_SECRET: SECRET,
      API_SERVER_URL: 'http://127.0.0.1:9',
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    child.once('exit', (code, signal) => res({ code, signal })),
  );
  let exitedEarly = false;
  void exited.then(() => (exitedEarly = true));
  const kill = async (signal: NodeJS.Signals = 'SIGKILL') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    return exited;
  };
  try {
    const port = await waitFor(
      () => {
        if (exitedEarly) throw new Error(`stage server exited before listening:\n${out}`);
        for (const line of out.split('\n')) {
          if (!line.startsWith('{')) continue;
          try {
            const j = JSON.parse(line) as { msg?: string; port?: number };
            if (j.msg === 'server.listening' && typeof j.port === 'number') return j.port;
          } catch {
            /* a partial line */
          }
        }
        return undefined;
      },
      { timeoutMs, intervalMs: 50, what: 'server.listening' },
    );
    return { child, port, base: `http://127.0.0.1:${port}`, output: () => out, exited, kill };
  } catch (e) {
    await kill();
    throw e;
  }
}

export function admin(base: string, secret = SECRET) {
  const headers = { authorization: `Bearer ${secret}` };
  return {
    create: (body: unknown = {}) =>
      fetch(`${base}/admin/stages`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      }),
    list: () => fetch(`${base}/admin/stages`, { headers }),
    get: (id: string) => fetch(`${base}/admin/stages/${id}`, { headers }),
    delete: (id: string) => fetch(`${base}/admin/stages/${id}`, { method: 'DELETE', headers }),
  };
}
