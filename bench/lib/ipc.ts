/**
 * Parent ↔ child request/response over Node's IPC channel, and the bookkeeping that kills every child the bench
 * started when it ends (normally, on an error, or on Ctrl-C).
 */
import { fork, type ChildProcess } from 'node:child_process';

interface Request {
  id: number;
  cmd: string;
  args?: unknown;
}
interface Reply {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}

const children = new Set<ChildProcess>();
let exitHooked = false;

function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  const killAll = () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  };
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      killAll();
      process.exit(130);
    });
  }
}

/** Registers a child (any process the bench spawned) to be SIGKILLed when the bench exits. */
export function track(child: ChildProcess): ChildProcess {
  hookExit();
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

export interface Worker {
  child: ChildProcess;
  pid: number;
  call<T = unknown>(cmd: string, args?: unknown, timeoutMs?: number): Promise<T>;
  /** Asks the worker to end, then SIGKILLs it after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/** Forks a TypeScript worker (tsx) that answers with serve(). */
export function spawnWorker(file: string, argv: string[] = []): Promise<Worker> {
  const child = track(fork(file, argv, { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  let next = 1;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  child.on('message', (m: Reply | { ready: true }) => {
    if ('ready' in m) return;
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    clearTimeout(p.timer);
    if (m.ok) p.resolve(m.result);
    else p.reject(new Error(m.error));
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.once('exit', (code, sig) => {
    for (const p of pending.values()) {
      clearTimeout(p.timer);
      p.reject(new Error(`worker ${file} exited (${code ?? sig})`));
    }
    pending.clear();
  });
  const worker: Worker = {
    child,
    pid: child.pid!,
    call<T>(cmd: string, args?: unknown, timeoutMs = 60_000): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        if (!child.connected) return reject(new Error(`worker ${file} is gone`));
        const id = next++;
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`worker ${file}: ${cmd} timed out after ${timeoutMs} ms`));
        }, timeoutMs);
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
        child.send({ id, cmd, args } satisfies Request);
      });
    },
    async stop(graceMs = 5000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      if (child.connected) child.disconnect();
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
    },
  };
  return new Promise((resolve, reject) => {
    const onReady = (m: unknown) => {
      if (m && typeof m === 'object' && 'ready' in m) {
        child.off('message', onReady);
        resolve(worker);
      }
    };
    child.on('message', onReady);
    child.once('exit', (code) => reject(new Error(`worker ${file} exited before ready (${code})`)));
  });
}

/** Worker side: answers requests with `handlers`; `onEnd` runs when the parent disconnects (or dies). */
export function serve(handlers: Record<string, (args: any) => unknown>, onEnd: () => Promise<void> | void): void {
  if (!process.send) throw new Error('not started as a worker (no IPC channel)');
  process.on('message', (m: Request) => {
    const h = handlers[m.cmd];
    void (async () => {
      try {
        if (!h) throw new Error(`unknown command ${m.cmd}`);
        const result = await h(m.args);
        process.send?.({ id: m.id, ok: true, result } satisfies Reply);
      } catch (e) {
        process.send?.({ id: m.id, ok: false, error: e instanceof Error ? (e.stack ?? e.message) : String(e) } satisfies Reply);
      }
    })();
  });
  process.once('disconnect', () => {
    void (async () => {
      const force = setTimeout(() => process.exit(0), 5000);
      force.unref();
      try {
        await onEnd();
      } finally {
        process.exit(0);
      }
    })();
  });
  process.send({ ready: true });
}
