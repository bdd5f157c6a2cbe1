/** The REAL api-server process (`node --import tsx api-server/src/index.ts`), its port read from its log. */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from './stage-backend.js';
import { waitFor } from './wait.js';

export interface ApiProcess {
  child: ChildProcess;
  url: string;
  logs: () => Record<string, unknown>[];
  kill9(): Promise<void>;
  terminate(): Promise<number | null>;
}

export async function spawnApi(env: Record<string, string>): Promise<ApiProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'api-server', 'src', 'index.ts')], {
    cwd: join(REPO_ROOT, 'api-server'),
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Record<string, unknown>[] = [];
  let buf = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        /* not a log line */
      }
    }
  });
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  const kill9 = async () => {
    if (exited()) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await gone;
  };
  try {
    const listening = await waitFor(
      () => {
        if (exited()) throw new Error(`api-server exited: ${stderr.slice(-2000)}`);
        return lines.find((l) => l.msg === 'server.listening');
      },
      { timeoutMs: 20_000, what: 'server.listening' },
    );
    return {
      child,
      url: `http://127.0.0.1:${listening.port as number}`,
      logs: () => lines,
      kill9,
      async terminate() {
        if (exited()) return child.exitCode;
        const gone = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
        child.kill('SIGTERM');
        return gone;
      },
    };
  } catch (err) {
    await kill9();
    throw err;
  }
}
