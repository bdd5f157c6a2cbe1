/**
 * The viewer key is public: joins and heartbeats made with it are rate-limited per client address (429 +
 * Retry-After), X-Forwarded-For believed only from TRUSTED_PROXIES; the operator's key is never limited; refusals
 * show in /metrics and the dashboard.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DashboardResponseSchema } from '@stagecast/protocol';
import { parseAddressList, parseConfig, parseTrustedProxies } from '../src/config.js';
import { addressMatcher, clientKey, KeyedTokenBuckets } from '../src/services/ViewerRateLimiter.js';
import { apiKey, SECRETS, startApi, type TestApi } from './helpers/api.js';
import { startFakeStageAdmin } from './helpers/fake-stage-admin.js';

const VIEWER_KEY = 'viewer-key-public-0123';
const viewerKey = { 'x-api-key': VIEWER_KEY };

async function withApi(env: Record<string, string>, fn: (api: TestApi) => Promise<void>): Promise<void> {
  const stage = await startFakeStageAdmin(SECRETS.stage);
  const api = await startApi({
    stageUrl: stage.url,
    logLevel: 'silent',
    env: { VIEWER_API_KEY: VIEWER_KEY, STAGE_CAPACITY: '1000', VIEWER_JOIN_RATE_PER_MIN: '6', VIEWER_JOIN_BURST: '3', ...env },
  });
  try {
    await fn(api);
  } finally {
    await api.stop();
    await stage.close();
  }
}

const join = (api: TestApi, remoteAddress: string, headers: Record<string, string> = viewerKey) =>
  api.server.app.inject({ method: 'POST', url: '/api/viewers/join', remoteAddress, headers: { ...headers, 'content-type': 'application/json' }, payload: '{}' });

test('a join flood from one address gets 429 with Retry-After while a second address still joins', async () => {
  await withApi({}, async (api) => {
    const flood = await Promise.all(Array.from({ length: 10 }, () => join(api, '203.0.113.7')));
    const codes = flood.map((r) => r.statusCode);
    assert.equal(codes.filter((c) => c === 201).length, 3, `burst of 3 then refusals: ${codes.join(',')}`);
    const refused = flood.filter((r) => r.statusCode === 429);
    assert.equal(refused.length, 7);
    for (const r of refused) {
      assert.equal(r.json().error.code, 'RATE_LIMITED');
      assert.ok(Number(r.headers['retry-after']) >= 1, `Retry-After: ${r.headers['retry-after']}`);
    }
    const other = await join(api, '198.51.100.9');
    assert.equal(other.statusCode, 201, 'another address is not affected');
    assert.equal(await api.server.services.store.countViewers(), 4, 'the flood took 3 seats, not 10');
  });
});

test('the operator key is never rate-limited', async () => {
  await withApi({}, async (api) => {
    const rs = await Promise.all(Array.from({ length: 8 }, () => join(api, '203.0.113.7', apiKey)));
    assert.deepEqual([...new Set(rs.map((r) => r.statusCode))], [201]);
  });
});

test('heartbeats with the viewer key are limited per address too', async () => {
  await withApi({ VIEWER_HEARTBEAT_RATE_PER_MIN: '6', VIEWER_HEARTBEAT_BURST: '2' }, async (api) => {
    const j = await join(api, '203.0.113.8');
    const id = j.json().viewerId as string;
    const hb = () => api.server.app.inject({ method: 'POST', url: `/api/viewers/${id}/heartbeat`, remoteAddress: '203.0.113.8', headers: viewerKey });
    const codes = [(await hb()).statusCode, (await hb()).statusCode, (await hb()).statusCode];
    assert.deepEqual(codes, [200, 200, 429]);
  });
});

test('X-Forwarded-For is ignored from an untrusted peer (a client cannot pick a fresh address per request)', async () => {
  await withApi({}, async (api) => {
    const codes: number[] = [];
    for (let i = 0; i < 6; i++) codes.push((await join(api, '203.0.113.7', { ...viewerKey, 'x-forwarded-for': `10.9.0.${i}` })).statusCode);
    assert.equal(codes.filter((c) => c === 429).length, 3);
  });
});

test('X-Forwarded-For is honoured from a TRUSTED_PROXIES peer: each real client has its own bucket', async () => {
  await withApi({ TRUSTED_PROXIES: '10.0.0.0/8' }, async (api) => {
    const via = (client: string) => join(api, '10.1.2.3', { ...viewerKey, 'x-forwarded-for': client });
    const a = await Promise.all(Array.from({ length: 5 }, () => via('203.0.113.50')));
    assert.equal(a.filter((r) => r.statusCode === 429).length, 2, 'one client behind the proxy is limited');
    assert.equal((await via('203.0.113.51')).statusCode, 201, 'another client behind the same proxy is not');
    // A spoofed hop before the client's real address is not believed: the proxy appends the peer it saw.
    assert.equal((await via('1.2.3.4, 203.0.113.50')).statusCode, 429);
  });
});

test('VIEWER_RATE_LIMIT_EXEMPT: a named load-test address is not limited (and is counted), every other address still is', async () => {
  await withApi({ VIEWER_RATE_LIMIT_EXEMPT: '127.0.0.1,2001:db8::/64' }, async (api) => {
    const exempt = await Promise.all(Array.from({ length: 10 }, (_, i) => join(api, i % 2 ? '127.0.0.1' : '::ffff:127.0.0.1')));
    assert.deepEqual([...new Set(exempt.map((r) => r.statusCode))], [201]);
    const v6 = await Promise.all(Array.from({ length: 5 }, () => join(api, '2001:db8::42')));
    assert.deepEqual([...new Set(v6.map((r) => r.statusCode))], [201]);
    const others = await Promise.all(Array.from({ length: 5 }, () => join(api, '203.0.113.7')));
    assert.equal(others.filter((r) => r.statusCode === 429).length, 2, 'an address not named keeps its limit');
    const metrics = (await api.server.app.inject({ url: '/metrics' })).body;
    assert.match(metrics, /stagecast_viewer_rate_limit_exempt_total\{kind="join"\} 15/);
  });
});

test('config: VIEWER_RATE_LIMIT_EXEMPT takes IPs and CIDRs only, and names what it refuses', () => {
  assert.deepEqual(parseAddressList('127.0.0.1, 10.0.0.0/8').list, ['127.0.0.1', '10.0.0.0/8']);
  assert.match(parseAddressList('loopback').error ?? '', /"loopback"/);
  assert.match(parseAddressList('10.0.0.0/40').error ?? '', /10\.0\.0\.0\/40/);
  const m = addressMatcher(['10.0.0.0/8', '::1']);
  assert.deepEqual(['10.1.2.3', '11.0.0.1', '::1', '::ffff:10.0.0.9', 'junk'].map(m), [true, false, true, true, false]);
});

test('refused joins are counted: stagecast_viewer_rate_limited_total, stagecast_joins_total{result="rate_limited"}, the dashboard', async () => {
  await withApi({}, async (api) => {
    await Promise.all(Array.from({ length: 5 }, () => join(api, '203.0.113.7')));
    const metrics = (await api.server.app.inject({ url: '/metrics' })).body;
    assert.match(metrics, /stagecast_viewer_rate_limited_total\{kind="join"\} 2/);
    assert.match(metrics, /stagecast_joins_total\{result="rate_limited"\} 2/);
    const d = DashboardResponseSchema.parse((await api.server.app.inject({ url: '/api/dashboard', headers: apiKey })).json());
    assert.equal(d.refused.joinsRateLimited, 2);
    assert.equal(d.refused.heartbeatsRateLimited, 0);
  });
});

test('token bucket: refills at the configured rate; 0 per minute means no limit; idle buckets are forgotten', () => {
  const b = new KeyedTokenBuckets({ perMinute: 60, burst: 2 });
  assert.equal(b.take('a', 0), undefined);
  assert.equal(b.take('a', 0), undefined);
  assert.equal(b.take('a', 0), 1, 'one token a second: retry in 1 s');
  assert.equal(b.take('a', 1000), undefined);
  b.sweep(10_000);
  assert.equal(b.size, 0);
  const off = new KeyedTokenBuckets({ perMinute: 0, burst: 1 });
  for (let i = 0; i < 100; i++) assert.equal(off.take('a', 0), undefined);
});

test('config: TRUSTED_PROXIES takes IPs, CIDRs and keywords, and names what it refuses', () => {
  assert.deepEqual(parseTrustedProxies('10.0.0.0/8, 127.0.0.1,loopback,::1,fd00::/8').list, ['10.0.0.0/8', '127.0.0.1', 'loopback', '::1', 'fd00::/8']);
  assert.match(parseTrustedProxies('10.0.0.0/40,proxy.example').error!, /"10.0.0.0\/40", "proxy.example"/);
  assert.throws(
    () => parseConfig({ API_SECRET_KEY: SECRETS.apiKey, MEDIA_SERVER_SECRET: SECRETS.media, STAGE_SERVER_SECRET: SECRETS.stage, TRUSTED_PROXIES: 'nope', VIEWER_JOIN_BURST: '0' }),
    /TRUSTED_PROXIES: not an IP[\s\S]*|VIEWER_JOIN_BURST/,
  );
});

test('bucket keys: IPv4 as is (also IPv4-mapped), IPv6 by its /64 (a subscriber holds a whole /64)', () => {
  assert.equal(clientKey('203.0.113.7'), '203.0.113.7');
  assert.equal(clientKey('::ffff:203.0.113.7'), '203.0.113.7');
  assert.equal(clientKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
  assert.equal(clientKey('2001:db8:1:2:bbbb:cccc:dddd:eeee'), '2001:db8:1:2::/64');
  assert.equal(clientKey('2001:db8::1'), '2001:db8:0:0::/64');
  assert.equal(clientKey('::1'), '0:0:0:0::/64');
});

test('a flood from one IPv6 /64 is limited even when every request uses another address in it', async () => {
  await withApi({}, async (api) => {
    const codes: number[] = [];
    for (let i = 1; i <= 6; i++) codes.push((await join(api, `2001:db8:5:6::${i.toString(16)}`)).statusCode);
    assert.equal(codes.filter((c) => c === 429).length, 3);
    assert.equal((await join(api, '2001:db8:5:7::1')).statusCode, 201, 'the next /64 is someone else');
  });
});

test('the public viewer key reads nothing else: GET /api/media/stages and the dashboard answer 403', async () => {
  await withApi({}, async (api) => {
    for (const url of ['/api/media/stages', '/api/dashboard', '/api/stages']) {
      const r = await api.server.app.inject({ url, headers: viewerKey });
      assert.equal(r.statusCode, 403, url);
    }
  });
});
