/** Small shared helpers of the bench entry points: arguments, HTTP JSON, timed waits, result files. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const arg = (name: string, dflt: string): string => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? dflt;
export const list = (name: string, dflt: string): number[] => arg(name, dflt).split(',').filter(Boolean).map(Number);

/**
 * A measuring window or warm-up of a fixed length. Not a synchronisation: conditions are awaited with waitFor
 * (e2e/helpers/wait.ts); this is the duration over which something is measured.
 */
export const measureFor = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function json<T = any>(url: string, init: RequestInit = {}): Promise<{ status: number; body: T }> {
  const r = await fetch(url, { ...init, headers: { 'content-type': 'application/json', ...(init.headers as Record<string, string>) }, signal: AbortSignal.timeout(60_000) });
  return { status: r.status, body: (await r.json().catch(() => null)) as T };
}

/** Writes bench/results/<name>-<iso time>.json and returns its path. */
export function writeResult(name: string, result: unknown): string {
  const dir = join(import.meta.dirname, '..', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
  return file;
}

/** A bench that threw: the error goes into its result and on stderr, and the process will exit non-zero. */
export function benchFailed(result: Record<string, unknown>, err: unknown): void {
  result.ok = false;
  result.error = err instanceof Error ? (err.stack ?? err.message) : String(err);
  console.error(result.error);
  process.exitCode = 1;
}

/** The end of every bench: its JSON on one stdout line, and the same written under bench/results. */
export function benchDone(name: string, result: Record<string, unknown>): void {
  result.finishedAt = new Date().toISOString();
  console.log(JSON.stringify(result));
  console.error(`written ${writeResult(name, result)}`);
}

/** The heap used by a process, from its Prometheus /metrics (prom-client's default metrics), in MB. */
export async function heapFromMetrics(url: string): Promise<number> {
  const text = await (await fetch(url, { signal: AbortSignal.timeout(5000) })).text();
  const m = /^\S*nodejs_heap_size_used_bytes(?:\{[^}]*\})? (\S+)$/m.exec(text);
  return m ? Number(m[1]) / 1e6 : NaN;
}
