/**
 * Media that survives a real network: the impairment cases of e2e/scenarios/impair.ts with longer windows.
 * A Chromium broadcaster and a Chromium viewer, each behind a UDP impairment relay (no netem on this kernel), the
 * system between them; per case the viewer's decoded frames against the no-loss run, freezes and frozen time, PLIs,
 * NACKs, the Media Server's recovered / lost-for-good packets (once the router counts them), and the blackout's
 * recovery time. Chromium needs the network namespace, so this needs root (as the e2e browser tests do).
 * usage: node --import tsx bench/impair.ts [--seconds=40] [--cases=baseline,ingest-1,...] [--seed=13] [--video=busy [--kbps=2500]]
 *   --video=busy: an OBS-like feed (a busy fake-camera picture at a pinned bitrate, ~300 packets/s) instead of
 *   Chromium's test pattern (~370 kbps, ~100 packets/s with audio), which the e2e test uses.
 */
import { CASES, TABLE_HEADERS, tableRow, type CaseResult } from '../e2e/helpers/impair-cases.js';
import { createNetns } from '../e2e/helpers/netns.js';
import { ROOT } from '../e2e/helpers/apps.js';
import { table } from './lib/sink-pool.js';
import { arg, benchDone, benchFailed } from './lib/env.js';

const seconds = Number(arg('seconds', '40'));
const cases = arg('cases', CASES.map((c) => c.name).join(','));
const seed = Number(arg('seed', '13'));
const video = arg('video', 'pattern');
const kbps = arg('kbps', '2500');

/** Runs the scenario in a fresh namespace, its progress passed through to stderr; resolves with its RESULT. */
function run(): Promise<Record<string, any>> {
  const ns = createNetns();
  const timeoutMs = 60_000 + cases.split(',').length * (seconds * 1000 + 15_000);
  return new Promise((resolve, reject) => {
    const child = ns.spawn(process.execPath, ['--import', 'tsx', 'e2e/scenarios/impair.ts'], {
      cwd: ROOT,
      env: { ...process.env, NODE_ENV: 'test', IMPAIR_SECONDS: String(seconds), IMPAIR_CASES: cases, IMPAIR_SEED: String(seed), IMPAIR_VIDEO: video, IMPAIR_KBPS: kbps },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => {
      for (const l of d.toString().split('\n')) if (l.startsWith('[impair]')) console.error(l);
    });
    // Ctrl-C: the scenario dies with the namespace; nothing is left behind.
    const stop = () => {
      child.kill('SIGKILL');
      ns.destroy();
      process.exit(130);
    };
    process.once('SIGINT', stop);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      process.off('SIGINT', stop);
      ns.destroy();
      const line = out.split('\n').find((l) => l.startsWith('RESULT '));
      if (!line) return reject(new Error(`the scenario printed no result:\n${out.slice(-3000)}`));
      resolve(JSON.parse(line.slice(7)));
    });
  });
}

const result: Record<string, unknown> = { bench: 'impair', node: process.version, seconds, seed, video, kbps: video === 'busy' ? Number(kbps) : null, startedAt: new Date().toISOString() };
try {
  console.error(`impair: cases ${cases}, ${seconds} s each (~${Math.round((cases.split(',').length * (seconds + 12) + 20) / 60)} min)`);
  const r = await run();
  Object.assign(result, { ok: r.ok, cases: r.cases });
  if (!r.ok) throw new Error(String(r.error));
  console.log(table(TABLE_HEADERS, (r.cases as CaseResult[]).map(tableRow)));
} catch (err) {
  benchFailed(result, err);
} finally {
  benchDone(video === 'busy' ? 'impair-busy' : 'impair', result);
}
