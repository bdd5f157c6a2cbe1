/** What orchestrators and scrapers see: liveness vs readiness, and the METRICS_TOKEN guard on stats and metrics. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from '../src/config.js';
import { createMediaServer } from '../src/system.js';
import { fakeConnector } from './helpers/fakes.js';
import { testLogger } from './helpers/log.js';
import { startFakeApi } from './helpers/fake-api.js';

const SECRET = 'media-secret-0123456789';
const METRICS_TOKEN = 'metrics-token-0123456789abcdef';

async function withMediaServer(apiUrl: string, env: Record<string, string>, fn: (url: string) => Promise<void>): Promise<void> {
  const { log } = testLogger('silent');
  const config = parseConfig({ PORT: '0', HOST: '127.0.0.1', MEDIA_SERVER_SECRET: SECRET, API_SERVER_URL: apiUrl, SERVER_ID: 'ms-ops', REQUEST_TIMEOUT_MS: '300', ...env });
  const ms = await createMediaServer(config, log, { connect: fakeConnector().connect, backoff: { baseMs: 20, capMs: 100 } });
  try {
    await ms.start();
    await fn(`http://127.0.0.1:${ms.port}`);
  } finally {
    await ms.stop();
  }
}

test('API Server unreachable: /health stays 200 (no restart for a server that forwards media), /ready is 503 with the reason', async () => {
  await withMediaServer('http://127.0.0.1:1', {}, async (url) => {
    const live = await fetch(`${url}/health`);
    assert.equal(live.status, 200);
    const ready = await fetch(`${url}/ready`);
    assert.equal(ready.status, 503);
    const body = (await ready.json()) as { status: string; checks: Record<string, { ok: boolean; detail?: string }> };
    assert.equal(body.status, 'degraded');
    assert.equal(body.checks.registration!.ok, false);
    assert.match(body.checks.registration!.detail!, /not registered/);
  });
});

test('registered and connected: /ready is 200', async () => {
  const api = await startFakeApi({ secret: SECRET, heartbeatIntervalMs: 100 });
  try {
    await withMediaServer(api.url, {}, async (url) => {
      const deadline = Date.now() + 5000;
      let status = 0;
      while (Date.now() < deadline && (status = (await fetch(`${url}/ready`)).status) !== 200) await new Promise((r) => setTimeout(r, 20));
      assert.equal(status, 200);
    });
  } finally {
    await api.stop();
  }
});

test('METRICS_TOKEN: GET / and /metrics need the bearer (missing or wrong → 401 JSON); /health and /ready stay open', async () => {
  await withMediaServer('http://127.0.0.1:1', { METRICS_TOKEN }, async (url) => {
    for (const path of ['/', '/metrics']) {
      for (const headers of [{}, { authorization: 'Bearer wrong-token' }, { authorization: METRICS_TOKEN }] as Record<string, string>[]) {
        const r = await fetch(url + path, { headers });
        assert.equal(r.status, 401, `${path} ${JSON.stringify(headers)}`);
        assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'UNAUTHORIZED');
      }
      const ok = await fetch(url + path, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
      assert.equal(ok.status, 200, path);
    }
    assert.equal((await fetch(`${url}/health`)).status, 200);
    assert.notEqual((await fetch(`${url}/ready`)).status, 401);
  });
});

test('without METRICS_TOKEN the stats and metrics stay open (the local default)', async () => {
  await withMediaServer('http://127.0.0.1:1', {}, async (url) => {
    assert.equal((await fetch(`${url}/`)).status, 200);
    assert.equal((await fetch(`${url}/metrics`)).status, 200);
  });
});
