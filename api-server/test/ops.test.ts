/** What orchestrators and scrapers see: liveness vs readiness, and METRICS_TOKEN on /metrics. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HealthResponseSchema } from '@stagecast/protocol';
import { call, SECRETS, startApi } from './helpers/api.js';
import { startFakeStageAdmin } from './helpers/fake-stage-admin.js';

const METRICS_TOKEN = 'api-metrics-token-0123456789';

test('provider unreachable: /health stays 200 (liveness), /ready is 503 naming the failing checks', async () => {
  const api = await startApi({ stageUrl: 'http://127.0.0.1:1', logLevel: 'silent' });
  try {
    const live = await call(`${api.url}/health`);
    assert.equal(live.status, 200, JSON.stringify(live.body));
    assert.equal(HealthResponseSchema.parse(live.body).checks.store?.ok, true);
    const ready = await call(`${api.url}/ready`);
    assert.equal(ready.status, 503);
    const h = HealthResponseSchema.parse(ready.body);
    assert.equal(h.status, 'degraded');
    assert.equal(h.checks.reconciled?.ok, false);
  } finally {
    await api.stop();
  }
});

test('/ready: 200 once reconciled, 503 "draining" from the moment the server begins to stop', async () => {
  const stage = await startFakeStageAdmin(SECRETS.stage);
  const api = await startApi({ stageUrl: stage.url, logLevel: 'silent' });
  try {
    const ok = await call(`${api.url}/ready`);
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    api.server.services.lifecycle.draining = true; // what stop() sets first
    const r = await call(`${api.url}/ready`);
    assert.equal(r.status, 503);
    assert.equal(HealthResponseSchema.parse(r.body).checks.draining?.detail, 'shutting down');
    assert.equal((await call(`${api.url}/health`)).status, 200);
  } finally {
    await api.stop();
    await stage.close();
  }
});

test('METRICS_TOKEN: /metrics needs the bearer (missing or wrong → 401 JSON); /health and /ready stay open', async () => {
  const stage = await startFakeStageAdmin(SECRETS.stage);
  const api = await startApi({ stageUrl: stage.url, logLevel: 'silent', env: { METRICS_TOKEN } });
  try {
    for (const headers of [{}, { authorization: 'Bearer wrong-token' }, { authorization: METRICS_TOKEN }, { 'x-api-key': SECRETS.apiKey }] as Record<string, string>[]) {
      const r = await call(`${api.url}/metrics`, { headers });
      assert.equal(r.status, 401, JSON.stringify(headers));
      assert.equal(r.body.error.code, 'UNAUTHORIZED');
    }
    const ok = await call(`${api.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    assert.equal(ok.status, 200);
    assert.match(ok.body, /stagecast_joins_total/);
    assert.equal((await call(`${api.url}/health`)).status, 200);
    assert.equal((await call(`${api.url}/ready`)).status, 200);
  } finally {
    await api.stop();
    await stage.close();
  }
});

test('/metrics: every counter is named *_total and every *_total is a counter', async () => {
  const stage = await startFakeStageAdmin(SECRETS.stage);
  const api = await startApi({ stageUrl: stage.url, logLevel: 'silent' });
  try {
    const text = (await call(`${api.url}/metrics`)).body as string;
    const types = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].filter((m) => !m[1]!.startsWith('stagecast_api_'));
    assert.ok(types.length >= 5);
    for (const [, name, type] of types) assert.equal(type === 'counter', name!.endsWith('_total'), `${name} is a ${type}`);
  } finally {
    await api.stop();
    await stage.close();
  }
});
