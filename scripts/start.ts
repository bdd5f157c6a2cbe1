/**
 * `npm start` at the root: the whole local system on one machine with embedded defaults
 * (SQLite, the local stage server; MEDIA_SERVERS / STAGE_SERVERS of each, see start-plan.ts). Generates and persists development secrets when none are set,
 * builds the web pages when they are missing or older than their sources, starts every app as its own process,
 * waits until all are healthy, prints what a person needs (the three pages, OBS's WHIP URL and token), and stops
 * them all cleanly on Ctrl-C / SIGTERM.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { chooseLogFormat, prettyLineFormatter } from '@stagecast/service';
import { planProcesses, PlanError, type PlannedApp, type StartPlan } from './start-plan.js';
import { buildWebIfNeeded } from './web-build.js';

const root = resolve(import.meta.dirname, '..');
if (existsSync(join(root, '.env'))) process.loadEnvFile(join(root, '.env'));
const env = process.env;

const dataDir = resolve(root, env.DATA_DIR ?? 'data');
mkdirSync(dataDir, { recursive: true });

/** Secrets: the environment wins; otherwise generated once and kept in DATA_DIR (mode 0600). */
const SECRET_NAMES = ['API_SECRET_KEY', 'MEDIA_SERVER_SECRET', 'STAGE_SERVER_SECRET', 'INGEST_TOKEN', 'VIEWER_API_KEY'] as const;
function devSecrets(): Record<(typeof SECRET_NAMES)[number], string> {
  const file = join(dataDir, 'dev-secrets.json');
  const names = SECRET_NAMES;
  let saved: Record<string, string> = {};
  if (existsSync(file)) saved = JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>;
  let changed = false;
  const out = {} as Record<(typeof SECRET_NAMES)[number], string>;
  for (const n of names) {
    // Empty counts as unset, as in the apps: `API_SECRET_KEY=` in .env must not mint a new secret on every start.
    const v = env[n] || saved[n];
    if (v) out[n] = v;
    else {
      out[n] = saved[n] = randomBytes(24).toString('base64url');
      changed = true;
    }
  }
  if (changed) writeFileSync(file, JSON.stringify(saved, null, 2) + '\n', { mode: 0o600 });
  return out;
}

const secrets = devSecrets();
const webDist = buildWebIfNeeded(env.WEB_DIST_DIR);
let plan: StartPlan;
try {
  plan = planProcesses(env, availableParallelism(), { secrets, dataDir, webDist });
} catch (err) {
  if (!(err instanceof PlanError)) throw err;
  console.error(`npm start: ${err.message}`);
  process.exit(1);
}
// Apps not yet built in this checkout are left out (the Media Server lands after the stage server).
const groups = plan.groups.map((g) => g.filter((a) => existsSync(join(root, a.dir, 'src', 'index.ts')))).filter((g) => g.length > 0);
const apps = groups.flat();

// The apps write JSON (their output is a pipe to us); on a terminal we turn each line into a readable one.
const logFormat = chooseLogFormat({ isTTY: process.stdout.isTTY, requested: env.LOG_FORMAT });
const formatLine = logFormat === 'pretty' ? prettyLineFormatter({ colorize: true }) : (line: string) => line;

const children = new Map<string, ChildProcess>();
let stopping = false;

function start(app: PlannedApp): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/index.ts'], {
    cwd: join(root, app.dir),
    env: { ...env, ...app.env, PORT: String(app.port) },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group: a terminal's Ctrl-C reaches only this script, which then stops the apps in order.
    detached: true,
  });
  const prefix = `[${app.name}] `;
  const pipe = (src: NodeJS.ReadableStream, dst: NodeJS.WritableStream) => {
    let buf = '';
    src.on('data', (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        dst.write(prefix + formatLine(buf.slice(0, i)) + '\n');
        buf = buf.slice(i + 1);
      }
    });
  };
  pipe(child.stdout!, process.stdout);
  pipe(child.stderr!, process.stderr);
  child.on('exit', (code, signal) => {
    children.delete(app.name);
    if (stopping) return;
    // One of several Media Servers or stage servers is what the pool is built to lose: the others carry on. The API
    // Server, or the last of a kind, is not.
    const peers = apps.filter((a) => a.dir === app.dir && a.name !== app.name && children.has(a.name));
    if (app.dir !== 'api-server' && peers.length > 0) {
      console.error(`${prefix}exited (${signal ?? code}); ${peers.map((a) => a.name).join(', ')} carry on`);
      return;
    }
    console.error(`${prefix}exited (${signal ?? code}); stopping the system`);
    void stopAll(1);
  });
  children.set(app.name, child);
  return child;
}

