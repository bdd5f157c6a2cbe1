/**
 * `npm start` with MEDIA_SERVERS=2 STAGE_SERVERS=2: five real processes come up on consecutive ports, each Media
 * Server registers under its own id, the API Server health-reads both stage servers and spreads its stages over
 * them, the front door is what OBS is told to use, and Ctrl-C (SIGINT) stops every process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DashboardResponseSchema } from '@stagecast/protocol';
import { ROOT } from './helpers/apps.js';
import { waitFor } from './helpers/wait.js';

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}
/** The first of `n` consecutive free ports (tried from a random start, a bounded number of times). */
async function freeRun(n: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    // Below Linux's ephemeral range (32768+), where outgoing connections could take a port between check and use.
    const first = 20_000 + Math.floor(Math.random() * 12_000);
    let ok = true;
    for (let i = 0; i < n && ok; i++) ok = await canBind(first + i);
    if (ok) return first;
  }
  throw new Error(`no ${n} consecutive free ports`);
}

test('npm start with MEDIA_SERVERS=2 STAGE_SERVERS=2 runs five processes, the API Server uses both stage servers and sees both Media Servers; Ctrl-C stops them all', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'sc-start-many-'));
  const first = await freeRun(5);
  const ports = { api: first, media: [first + 1, first + 2], stage: [first + 3, first + 4] };
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/start.ts'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      MEDIA_SERVERS: '2',
      STAGE_SERVERS: '2',
      API_PORT: String(ports.api),
      MEDIA_PORT: String(ports.media[0]),
      DATA_DIR: dataDir,
      // The pages are not under test: an empty directory stands for their build.
      WEB_DIST_DIR: dataDir,
      MIN_STAGES: '2',
      RTC_BIND_ADDRESS: '127.0.0.1',
      HEARTBEAT_INTERVAL_MS: '1000',
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-50_000)));
  child.stderr!.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-50_000)));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  t.after(async () => {
    if (child.exitCode === null) {
      child.kill('SIGINT');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000).unref())]);
    }
    rmSync(dataDir, { recursive: true, force: true });
  });

  await waitFor(
    () => {
      if (child.exitCode !== null) throw new Error(`npm start exited (${child.exitCode}):\n${output}`);
      return output.includes('Ctrl-C stops everything');
    },
    'npm start to print its links',
    90_000,
  );
  const base = (p: number) => `http://127.0.0.1:${p}`;
  assert.match(output, new RegExp(`Server:\\s+${base(ports.api)}/whip$`, 'm'), 'OBS is given the API Server front door');
  for (const p of [...ports.media, ...ports.stage]) assert.ok(output.includes(base(p)), `port ${p} printed`);
  const key = /x-api-key: (\S+)/.exec(output)![1]!;

  const dash = await waitFor(
    async () => {
      const r = await fetch(`${base(ports.api)}/api/dashboard`, { headers: { 'x-api-key': key } });
      const d = DashboardResponseSchema.parse(await r.json());
      const online = d.servers.filter((m) => m.state === 'online').map((m) => m.serverId).sort();
      const spread = d.stageServers?.every((s) => s.state === 'up' && s.stages === 1);
      return online.join() === 'media-1,media-2' && spread ? d : undefined;
    },
    'both Media Servers online and one stage on each stage server',
    30_000,
  );
  assert.deepEqual(dash.stageServers!.map((s) => s.url), ports.stage.map(base));

  child.kill('SIGINT');
  assert.equal(await exited, 0, 'npm start exits 0 on Ctrl-C');
  for (const p of [ports.api, ...ports.media, ...ports.stage]) assert.ok(await canBind(p), `port ${p} released: its process stopped`);
});
