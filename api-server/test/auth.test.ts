/** Every refusal: missing credentials → 401, wrong ones → 403, JSON errors; the WebSocket refuses before the upgrade. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import WebSocket from 'ws';
import { call, SECRETS, startApi, type TestApi } from './helpers/api.js';
import { startFakeStageAdmin, type FakeStageAdmin } from './helpers/fake-stage-admin.js';

let stage: FakeStageAdmin;
let api: TestApi;

before(async () => {
  // Auth never reaches the provider: the fake admin API is enough here.
  stage = await startFakeStageAdmin(SECRETS.stage);
  api = await startApi({ stageUrl: stage.url, logLevel: 'warn' });
});
after(async () => {
  await api?.stop();
  await stage?.close();
});

type Route = { method: string; path: string; json?: unknown; kind: 'api' | 'media' | 'mediaRead' | 'stage' };
const ARN = 'arn:stagecast:ivs:local:000000000000:stage/abc';
const ROUTES: Route[] = [
  { kind: 'api', method: 'POST', path: '/api/viewers/join', json: {} },
  { kind: 'api', method: 'POST', path: '/api/viewers/v_abc/heartbeat' },
  { kind: 'api', method: 'DELETE', path: '/api/viewers/v_abc' },
  { kind: 'api', method: 'GET', path: '/api/media/servers' },
  { kind: 'api', method: 'POST', path: '/api/media/ingest-token' },
  { kind: 'api', method: 'GET', path: '/api/scaling/events' },
  { kind: 'api', method: 'GET', path: '/api/stages' },
  { kind: 'media', method: 'POST', path: '/api/media/register', json: { serverId: 'ms', ipAddress: '127.0.0.1', port: 1 } },
  { kind: 'media', method: 'POST', path: '/api/media/heartbeat', json: { serverId: 'ms' } },
  { kind: 'mediaRead', method: 'GET', path: '/api/media/stages' },
  { kind: 'media', method: 'POST', path: '/api/media/token', json: { stageArn: ARN } },
  {
    kind: 'stage',
    method: 'POST',
    path: '/api/stage-server/participant-events',
    json: { events: [{ stageArn: ARN, participantId: 'p', kind: 'subscriber', type: 'joined', timestamp: new Date().toISOString() }] },
  },
];

function wrongHeaders(kind: Route['kind']): Record<string, string>[] {
  switch (kind) {
    case 'api':
      return [{ 'x-api-key': 'wrong' }, { 'x-api-key': SECRETS.media }, { 'x-api-key': `${SECRETS.apiKey}0` }];
    case 'media':
      return [
        { authorization: 'Bearer wrong' },
        { 'x-media-server-secret': SECRETS.apiKey },
        { authorization: `Bearer ${SECRETS.media.slice(0, -1)}` },
      ];
    case 'mediaRead':
      // The Media Server's secret as x-api-key, the operator's key as the Media Server's secret: neither opens it.
      return [{ authorization: 'Bearer wrong' }, { 'x-api-key': SECRETS.media }, { 'x-api-key': 'wrong' }, { 'x-media-server-secret': SECRETS.apiKey }];
    case 'stage':
      return [{ authorization: 'Bearer wrong' }, { authorization: `Bearer ${SECRETS.media}` }];
  }
}
function missingHeaders(kind: Route['kind']): Record<string, string>[] {
  // The right secret in the wrong place is as good as none.
  switch (kind) {
    case 'api':
      return [{}, { authorization: `Bearer ${SECRETS.apiKey}` }];
    case 'media':
      return [{}, { 'x-api-key': SECRETS.media }, { authorization: 'Basic abc' }];
    case 'mediaRead':
      return [{}, { authorization: 'Basic abc' }];
    case 'stage':
      return [{}, { 'x-media-server-secret': SECRETS.stage }];
  }
}

for (const r of ROUTES) {
  test(`${r.method} ${r.path}: no credentials → 401 UNAUTHORIZED`, async () => {
    for (const headers of missingHeaders(r.kind)) {
      const res = await call(api.url + r.path, { method: r.method, headers, ...(r.json ? { json: r.json } : {}) });
      assert.equal(res.status, 401, `${JSON.stringify(headers)} → ${res.status}`);
      assert.equal(res.body.error.code, 'UNAUTHORIZED');
      assert.equal(typeof res.body.error.message, 'string');
    }
  });
  test(`${r.method} ${r.path}: wrong credentials → 403 FORBIDDEN`, async () => {
    for (const headers of wrongHeaders(r.kind)) {
      const res = await call(api.url + r.path, { method: r.method, headers, ...(r.json ? { json: r.json } : {}) });
      assert.equal(res.status, 403, `${JSON.stringify(headers)} → ${res.status}`);
      assert.equal(res.body.error.code, 'FORBIDDEN');
    }
  });
}

test('GET /api/media/stages: the seed guide\'s check — the operator\'s x-api-key reads it, as does the Media Server secret', async () => {
  for (const headers of [{ 'x-api-key': SECRETS.apiKey }, { authorization: `Bearer ${SECRETS.media}` }, { 'x-media-server-secret': SECRETS.media }] as Record<string, string>[]) {
    const r = await call(api.url + '/api/media/stages', { headers });
    assert.equal(r.status, 200, `${Object.keys(headers)[0]} → ${r.status}`);
    assert.ok(Array.isArray(r.body.stages));
  }
});

test('the x-api-key opens only the read: register, heartbeat and token stay Media-Server-only', async () => {
  for (const r of ROUTES.filter((x) => x.kind === 'media')) {
    const res = await call(api.url + r.path, { method: r.method, headers: { 'x-api-key': SECRETS.apiKey }, ...(r.json ? { json: r.json } : {}) });
    assert.equal(res.status, 401, `${r.method} ${r.path} → ${res.status}`);
  }
});

test('the Media Server secret opens no operator route', async () => {
  for (const r of ROUTES.filter((x) => x.kind === 'api')) {
    for (const headers of [{ authorization: `Bearer ${SECRETS.media}` }, { 'x-media-server-secret': SECRETS.media }] as Record<string, string>[]) {
      const res = await call(api.url + r.path, { method: r.method, headers, ...(r.json ? { json: r.json } : {}) });
      assert.equal(res.status, 401, `${r.method} ${r.path} → ${res.status}`);
    }
  }
});

test('public endpoints need no credentials: /health, /.well-known/jwks.json, /metrics', async () => {
  for (const p of ['/health', '/.well-known/jwks.json', '/metrics']) {
    const r = await call(api.url + p);
    assert.ok(r.status === 200 || (p === '/health' && r.status === 503), `${p} → ${r.status}`);
  }
});

/** A raw upgrade request: resolves with the HTTP status the server answered instead of upgrading (101 = opened). */
function upgradeStatus(path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(api.url + path, {
      headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', ...headers },
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, body: '' });
    });
    req.on('response', (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('WebSocket ?type=media-server without a secret → HTTP 401 before any upgrade', async () => {
  for (const path of ['/ws?type=media-server', '/?type=media-server']) {
    const r = await upgradeStatus(path, {});
    assert.equal(r.status, 401);
    assert.equal(JSON.parse(r.body).error.code, 'UNAUTHORIZED');
  }
});

test('WebSocket with a wrong secret → HTTP 403 before any upgrade', async () => {
  for (const headers of [{ authorization: 'Bearer nope' }, { 'x-media-server-secret': SECRETS.apiKey }] as Record<string, string>[]) {
    const r = await upgradeStatus('/ws?type=media-server', headers);
    assert.equal(r.status, 403);
    assert.equal(JSON.parse(r.body).error.code, 'FORBIDDEN');
  }
});

test('WebSocket with an unknown or missing type → 400; another path → 404', async () => {
  assert.equal((await upgradeStatus('/ws?type=viewer', { authorization: `Bearer ${SECRETS.media}` })).status, 400);
  assert.equal((await upgradeStatus('/ws', { authorization: `Bearer ${SECRETS.media}` })).status, 400);
  assert.equal((await upgradeStatus('/elsewhere?type=media-server', { authorization: `Bearer ${SECRETS.media}` })).status, 404);
});

test('WebSocket with the right secret opens (Bearer on /ws, x-media-server-secret on /)', async () => {
  for (const [path, headers] of [
    ['/ws?type=media-server', { authorization: `Bearer ${SECRETS.media}` }],
    ['/?type=media-server&serverId=ms-1', { 'x-media-server-secret': SECRETS.media }],
  ] as const) {
    const ws = new WebSocket(api.wsUrl + path, { headers });
    try {
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
        ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      });
      assert.equal(ws.readyState, WebSocket.OPEN);
    } finally {
      ws.terminate();
    }
  }
});
