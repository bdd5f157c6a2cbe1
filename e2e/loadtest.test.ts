/**
 * stagecast-loadtest against real processes: a stage server and an API Server on 127.0.0.1, 200 simulated viewers
 * joining in 2 s through the package bin (as `npx stagecast-loadtest` runs it). The run must seat every viewer, never
 * overfill a stage, and leave a well-formed JSON summary. Latency is not asserted here (a shared test machine);
 * bench/joins.ts measures it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { shutdownRtc } from '@stagecast/rtc';
import { ROOT, startApp, type App } from './helpers/apps.js';
import { Broadcaster } from './helpers/broadcaster.js';
import { SECRETS as SYSTEM_SECRETS, startSystem } from './helpers/system.js';

const SECRETS = {
  API_SECRET_KEY: 'e2e-api-key-0123456789',
  MEDIA_SERVER_SECRET: 'e2e-media-secret-0123456789',
  STAGE_SERVER_SECRET: 'e2e-stage-secret-0123456789',
} as const;
const VIEWER_KEY = 'e2e-viewer-key-0123456789';

let dir: string;
let stage: App;
let api: App;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sc-e2e-loadtest-'));
  stage = await startApp('stage-server', { ...SECRETS, DATA_DIR: join(dir, 'stage'), RTC_BIND_ADDRESS: '127.0.0.1' });
  api = await startApp('api-server', {
    ...SECRETS,
    DATA_DIR: join(dir, 'api'),
    STAGE_SERVER_URL: stage.url,
    ENABLE_MEDIA_SERVER: 'false',
    STAGE_CAPACITY: '20',
    MAX_STAGES: '40',
    SCALE_SPARE_LEAD_S: '2',
    VIEWER_API_KEY: VIEWER_KEY,
    VIEWER_RATE_LIMIT_EXEMPT: '127.0.0.1',
  });
});

after(async () => {
  await api?.stop();
  await stage?.stop();
  rmSync(dir, { recursive: true, force: true });
  await shutdownRtc();
});

function runBin(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [join(ROOT, 'scripts', 'loadtest', 'bin.mjs'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  // The tool bounds itself (--timeout); this only guards against a hang of the process itself.
  const kill = setTimeout(() => child.kill('SIGKILL'), 90_000);
  return new Promise((resolve) => child.once('exit', (code) => (clearTimeout(kill), resolve({ code, stdout, stderr }))));
}

test('a 200-viewer join storm through stagecast-loadtest seats everyone with 0 overfill and writes a well-formed summary', async () => {
  const out = join(dir, 'summary.json');
  const r = await runBin([`--api=${api.url}`, `--api-key=${VIEWER_KEY}`, `--operator-key=${SECRETS.API_SECRET_KEY}`, '--viewers=200', '--duration=2', '--hold=1', `--json=${out}`, '--timeout=60']);
  assert.equal(r.code, 0, `exit ${r.code}\n${r.stdout}\n${r.stderr.slice(-2000)}`);
  const s = JSON.parse(readFileSync(out, 'utf8'));
  // The last stdout line is the same JSON.
  assert.deepEqual(JSON.parse(r.stdout.trim().split('\n').at(-1)!), s);
  assert.equal(s.tool, 'stagecast-loadtest');
  assert.equal(s.joins.sent, 200);
  assert.equal(s.joins.ok, 200, `errors ${JSON.stringify(s.joins.errors)}`);
  assert.deepEqual(s.joins.errors, {});
  assert.equal(s.pool.overfill, 0);
  assert.equal(s.leaves.ok, 200);
  assert.equal(s.timedOut, false);
  for (const k of ['p50', 'p90', 'p99', 'max']) assert.ok(Number.isFinite(s.joins.latencyMs[k]) && s.joins.latencyMs[k] >= 0, `latency ${k}`);
  assert.ok(s.joins.latencyMs.p50 <= s.joins.latencyMs.p99 && s.joins.latencyMs.p99 <= s.joins.latencyMs.max);
  assert.ok(s.joins.perSecond > 0);
  // 200 seats of 20: at least 10 stages hold them, all created by the run (the pool began with MIN_STAGES=1).
  assert.ok(s.stages.peak >= 10, `peak ${s.stages.peak}`);
  assert.equal(s.stages.created, s.stages.peak - s.stages.before);
  assert.equal(typeof s.waitedForStage.server, 'number', 'the server count of joins that waited was read from /metrics');
  assert.ok(s.pool.polls > 0);
  assert.ok(r.stdout.includes('overfill (max seats − capacity)'), 'the summary table is printed');
});

test('stagecast-loadtest --help explains itself, a bad option exits 2 naming it', async () => {
  const help = await runBin(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--viewers=N/);
  const bad = await runBin(['--viewers=lots', '--api-key=x']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--viewers must be an integer/);
});

test('--whep viewers play their stages and count the broadcast frames (Media Server and a broadcaster running)', async () => {
  const sys = await startSystem({ stageCapacity: 10 });
  let b: Broadcaster | undefined;
  try {
    const ingest = await sys.ingestToken();
    b = await Broadcaster.publish({ url: sys.whipUrl, token: ingest.token, seed: 7 });
    const out = join(dir, 'whep.json');
    const r = await runBin([`--api=${sys.api.url}`, `--api-key=${SYSTEM_SECRETS.API_SECRET_KEY}`, '--viewers=20', '--duration=1', '--hold=4', '--whep=2', `--json=${out}`, '--timeout=60', '--quiet']);
    const s = JSON.parse(readFileSync(out, 'utf8'));
    assert.equal(s.whep.viewers, 2);
    assert.deepEqual(s.whep.errors, [], r.stderr.slice(-2000));
    assert.equal(s.whep.connected, 2);
    assert.ok(s.whep.perViewer.every((n: number) => n > 0), `frames per WHEP viewer: ${s.whep.perViewer}`);
    assert.equal(s.whep.frames, s.whep.perViewer[0] + s.whep.perViewer[1]);
    assert.equal(s.pool.overfill, 0);
  } finally {
    await b?.stop();
    await sys.stop();
  }
});
