import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { SignJWT, createLocalJWKSet, exportJWK, generateKeyPair, type JWK } from 'jose';
import { isStagecastError } from '@stagecast/protocol';
import { IngestAuth } from '../src/services/IngestAuth.js';

const INGEST_TOKEN = 'obs-long-lived-token-0123456789';

async function keyPair() {
  const { publicKey, privateKey } = await generateKeyPair('ES384', { extractable: true });
  const jwk = (await exportJWK(publicKey)) as JWK;
  jwk.kid = 'k1';
  jwk.alg = 'ES384';
  return { privateKey, jwks: { keys: [jwk] } };
}

type Claims = Record<string, unknown>;
const baseClaims = (): Claims => ({
  jti: 'ingest_abc',
  resource: 'stagecast:ingest',
  topic: 'ingest',
  whip_url: 'http://127.0.0.1:3001/whip',
  capabilities: { allow_publish: true, allow_subscribe: false },
  version: '1.0',
});

async function sign(key: CryptoKey, claims: Claims, o: { expSecondsFromNow?: number; kid?: string } = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES384', kid: o.kid ?? 'k1', typ: 'JWT' })
    .setIssuedAt(now - 60)
    .setExpirationTime(now + (o.expSecondsFromNow ?? 3600))
    .sign(key);
}

async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    const r = (await p) as { kind: string };
    return `ok:${r.kind}`;
  } catch (err) {
    return isStagecastError(err) ? `${err.status}` : `threw:${String(err)}`;
  }
}

test('IngestAuth: INGEST_TOKEN, a valid ingest JWT, and every refusal, as a table', async () => {
  const good = await keyPair();
  const other = await keyPair();
  const auth = new IngestAuth({ ingestToken: INGEST_TOKEN, keys: createLocalJWKSet(good.jwks) });
  const cases: [string, () => Promise<string | undefined>, string][] = [
    ['the INGEST_TOKEN', async () => INGEST_TOKEN, 'ok:static'],
    ['a valid ingest JWT from the API Server', () => sign(good.privateKey, baseClaims()), 'ok:jwt'],
    ['no token', async () => undefined, '401'],
    ['a near miss of the INGEST_TOKEN', async () => INGEST_TOKEN.slice(0, -1) + 'X', '401'],
    ['an expired JWT', () => sign(good.privateKey, baseClaims(), { expSecondsFromNow: -120 }), '401'],
    ['a JWT signed by another key', () => sign(other.privateKey, baseClaims()), '401'],
    ['garbage with two dots', async () => 'a.b.c', '401'],
    ['a stage PUBLISH token (wrong resource)', () => sign(good.privateKey, { ...baseClaims(), resource: 'arn:stagecast:ivs:local:000000000000:stage/x' }), '403'],
    ['an ingest token without publish', () => sign(good.privateKey, { ...baseClaims(), capabilities: { allow_publish: false, allow_subscribe: true } }), '403'],
    ['a JWT that is not a participant token', () => sign(good.privateKey, { sub: 'x' }), '403'],
  ];
  for (const [name, token, expected] of cases) {
    assert.equal(await outcome(auth.verify(await token())), expected, name);
  }
});

test('IngestAuth reads the Authorization header: Bearer only; the same token gives the same hash, never the token', async () => {
  const auth = new IngestAuth({ ingestToken: INGEST_TOKEN });
  const a = await auth.authorizeHeader(`Bearer ${INGEST_TOKEN}`);
  const b = await auth.authorizeHeader(`bearer   ${INGEST_TOKEN}`);
  assert.equal(a.tokenHash, b.tokenHash);
  assert.ok(!JSON.stringify(a).includes(INGEST_TOKEN));
  assert.equal(await outcome(auth.authorizeHeader(`Basic ${INGEST_TOKEN}`)), '401');
  assert.equal(await outcome(auth.authorizeHeader(undefined)), '401');
  // No INGEST_TOKEN and no JWKS configured: nothing is accepted.
  assert.equal(await outcome(new IngestAuth({}).verify(INGEST_TOKEN)), '401');
});

test('IngestAuth fetches the API Server JWKS over HTTP; when the API Server is away it is a provider error, not the broadcaster’s fault', async () => {
  const good = await keyPair();
  let fetches = 0;
  const server = createServer((req, res) => {
    fetches++;
    res.writeHead(req.url === '/.well-known/jwks.json' ? 200 : 404, { 'content-type': 'application/json' });
    res.end(JSON.stringify(good.jwks));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  try {
    const auth = new IngestAuth({ jwksUrl: `http://127.0.0.1:${port}/.well-known/jwks.json` });
    assert.equal(await outcome(auth.verify(await sign(good.privateKey, baseClaims()))), 'ok:jwt');
    assert.equal(await outcome(auth.verify(await sign(good.privateKey, baseClaims()))), 'ok:jwt');
    assert.equal(fetches, 1, 'keys are cached');
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
  const away = new IngestAuth({ jwksUrl: `http://127.0.0.1:${port}/.well-known/jwks.json`, jwksTimeoutMs: 500 });
  assert.equal(await outcome(away.verify(await sign(good.privateKey, baseClaims()))), '502');
});