async function waitHealthy(app: PlannedApp, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (stopping) return;
    try {
      // Readiness, not liveness: the links are printed once each app can take work (the Media Server registered).
      const r = await fetch(`${app.url}/ready`, { signal: AbortSignal.timeout(2000) });
      if (r.ok) return;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${app.name} did not become healthy on port ${app.port} within ${timeoutMs / 1000}s`);
}

/**
 * Stops the apps group by group in reverse start order (every Media Server, then the API Server, then every stage
 * server): the Media Servers end their WHIP sessions while the others still answer.
 */
async function stopAll(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  for (const group of [...groups].reverse()) {
    await Promise.all(
      group.map((app) => {
        const c = children.get(app.name);
        if (!c || c.exitCode !== null) return undefined;
        return new Promise<void>((res) => {
          c.once('exit', () => res());
          c.kill('SIGTERM');
          setTimeout(() => c.kill('SIGKILL'), 15_000).unref();
        });
      }),
    );
  }
  process.exit(code);
}
// Never leave an app behind, whatever ends this script.
process.on('exit', () => {
  for (const c of children.values()) c.kill('SIGKILL');
});

process.on('SIGINT', () => void stopAll(0));
process.on('SIGTERM', () => void stopAll(0));

// Start in dependency order, each group at once: the stage servers first (the API Server reconciles their stages on
// start), then the API Server, then the Media Servers (they register with the API Server).
for (const group of groups) {
  for (const app of group) start(app);
  await Promise.all(group.map((app) => waitHealthy(app)));
}

const api = plan.api;
const mediaUp = apps.filter((a) => a.dir === 'media-server');
const stageUp = apps.filter((a) => a.dir === 'stage-server');
const frag = (k: string) => `#key=${encodeURIComponent(k)}`;
const list = (label: string, urls: string[]) => urls.map((u, i) => `  ${i === 0 ? label : ' '.repeat(label.length)}${u}`).join('\n');
console.log(`
Stagecast is running (${apps.map((a) => a.name).join(', ')}). Data and generated secrets: ${dataDir}

  Broadcast:  ${api}/broadcast${frag(secrets.API_SECRET_KEY)}
  Watch:      ${api}/watch${frag(secrets.VIEWER_API_KEY)}
  Dashboard:  ${api}/dashboard${frag(secrets.API_SECRET_KEY)}
  (the key after # stays in the browser: it is never sent in a request line or logged)

  API Server:   ${api}   x-api-key: ${secrets.API_SECRET_KEY}   viewer key: ${secrets.VIEWER_API_KEY}
${mediaUp.length ? list(mediaUp.length > 1 ? 'Media Servers: ' : 'Media Server:  ', mediaUp.map((a) => `${a.url}/   (stats, ${a.env.SERVER_ID})`)) + '\n' : ''}${list(stageUp.length > 1 ? 'Stage servers: ' : 'Stage server:  ', stageUp.map((a) => `${a.url}/stats`))}
${
  mediaUp.length
    ? `
  OBS 30+ (Settings → Stream → Service: WHIP):
    Server:        ${plan.whip}
    Bearer Token:  ${secrets.INGEST_TOKEN}
  (the API Server's front door: it redirects OBS to the Media Server that takes the broadcast)
  (Settings → Output → Advanced: H.264 (x264 or hardware), profile baseline, keyframe interval 1–2 s, no B-frames)
`
    : ''
}
Ctrl-C stops everything.
`);
