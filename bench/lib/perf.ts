/**
 * Optional profiling of a process under test with Linux perf (when it is installed and allowed): samples every
 * thread (native libdatachannel/libsrtp/libjuice and JIT-compiled JavaScript when the process runs with
 * --perf-basic-prof) for the length of a measuring window, and returns a flat report by shared object and symbol.
 */
import { spawn, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { track } from './ipc.js';

export function perfAvailable(): boolean {
  return spawnSync('perf', ['--version']).status === 0;
}

/** Starts `perf record` on `pid` for `seconds`; the promise resolves with the top of `perf report`. */
export function perfRecord(pid: number, seconds: number, topLines = 60): Promise<string> {
  const data = join(tmpdir(), `sc-bench-perf-${pid}-${Date.now()}.data`);
  const rec = track(spawn('perf', ['record', '-F', '499', '-g', '-p', String(pid), '-o', data, '--', 'sleep', String(seconds)], { stdio: 'ignore' }));
  return new Promise((resolve) => {
    rec.once('exit', () => {
      const flat = spawnSync('perf', ['report', '-i', data, '--stdio', '--no-children', '--sort', 'dso,sym', '--percent-limit', '0.5', '-g', 'none'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
      const byDso = spawnSync('perf', ['report', '-i', data, '--stdio', '--no-children', '--sort', 'dso', '-g', 'none'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
      rmSync(data, { force: true });
      const keep = (s: string, n: number) =>
        s
          .split('\n')
          .filter((l) => l.trim() && !l.startsWith('#'))
          .slice(0, n)
          .join('\n');
      resolve(`## by shared object\n${keep(byDso.stdout ?? '', 25)}\n\n## by symbol\n${keep(flat.stdout ?? '', topLines)}\n`);
    });
  });
}
