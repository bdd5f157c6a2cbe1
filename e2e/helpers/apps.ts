/**
 * Starts our apps as real processes (as `npm start -w <app>` does) on ephemeral ports, reads their JSON logs,
 * and stops them with SIGTERM (SIGKILL after a grace period). Inside the test's network namespace when run there.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { waitFor } from './wait.js';

export const ROOT = resolve(import.meta.dirname, '..', '..');

export interface App {
  name: string;
  port: number;
  url: string;
  child: ChildProcess;
  logs: Record<string, unknown>[];
  /** The last 4 kB of stderr. */
  stderr(): string;
  waitForLog(pred: (l: Record<string, unknown>) => boolean, what: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  stop(): Promise<number | null>;
  kill9(): Promise<void>;
  /** SIGTERM without waiting (a drain is observed while it runs); resolves with the exit code once it is gone. */
  sigterm(): Promise<number | null>;
  /** False once the process has exited. */
  alive(): boolean;
}

/** `nodeArgs` go before the script (e.g. `--inspect=127.0.0.1:0` for a bench that reads the heap after a full GC). */
export async function startApp(name: 'api-server' | 'stage-server' | 'media-server', env: Record<string, string>, nodeArgs: readonly string[] = []): Promise<App> {
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', join(ROOT, name, 'src', 'index.ts')], {
    cwd: join(ROOT, name),
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  let buf = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        logs.push({ msg: line });
      }
    }
  });
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const waitForLog: App['waitForLog'] = (pred, what, timeoutMs = 20_000) =>
    waitFor(
      () => {
        if (child.exitCode !== null) throw new Error(`${name} exited (${child.exitCode}): ${stderr}`);
        return logs.find(pred);
      },
      `${name}: ${what}`,
      timeoutMs,
    );
  const listening = await waitForLog((l) => l.msg === 'server.listening', 'listening');
  const port = Number(listening.port);
  return {
    name,
    port,
    url: `http://127.0.0.1:${port}`,
    child,
    logs,
    stderr: () => stderr,
    waitForLog,
    async stop() {
      if (child.exitCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
    async kill9() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
    sigterm() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
    alive: () => child.exitCode === null && child.signalCode === null,
  };
}
