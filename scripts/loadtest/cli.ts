/**
 * stagecast-loadtest: simulated viewers join one or several API Servers at a given rate, heartbeat and leave,
 * optionally alongside real WHEP viewers that count frames. Prints a live progress line (stderr), then a summary
 * table (stdout) and its JSON (stdout's last line, and --json=path).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { runLoadtest, type RunOptions } from './run.js';
import { summaryTable } from './stats.js';

export const HELP = `stagecast-loadtest — a join storm against Stagecast API Servers

usage: npx stagecast-loadtest [--option=value …]

  --api=URL[,URL…]     API Servers, joins round-robin over them (default http://127.0.0.1:3000).
                       The operator view (GET /api/stages) is read from the first one.
  --api-key=KEY        x-api-key for joins, heartbeats and leaves (default: $STAGECAST_API_KEY, else $API_SECRET_KEY).
                       With the public VIEWER_API_KEY, joins are rate-limited per address unless the API Server
                       names this machine in VIEWER_RATE_LIMIT_EXEMPT.
  --operator-key=KEY   x-api-key for GET /api/stages (default: --api-key).
  --metrics-token=T    Bearer token for GET /metrics when the API Server sets METRICS_TOKEN.
  --viewers=N          simulated viewers (default 1000).
  --rate=R             joins per second (default 100), or
  --duration=S         seconds over which the viewers join (rate = viewers / duration).
  --hold=S             seconds each viewer stays, heartbeating at the interval its join answer gives (default 10).
  --leave / --no-leave DELETE each viewer when its hold ends (default --leave).
  --whep=M             also M real WHEP viewers that play their stage and count video frames (default 0).
  --spares=K           empty stages the pool should hold to count as caught up (default 1).
  --poll=MS            how often the operator view is read (default 250).
  --timeout=S          hard limit for the whole run (default: join time + hold + 60).
  --json=PATH          also write the summary JSON there.
  --quiet              no progress output.
  --help               this text.

Exit status: 0 when every join succeeded and overfill is 0; 1 otherwise; 2 on bad options.`;

export class UsageError extends Error {}

export interface CliOptions extends Omit<RunOptions, 'progress'> {
  json?: string;
  quiet: boolean;
}

/** Pure: argv (without node and the script) and environment → options, or a UsageError naming the bad option. */
export function parseArgs(argv: readonly string[], env: Record<string, string | undefined>): CliOptions | 'help' {
  const opts = new Map<string, string>();
  for (const a of argv) {
    if (a === '--help' || a === '-h') return 'help';
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(a);
    if (!m) throw new UsageError(`not an option: ${a} (see --help)`);
    opts.set(m[1]!, m[2] ?? 'true');
  }
  const known = ['api', 'api-key', 'operator-key', 'metrics-token', 'viewers', 'rate', 'duration', 'hold', 'leave', 'no-leave', 'whep', 'spares', 'poll', 'timeout', 'json', 'quiet'];
  for (const k of opts.keys()) if (!known.includes(k)) throw new UsageError(`unknown option --${k} (see --help)`);
  const num = (k: string, def: number, min: number, int = false): number => {
    const raw = opts.get(k);
    if (raw === undefined) return def;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min || (int && !Number.isInteger(n))) throw new UsageError(`--${k} must be ${int ? 'an integer' : 'a number'} ≥ ${min} (got ${JSON.stringify(raw)})`);
    return n;
  };
  const apis = (opts.get('api') ?? 'http://127.0.0.1:3000').split(',').map((u) => u.trim().replace(/\/+$/, '')).filter(Boolean);
  for (const u of apis) {
    let p: URL;
    try {
      p = new URL(u);
    } catch {
      throw new UsageError(`--api: not a URL: ${JSON.stringify(u)}`);
    }
    if (p.protocol !== 'http:' && p.protocol !== 'https:') throw new UsageError(`--api: must be http(s): ${JSON.stringify(u)}`);
  }
  if (!apis.length) throw new UsageError('--api: at least one URL');
  const apiKey = opts.get('api-key') ?? env.STAGECAST_API_KEY ?? env.API_SECRET_KEY;
  if (!apiKey) throw new UsageError('--api-key is required (or set STAGECAST_API_KEY)');
  const viewers = num('viewers', 1000, 1, true);
  if (opts.has('rate') && opts.has('duration')) throw new UsageError('give --rate or --duration, not both');
  const ratePerSecond = opts.has('duration') ? viewers / num('duration', 10, 0.001) : num('rate', 100, 0.001);
  const holdMs = num('hold', 10, 0) * 1000;
  const joinMs = (viewers / ratePerSecond) * 1000;
  const flag = (k: string) => opts.get(k) === 'true' || opts.get(k) === '1';
  return {
    apis,
    apiKey,
    operatorKey: opts.get('operator-key') ?? apiKey,
    ...(opts.get('metrics-token') ? { metricsToken: opts.get('metrics-token')! } : {}),
    viewers,
    ratePerSecond,
    holdMs,
    leave: !flag('no-leave') && opts.get('leave') !== 'false',
    whep: num('whep', 0, 0, true),
    spares: num('spares', 1, 0, true),
    pollMs: num('poll', 250, 20, true),
    timeoutMs: opts.has('timeout') ? num('timeout', 0, 1) * 1000 : joinMs + holdMs + 60_000,
    requestTimeoutMs: 10_000,
    ...(opts.get('json') ? { json: opts.get('json')! } : {}),
    quiet: flag('quiet'),
  };
}

export async function main(argv: readonly string[]): Promise<number> {
  let o: CliOptions | 'help';
  try {
    o = parseArgs(argv, process.env);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`stagecast-loadtest: ${err.message}\n`);
    return 2;
  }
  if (o === 'help') {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const summary = await runLoadtest({ ...o, progress: o.quiet ? null : process.stderr });
  process.stdout.write(`${summaryTable(summary)}\n${JSON.stringify(summary)}\n`);
  if (o.json) {
    const path = resolve(o.json);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, `${JSON.stringify(summary, null, 2)}\n`);
  }
  const failed = summary.joins.ok !== summary.joins.sent || summary.pool.overfill > 0 || summary.timedOut;
  return failed ? 1 : 0;
}
