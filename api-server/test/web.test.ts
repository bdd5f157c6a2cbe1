/**
 * What the API Server does for the web pages: serves the Vite build (types, caching, no traversal, clear 404 when
 * not built), GET /api/dashboard (x-api-key; the broadcaster's stream from the Media Server's heartbeat), and the
 * narrower VIEWER_API_KEY (viewer routes only).
 */
import { after, before, test } from 'node:test';
import { request } from 'node:http';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DashboardResponseSchema } from '@stagecast/protocol';
import { apiKey, call, mediaAuth, SECRETS, startApi, type TestApi } from './helpers/api.js';
import { startFakeStageAdmin, type FakeStageAdmin } from './helpers/fake-stage-admin.js';
import { waitFor } from './helpers/wait.js';

const VIEWER_KEY = 'viewer-key-0a1b2c3d4e5f6a7b';
let stage: FakeStageAdmin;
let api: TestApi;
let bare: TestApi;
const dist = mkdtempSync(join(tmpdir(), 'sc-web-dist-'));
const secretFile = `${dist}-secret.txt`;

before(async () => {
  mkdirSync(join(dist, 'assets'));
  for (const p of ['index', 'broadcast', 'watch', 'dashboard']) writeFileSync(join(dist, `${p}.html`), `<!doctype html><title>${p}</title>`);
  writeFileSync(join(dist, 'assets', 'watch-AbC123.js'), 'console.log(1)');
  writeFileSync(join(dist, 'assets', 'style-XyZ.css'), 'body{}');
  writeFileSync(secretFile, 'do not serve');
  stage = await startFakeStageAdmin(SECRETS.stage);
  api = await startApi({ stageUrl: stage.url, env: { WEB_DIST_DIR: dist, VIEWER_API_KEY: VIEWER_KEY, HEARTBEAT_INTERVAL_MS: '200' }, logLevel: 'warn' });
  bare = await startApi({ stageUrl: stage.url, env: { WEB_DIST_DIR: join(dist, 'missing') }, logLevel: 'info' });
});
after(async () => {
  await api?.stop();
  await bare?.stop();
  await stage?.close();
  rmSync(dist, { recursive: true, force: true });
  rmSync(secretFile, { force: true });
});

test('the three pages are served as HTML that is revalidated, with a CSP allowing scripts from this origin only; hashed assets are cached for a year', async () => {
  for (const p of ['/', '/broadcast', '/watch', '/dashboard']) {
    const r = await fetch(api.url + p);
    assert.equal(r.status, 200, p);
    assert.equal(r.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(r.headers.get('cache-control'), 'no-cache');
    // Scripts from this origin only: the IVS SDK is built from its npm package, no third-party script host.
    assert.match(r.headers.get('content-security-policy') ?? '', /script-src 'self';/);
    assert.match(await r.text(), new RegExp(`<title>${p === '/' ? 'index' : p.slice(1)}</title>`));
  }
  const js = await fetch(`${api.url}/assets/watch-AbC123.js`);
  assert.equal(js.status, 200);
  assert.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8');
  assert.equal(js.headers.get('cache-control'), 'public, max-age=31536000, immutable');
  assert.equal(js.headers.get('x-content-type-options'), 'nosniff');
  const css = await fetch(`${api.url}/assets/style-XyZ.css`);
  assert.equal(css.headers.get('content-type'), 'text/css; charset=utf-8');
});

/** A GET with the path sent exactly as written (fetch would normalise `..` away before it leaves the client). */
function rawGet(base: string, path: string): Promise<{ status: number; body: string }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, method: 'GET' }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('no path leaves the build directory: traversal attempts and unknown files get a JSON 404', async () => {
  const name = secretFile.split('/').pop()!;
  for (const p of [`/assets/..%2F..%2F${name}`, `/assets/%2e%2e%2f${name}`, '/assets/..', '/assets/.hidden', `/assets/../../${name}`, `/assets/..%5C..%5C${name}`, '/assets/nope.js', '/watch.html/x']) {
    const r = await rawGet(api.url, p);
    assert.equal(r.status, 404, p);
    assert.equal(JSON.parse(r.body).error.code, 'NOT_FOUND', p);
    assert.doesNotMatch(r.body, /do not serve/);
  }
  const unknownApi = await call(`${api.url}/api/does-not-exist`);
  assert.equal(unknownApi.status, 404);
  assert.equal(unknownApi.body.error.code, 'NOT_FOUND');
});

test('without a build the pages answer a JSON 404 that says how to build them, and the start-up log says so', async () => {
  const r = await call(`${bare.url}/watch`);
  assert.equal(r.status, 404);
  assert.match(r.body.error.message, /npm run build -w web/);
  assert.ok(bare.logs.lines().some((l) => l.msg === 'web.pages_missing'), 'web.pages_missing logged');
});

