/**
 * The life of an app process, once for every app: read the config (exit 78 naming every bad variable), start the
 * parts in order, and on SIGTERM / SIGINT stop them in reverse order within a deadline, then exit — 0 after a clean
 * stop, 1 when a part failed to stop or the deadline passed. An uncaught exception or unhandled rejection is logged
 * (fatal) and stops the process the same way, exit 1. A part that fails to start stops what had started, exit 1.
 */
import type { Logger } from 'pino';

/** A bad environment: the app's config.ts throws it (a subclass) with a message naming every bad variable. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** sysexits.h EX_CONFIG. */
export const EXIT_CONFIG = 78;

/** Reads the config; on a ConfigError prints its message and exits 78. */
export function loadConfigOrExit<C>(load: () => C, proc: Pick<ProcessLike, 'exit'> = process, print: (s: string) => void = console.error): C {
  try {
    return load();
  } catch (err) {
    if (err instanceof ConfigError) {
      print(err.message);
      proc.exit(EXIT_CONFIG);
      return undefined as never; // process.exit does not return
    }
    throw err;
  }
}

export interface ProcessPart {
  /** Names the part in logs ('server', 'rtc'). */
  name: string;
  start?(): unknown;
  stop(): unknown;
}

/** What runProcess needs of `process` (tests give a fake). */
export interface ProcessLike {
  on(event: 'SIGTERM' | 'SIGINT' | 'uncaughtException' | 'unhandledRejection', listener: (arg?: unknown) => void): unknown;
  exit(code: number): void;
}

export interface RunProcessOptions {
  log: Logger;
  /** Started in this order, stopped in reverse. */
  parts: ProcessPart[];
  /** After this long a stop gives up: logged, exit 1. Default 10 s. */
  stopTimeoutMs?: number;
  proc?: ProcessLike;
}

export interface RunningProcess {
  /** Stops every part in reverse order and exits; idempotent (the first reason wins). */
  stop(reason: string, code?: number): Promise<void>;
}

export async function runProcess(o: RunProcessOptions): Promise<RunningProcess> {
  const proc = o.proc ?? process;
  const log = o.log;
  const started: ProcessPart[] = [];
  let stopping: Promise<void> | undefined;

  const exit = (code: number): void => {
    log.flush();
    proc.exit(code);
  };

  const stop = (reason: string, code = 0): Promise<void> => {
    if (stopping) return stopping;
    stopping = (async () => {
      log.info({ reason }, 'process.stopping');
      const deadlineMs = o.stopTimeoutMs ?? 10_000;
      const deadline = setTimeout(() => {
        log.error({ timeoutMs: deadlineMs }, 'process.stop_timeout');
        exit(1);
      }, deadlineMs);
      deadline.unref?.();
      let failed = false;
      for (const part of [...started].reverse()) {
        try {
          await part.stop();
        } catch (err) {
          failed = true;
          log.error({ err, part: part.name }, 'process.stop_failed');
        }
      }
      clearTimeout(deadline);
      log.info({ code: failed ? 1 : code }, 'process.exit');
      exit(failed ? 1 : code);
    })();
    return stopping;
  };

  proc.on('SIGTERM', () => void stop('SIGTERM'));
  proc.on('SIGINT', () => void stop('SIGINT'));
  proc.on('uncaughtException', (err) => {
    log.fatal({ err }, 'process.uncaught_exception');
    void stop('uncaughtException', 1);
  });
  proc.on('unhandledRejection', (err) => {
    log.fatal({ err }, 'process.unhandled_rejection');
    void stop('unhandledRejection', 1);
  });

  for (const part of o.parts) {
    if (stopping) break;
    started.push(part);
    try {
      await part.start?.();
    } catch (err) {
      log.fatal({ err, part: part.name }, 'process.start_failed');
      void stop('start_failed', 1);
      break;
    }
  }
  return { stop };
}
