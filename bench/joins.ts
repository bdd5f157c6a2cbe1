/**
 * A join storm, end to end: starts a stage server and one API Server on SQLite (or --apis=2 API Servers sharing one
 * Redis: REDIS_URL, else a redis-server of its own on a free port), then runs `stagecast-loadtest` against them as a user would (the package bin), and keeps its
 * JSON in bench/results/joins-<store>-<time>.json. No Media Server: joins do not need one.
 *
 *   npm run bench:joins                                  # 10,000 viewers in 10 s, one API Server, SQLite
 *   npm run bench:joins -- --apis=2                       # two API Servers on one Redis
 *   options: --viewers=10000 --duration=10 --hold=15 --capacity=50 --max-stages=260 --apis=1 --log-level=info --spare-lead=2 --warm-spares=8
 *            --cpu-prof=DIR (V8 CPU profiles of the API Servers)
 *            --whep=M (real WHEP viewers; the stage server verifies their tokens with the first API Server's JWKS)
 */
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApp, ROOT, type App } from '../e2e/helpers/apps.js';
import { freePort } from '../e2e/helpers/ports.js';
import { startRedis, type RedisServer } from '../e2e/helpers/redis.js';
import { arg } from './lib/env.js';
import { track } from './lib/ipc.js';

const SECRETS = {
  API_SECRET_KEY: 'bench-api-key-0123456789',
  MEDIA_SERVER_SECRET: 'bench-media-secret-0123456789',
  STAGE_SERVER_SECRET: 'bench-stage-secret-0123456789',
} as const;
const VIEWER_KEY = 'bench-viewer-key-0123456789';

const viewers = Number(arg('viewers', '10000'));
const duration = Number(arg('duration', '10'));
const hold = Number(arg('hold', '15'));
const capacity = arg('capacity', '50');
const maxStages = arg('max-stages', String(Math.ceil(viewers / Number(capacity)) + 60));
const apiCount = Number(arg('apis', '1'));
const logLevel = arg('log-level', 'info');
/** --cpu-prof=DIR: the API Servers write V8 CPU profiles there (open in Chrome DevTools) when they stop. */
const cpuProf = arg('cpu-prof', '');
const storeName = apiCount > 1 ? 'redis' : 'sqlite';

const dir = mkdtempSync(join(tmpdir(), 'sc-bench-joins-'));
const apps: App[] = [];
let code = 1;
let redis: RedisServer | undefined;
try {
  let redisUrl = process.env.REDIS_URL;
  if (storeName === 'redis' && !redisUrl) {
    redis = await startRedis();
    redisUrl = redis.url;
  }
  // The stage server verifies viewer tokens (WHEP, --whep) with the first API Server's JWKS: its port is chosen first.
  const firstApiPort = await freePort();
  const stage = await startApp('stage-server', {
    ...SECRETS,
    DATA_DIR: join(dir, 'stage'),
    RTC_BIND_ADDRESS: '127.0.0.1',
    API_SERVER_URL: `http://127.0.0.1:${firstApiPort}`,
    LOG_LEVEL: logLevel,
  });
  track(stage.child);
  apps.push(stage);
  for (let i = 0; i < apiCount; i++) {
    // Every API Server signs with the first one's key (as the README asks), so any token verifies against its JWKS.
    if (i > 0) {
      mkdirSync(join(dir, `api-${i}`), { recursive: true });
      copyFileSync(join(dir, 'api-0', 'signing-key.json'), join(dir, `api-${i}`, 'signing-key.json'));
    }
    const api = await startApp('api-server', {
      ...SECRETS,
      ...(i === 0 ? { PORT: String(firstApiPort) } : {}),
      DATA_DIR: join(dir, `api-${i}`),
      ...(storeName === 'redis' ? { REDIS_URL: redisUrl! } : {}),
      STAGE_SERVER_URL: stage.url,
      ENABLE_MEDIA_SERVER: 'false',
      STAGE_CAPACITY: capacity,
      MAX_STAGES: maxStages,
      // Predictive spares: free seats for the next 2 s of joins at the recent rate.
      SCALE_SPARE_LEAD_S: arg('spare-lead', '2'),
      // Warm spares: empty stages held at all times, for the storm's first second (before its rate is known).
      SCALE_WARM_SPARES: arg('warm-spares', '8'),
      // The storm's viewers come from this one machine with the public viewer key: it is named as a trusted
      // load-test client, so the per-address join limit (meant for strangers) does not refuse it.
      VIEWER_API_KEY: VIEWER_KEY,
      VIEWER_RATE_LIMIT_EXEMPT: '127.0.0.1',
      LOG_LEVEL: logLevel,
    }, cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${cpuProf}`] : []);
    track(api.child);
    apps.push(api);
  }
  const urls = apps.filter((a) => a.name === 'api-server').map((a) => a.url);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const out = join(ROOT, 'bench', 'results', `joins-${storeName}-${apiCount}api-${stamp}.json`);
  const args = [
    join(ROOT, 'scripts', 'loadtest', 'bin.mjs'),
    `--api=${urls.join(',')}`,
    `--api-key=${VIEWER_KEY}`,
    `--operator-key=${SECRETS.API_SECRET_KEY}`,
    `--viewers=${viewers}`,
    `--duration=${duration}`,
    `--hold=${hold}`,
    `--json=${out}`,
    `--whep=${arg('whep', '0')}`,
  ];
  console.error(`stagecast-loadtest ${args.slice(1).map((a) => (a.includes('key=') ? a.replace(/=.*/, '=…') : a)).join(' ')}`);
  const child = track(spawn(process.execPath, args, { cwd: ROOT, stdio: 'inherit' }));
  code = await new Promise<number>((r) => child.once('exit', (c) => r(c ?? 1)));
  console.error(`results: ${out}`);
} finally {
  for (const a of [...apps].reverse()) await a.stop().catch(() => undefined);
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(code);