test('GET /api/dashboard needs the API key: 401 without, 403 with a wrong one or the viewer key', async () => {
  assert.equal((await call(`${api.url}/api/dashboard`)).status, 401);
  assert.equal((await call(`${api.url}/api/dashboard`, { headers: { 'x-api-key': 'wrong-key-123' } })).status, 403);
  assert.equal((await call(`${api.url}/api/dashboard`, { headers: { 'x-api-key': VIEWER_KEY } })).status, 403);
});

test('GET /api/dashboard shows the stages, viewers, the Media Server and the broadcaster stream from its heartbeat', async () => {
  const reg = await call(`${api.url}/api/media/register`, { headers: mediaAuth, json: { serverId: 'ms-web', ipAddress: '127.0.0.1', port: 3001 } });
  assert.equal(reg.status, 200);
  const join = await call(`${api.url}/api/viewers/join`, { headers: apiKey, json: {} });
  assert.equal(join.status, 201);
  const hb = await call(`${api.url}/api/media/heartbeat`, {
    headers: mediaAuth,
    json: { serverId: 'ms-web', publisherOnline: true, legs: [{ stageArn: join.body.stageArn, state: 'connected' }], publisher: { bitrateBps: 2_400_000, width: 1280, height: 720, frameRate: 30, profile: 'Constrained Baseline' } },
  });
  assert.equal(hb.status, 200);
  const r = await call(`${api.url}/api/dashboard`, { headers: apiKey });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('cache-control'), 'no-store');
  const d = DashboardResponseSchema.parse(r.body);
  assert.ok(d.stages.some((s) => s.stageArn === join.body.stageArn && s.viewers === 1));
  assert.equal(d.totals.viewers, 1);
  assert.deepEqual(d.broadcaster, { online: true, bitrateBps: 2_400_000, serverId: 'ms-web' });
  const ms = d.servers.find((m) => m.serverId === 'ms-web');
  assert.equal(ms?.publisher?.width, 1280);
  assert.deepEqual(ms?.stages, [{ stageArn: join.body.stageArn, state: 'connected' }]);
  assert.ok(d.events.length >= 1, 'scaling events included');

  // The broadcaster leaves: the next heartbeat says so, and its stream is no longer shown.
  await call(`${api.url}/api/media/heartbeat`, { headers: mediaAuth, json: { serverId: 'ms-web', publisherOnline: false, legs: [] } });
  const d2 = DashboardResponseSchema.parse((await call(`${api.url}/api/dashboard`, { headers: apiKey })).body);
  assert.deepEqual(d2.broadcaster, { online: false, bitrateBps: 0, serverId: null });
  assert.equal(d2.servers.find((m) => m.serverId === 'ms-web')?.publisher, undefined);

  // A silent server goes offline and takes its broadcaster with it.
  await call(`${api.url}/api/media/heartbeat`, { headers: mediaAuth, json: { serverId: 'ms-web', publisherOnline: true, publisher: { bitrateBps: 1000 } } });
  await waitFor(async () => {
    const d3 = DashboardResponseSchema.parse((await call(`${api.url}/api/dashboard`, { headers: apiKey })).body);
    return d3.servers.find((m) => m.serverId === 'ms-web')?.state === 'offline' && !d3.broadcaster.online;
  }, { what: 'server offline, broadcaster gone', timeoutMs: 5000 });
  await call(`${api.url}/api/viewers/${join.body.viewerId}`, { method: 'DELETE', headers: apiKey });
});

test('VIEWER_API_KEY joins, heartbeats and leaves, but cannot read stages, the dashboard or get an ingest token', async () => {
  const vk = { 'x-api-key': VIEWER_KEY };
  const j = await call(`${api.url}/api/viewers/join`, { headers: vk, json: {} });
  assert.equal(j.status, 201);
  assert.equal((await call(`${api.url}/api/viewers/${j.body.viewerId}/heartbeat`, { method: 'POST', headers: vk })).status, 200);
  assert.equal((await call(`${api.url}/api/viewers/${j.body.viewerId}`, { method: 'DELETE', headers: vk })).status, 204);
  for (const [method, path] of [['GET', '/api/stages'], ['GET', '/api/scaling/events'], ['GET', '/api/media/servers'], ['POST', '/api/media/ingest-token'], ['GET', '/api/dashboard']] as const) {
    assert.equal((await call(api.url + path, { method, headers: vk })).status, 403, `${method} ${path}`);
  }
  // Without VIEWER_API_KEY configured, only the API key joins.
  assert.equal((await call(`${bare.url}/api/viewers/join`, { headers: vk, json: {} })).status, 403);
});
