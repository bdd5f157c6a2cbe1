import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { localStageArn, StagecastError, type ParticipantClaims } from '@stagecast/protocol';
import { ParticipantTokenVerifier } from '../src/index.js';

const STAGE = localStageArn('StageAAAAAAA');
const OTHER = localStageArn('StageBBBBBBB');

/** A tiny JWKS server, like the API Server's GET /.well-known/jwks.json. */
async function jwksServer(keys: JWK[]): Promise<{ url: string; hits: () => number; close: () => Promise<void> }> {
  let hits = 0;
  const server: Server = createServer((req, res) => {
    hits++;
    if (req.url !== '/.well-known/jwks.json') return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    hits: () => hits,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** One verifier, one mapping of failures, for the stage server (stage tokens) and the Media Server (ingest tokens). */
describe('ParticipantTokenVerifier against a JWKS served over HTTP', () => {
  let key: CryptoKey;
  let otherKey: CryptoKey;
  let jwks: Awaited<ReturnType<typeof jwksServer>>;
  let verifier: ParticipantTokenVerifier;
  const now = () => Math.floor(Date.now() / 1000);

  function claims(over: Partial<ParticipantClaims> = {}): ParticipantClaims {
    return {
      exp: now() + 600,
      iat: now(),
      jti: 'participant_1',
      resource: STAGE,
      topic: 'StageAAAAAAA',
      whip_url: 'http://127.0.0.1:3002/stages/StageAAAAAAA/whip',
      capabilities: { allow_publish: true, allow_subscribe: false },
      version: '1.0',
      ...over,
    };
  }
  function sign(payload: object, opts: { with?: CryptoKey; kid?: string; alg?: string } = {}): Promise<string> {
    return new SignJWT(payload as Record<string, unknown>)
      .setProtectedHeader({ alg: opts.alg ?? 'ES384', kid: opts.kid ?? 'k1', typ: 'JWT' })
      .sign(opts.with ?? key);
  }

  before(async () => {
    const signing = await generateKeyPair('ES384');
    key = signing.privateKey;
    otherKey = (await generateKeyPair('ES384')).privateKey; // not in the JWKS
    const real = await exportJWK(signing.publicKey);
    const decoy = await exportJWK((await generateKeyPair('ES384')).publicKey); // in the JWKS, signs nothing
    jwks = await jwksServer([
      { ...real, kid: 'k1', alg: 'ES384', use: 'sig' },
      { ...decoy, kid: 'decoy', alg: 'ES384', use: 'sig' },
    ]);
    verifier = new ParticipantTokenVerifier({ jwksUrl: jwks.url, cooldownMs: 0 });
  });
  after(async () => {
    await jwks?.close();
  });

  async function expectRefusal(p: Promise<unknown>, status: number, code: string): Promise<void> {
    await assert.rejects(p, (e: unknown) => {
      assert.ok(e instanceof StagecastError, String(e));
      assert.equal(e.status, status);
      assert.equal(e.code, code);
      return true;
    });
  }

  test('a good publish token is accepted for publish on its stage and returns its claims', async () => {
    const c = await verifier.verify(await sign(claims()), { resource: STAGE, capability: 'publish', label: 'stage' });
    assert.equal(c.jti, 'participant_1');
    assert.equal(c.resource, STAGE);
  });

  test('a good subscribe token is accepted for subscribe', async () => {
    const t = await sign(claims({ jti: 'viewer_1', capabilities: { allow_publish: false, allow_subscribe: true } }));
    assert.equal((await verifier.verify(t, { resource: STAGE, capability: 'subscribe', label: 'stage' })).jti, 'viewer_1');
  });

  test('a missing token → 401', async () => {
    await expectRefusal(verifier.verify(undefined, { resource: STAGE, capability: 'publish', label: 'stage' }), 401, 'UNAUTHORIZED');
    await expectRefusal(verifier.verify('', { resource: STAGE, capability: 'publish', label: 'stage' }), 401, 'UNAUTHORIZED');
  });

  test('an expired token → 401', async () => {
    await expectRefusal(verifier.verify(await sign(claims({ exp: now() - 60, iat: now() - 120 })), { resource: STAGE, capability: 'publish', label: 'stage' }), 401, 'UNAUTHORIZED');
  });

  test('a token signed by another key (bad signature) → 401', async () => {
    await expectRefusal(verifier.verify(await sign(claims(), { with: otherKey }), { resource: STAGE, capability: 'publish', label: 'stage' }), 401, 'UNAUTHORIZED');
  });

  test('a token whose signature bytes were altered → 401', async () => {
    const t = await sign(claims());
    const [h, p, s] = t.split('.');
    const flipped = s!.slice(0, 10) + (s![10] === 'A' ? 'B' : 'A') + s!.slice(11);
    await expectRefusal(verifier.verify(`${h}.${p}.${flipped}`, { resource: STAGE, capability: 'publish', label: 'stage' }), 401, 'UNAUTHORIZED');
  });

  test('a token with an unknown key id → 401', async () => {
    await expectRefusal(verifier.verify(await sign(claims(), { kid: 'nope' }), { resource: STAGE, capability: 'publish', label: 'stage' }), 401, 'UNAUTHORIZED');
  });

  test('garbage that is not a JWT, or a token longer than any we sign → 401 (no key fetch needed)', async () => {
    await expectRefusal(verifier.verify('not.a.jwt', { resource: STAGE, capability: 'publish', label: 'stage' }), 401, 'UNAUTHORIZED');
    const before = jwks.hits();
    await expectRefusal(verifier.verify('opaque-not-a-jwt', { resource: STAGE, capability: 'publish' }), 401, 'UNAUTHORIZED');
    await expectRefusal(verifier.verify(`a.${'b'.repeat(9000)}.c`, { resource: STAGE, capability: 'publish' }), 401, 'UNAUTHORIZED');
    assert.equal(jwks.hits(), before);
  });

  test('a validly signed token with malformed claims (no capabilities) → 403: authentic, but not a participant token', async () => {
    const { capabilities: _c, ...rest } = claims();
    await expectRefusal(verifier.verify(await sign(rest), { resource: STAGE, capability: 'publish', label: 'stage' }), 403, 'FORBIDDEN');
  });

  test('a token for another stage (resource) → 403', async () => {
    await expectRefusal(verifier.verify(await sign(claims({ resource: OTHER })), { resource: STAGE, capability: 'publish', label: 'stage' }), 403, 'FORBIDDEN');
  });

  test('a subscribe-only token used to publish → 403', async () => {
    const t = await sign(claims({ capabilities: { allow_publish: false, allow_subscribe: true } }));
    await expectRefusal(verifier.verify(t, { resource: STAGE, capability: 'publish', label: 'stage' }), 403, 'FORBIDDEN');
  });

  test('a publish-only token used to subscribe → 403', async () => {
    await expectRefusal(verifier.verify(await sign(claims()), { resource: STAGE, capability: 'subscribe', label: 'stage' }), 403, 'FORBIDDEN');
  });

  test('the key set is fetched once and cached across verifications', async () => {
    const before = jwks.hits();
    for (let i = 0; i < 5; i++) await verifier.verify(await sign(claims()), { resource: STAGE, capability: 'publish', label: 'stage' });
    assert.equal(jwks.hits(), before);
  });

  test('an unreachable JWKS → 502 PROVIDER_ERROR (not the client’s fault)', async () => {
    const down = new ParticipantTokenVerifier({ jwksUrl: 'http://127.0.0.1:9/.well-known/jwks.json', timeoutMs: 1000 });
    await expectRefusal(down.verify(await sign(claims()), { resource: STAGE, capability: 'publish', label: 'stage' }), 502, 'PROVIDER_ERROR');
  });
});
