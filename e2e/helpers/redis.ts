/**
 * A real redis-server per test (scripts/setup.sh installs it): on a free port on 127.0.0.1, without persistence
 * unless asked, stopped with the test. restart() brings it back on the same port (with its data only when
 * `persistDir` was given); kill() is a SIGKILL (an outage).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { freePort } from './ports.js';

export interface RedisServer {
  port: number;
  url: string;
  /** SIGKILL: clients see the connection drop. */
  kill(): Promise<void>;
  /** Starts again on the same port (after kill()). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** Whether redis-server is installed (scripts/setup.sh installs it). */
export function redisAvailable(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** Resolves once a TCP connection to the port is accepted and PING answers PONG (bounded). */
async function waitForPong(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port });
      const t = setTimeout(() => (s.destroy(), resolve(false)), 500);
      s.once('error', () => (clearTimeout(t), resolve(false)));
      s.once('connect', () => s.write('PING\r\n'));
      s.once('data', (d) => {
        clearTimeout(t);
        s.destroy();
        resolve(d.toString().startsWith('+PONG'));
      });
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer PING in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startRedis(opts: { persistDir?: string } = {}): Promise<RedisServer> {
  if (!redisAvailable()) throw new Error('redis-server is not installed: run bash scripts/setup.sh (or apt-get install redis-server)');
  const port = await freePort();
  let proc: ChildProcess | undefined;
  const launch = async () => {
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', opts.persistDir ? 'yes' : 'no', '--protected-mode', 'no'];
    if (opts.persistDir) args.push('--dir', opts.persistDir, '--appendfsync', 'always');
    const p = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'inherit'] });
    proc = p;
    await waitForPong(port, 10_000);
  };
  const kill = async () => {
    const p = proc;
    proc = undefined;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = once(p, 'exit');
    p.kill('SIGKILL');
    await exited;
  };
  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    kill,
    restart: launch,
    stop: kill,
  };
}
