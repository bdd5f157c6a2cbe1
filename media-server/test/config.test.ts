import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, parseConfig } from '../src/config.js';

test('config: defaults from the brief, and every bad variable named at once', () => {
  const c = parseConfig({ MEDIA_SERVER_SECRET: 'secret-123456' }, 'host a');
  assert.equal(c.port, 3001);
  assert.equal(c.host, '0.0.0.0');
  assert.equal(c.publicUrl, undefined, 'defaults to http://127.0.0.1:<bound port> at start');
  assert.equal(c.serverId, 'host-a-3001');
  assert.equal(c.apiServerUrl, 'http://127.0.0.1:3000');
  assert.equal(c.syncIntervalMs, 60_000);
  assert.equal(c.heartbeatIntervalMs, undefined);
  assert.equal(c.legTokenRenewBeforeMs, 600_000);
  assert.equal(c.legMaxAgeMs, 82_800_000);
  assert.equal(c.maxLegs, undefined, 'no limit unless MAX_LEGS is set');
  assert.equal(c.drainTimeoutMs, 15_000);
  assert.equal(parseConfig({ MEDIA_SERVER_SECRET: 'secret-123456', MAX_LEGS: '12', DRAIN_TIMEOUT_MS: '0' }).maxLegs, 12);
  assert.throws(() => parseConfig({ MEDIA_SERVER_SECRET: 'secret-123456', MAX_LEGS: '0' }), /MAX_LEGS/);
  assert.throws(
    () => parseConfig({ PORT: 'x', LEG_MAX_AGE_S: '90000', API_SERVER_URL: 'nope', INGEST_TOKEN: 'short' }),
    (e: unknown) =>
      e instanceof ConfigError &&
      ['MEDIA_SERVER_SECRET: required', 'PORT', 'LEG_MAX_AGE_S', 'API_SERVER_URL', 'INGEST_TOKEN'].every((s) => e.message.includes(s)),
  );
  const p = parseConfig({ MEDIA_SERVER_SECRET: 'secret-123456', PUBLIC_URL: 'https://media.example.com/', PORT: '0', SERVER_ID: 'm1' });
  assert.equal(p.publicUrl, 'https://media.example.com');
  assert.equal(p.serverId, 'm1');
});

test('API_SECRET_KEY is not silently dropped: the Media Server does not use it and says so (never echoing it)', () => {
  const without = parseConfig({ MEDIA_SERVER_SECRET: 'secret-123456' }, 'h');
  assert.deepEqual(without.warnings, []);
  const c = parseConfig({ MEDIA_SERVER_SECRET: 'secret-123456', API_SECRET_KEY: 'operator-key-abcdef' }, 'h');
  assert.equal(c.warnings.length, 1);
  assert.match(c.warnings[0]!, /^API_SECRET_KEY: not used by the Media Server/);
  assert.ok(!c.warnings[0]!.includes('operator-key-abcdef'));
});
