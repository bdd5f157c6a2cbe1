/** The ivs provider against IVS's control API mocked with aws-sdk-client-mock: calls, tags, pagination, pacing, retries, tokens. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { ValidationException } from '@aws-sdk/client-ivs-realtime';
import { decodeProtectedHeader, jwtVerify } from 'jose';
import type { ParticipantId, StageArn, StageId } from '@stagecast/protocol';
import { ConfigError, parseConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { classifyIvsError, createIvsClient, IvsCallError, IvsStageProvider, IVS_STAGE_TPS } from '../src/providers/ivs.js';
import { IvsApiTokenIssuer, IvsSelfSignedTokenIssuer } from '../src/providers/ivs-tokens.js';
import { Pacer } from '../src/providers/pacing.js';
import { CREATED_AT_TAG, POOL_TAG, TransientProviderError } from '../src/providers/provider.js';
import { PUBLISH_GRANT, SUBSCRIBE_GRANT } from '../src/tokens.js';
import { awsError, FakeIvs, STAGE_OPS } from './helpers/fake-ivs.js';
import { LogCapture, SECRETS } from './helpers/api.js';

const ivs = new FakeIvs();
after(() => ivs.restore());

const logs = new LogCapture();
const log = createLogger('warn', logs);
const fastRetry = { attempts: 5, baseDelayMs: 20, maxDelayMs: 100 };

function provider(poolId = 'pool-a') {
  const pacer = new Pacer(IVS_STAGE_TPS, log, fastRetry, 1);
  return new IvsStageProvider(createIvsClient('us-east-1'), { poolId, pacer });
}

function reset(): void {
  ivs.stages.clear();
  ivs.calls.length = 0;
  ivs.participants.clear();
  ivs.pageSize = 2;
}

test('IVS errors: throttling, a rate quota, 5xx and network errors are transient; validation, access denied and a stage quota are final', () => {
  const cases: Array<[unknown, 'transient' | 'final']> = [
    [awsError('ThrottlingException', 'Rate exceeded'), 'transient'],
    [awsError('ServiceQuotaExceededException', 'Request rate exceeded for CreateStage'), 'transient'],
    [awsError('ServiceQuotaExceededException', 'Maximum number of stages reached', 402), 'final'],
    [awsError('InternalServerException', 'oops', 500), 'transient'],
    [awsError('SomethingElse', 'bad gateway', 502), 'transient'],
    [awsError('UnknownError', 'too many', 429), 'transient'],
    [Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), 'transient'],
    [Object.assign(new Error('timed out'), { name: 'TimeoutError' }), 'transient'],
    [new ValidationException({ message: 'name is invalid', $metadata: { httpStatusCode: 400 } }), 'final'],
    [awsError('AccessDeniedException', 'not authorized', 403), 'final'],
    [awsError('ConflictException', 'stage has compositions', 409), 'final'],
    [new TypeError('bug'), 'final'],
  ];
  for (const [err, kind] of cases) {
    const c = classifyIvsError('CreateStage', err);
    assert.equal(c instanceof TransientProviderError ? 'transient' : 'final', kind, `${(err as Error).name}: ${(err as Error).message}`);
    if (kind === 'final') assert.ok(c instanceof IvsCallError);
  }
  assert.match(classifyIvsError('DeleteStage', awsError('AccessDeniedException', 'no', 403)).message, /IAM policy must allow ivs:DeleteStage/);
});

test('CreateStage is called with our name and tags; the stage keeps its endpoints.whip and plays as ivs', async () => {
  reset();
  const p = provider();
  const tags = { [POOL_TAG]: 'pool-a', [CREATED_AT_TAG]: '2026-11-25T10:00:00.000Z' };
  const s = await p.createStage({ name: 'sc-pool-a-1', tags });
  const call = ivs.callsOf('CreateStage')[0]!;
  assert.deepEqual(call.input, { name: 'sc-pool-a-1', tags });
  assert.match(s.stageArn, /^arn:aws:ivs:us-east-1:123456789012:stage\//);
  assert.equal(s.whipUrl, ivs.stages.get(s.stageArn)!.endpoints!.whip);
  assert.deepEqual(s.playback, { type: 'ivs' });
  assert.equal(s.createdAt, Date.parse('2026-11-25T10:00:00.000Z'));
  assert.deepEqual((await p.health()).ok, true);
});

test('ListStages is paged to the end and filtered client-side to our pool tag (other pools and untagged stages are not ours)', async () => {
  reset();
  for (let i = 0; i < 5; i++) ivs.addStage(`ours${i}`, { tags: { [POOL_TAG]: 'pool-a' } });
  ivs.addStage('otherpool', { tags: { [POOL_TAG]: 'pool-b' } });
  ivs.addStage('untagged', {});
  const list = await provider().listStages();
  assert.deepEqual(list.map((s) => s.stageId).sort(), ['ours0', 'ours1', 'ours2', 'ours3', 'ours4']);
  const pages = ivs.callsOf('ListStages');
  assert.equal(pages.length, 4, '7 stages at 2 per page');
  assert.deepEqual(pages.map((c) => c.input.nextToken), [undefined, '2', '4', '6']);
  assert.ok(pages.every((c) => c.input.maxResults === 100));
  assert.ok(list.every((s) => s.whipUrl === undefined), 'ListStages carries no endpoints');
});

test('every stage call is paced to 5 TPS: 12 deletes take ≥ 2.2 s and no 1 s window holds more than 5 calls', async () => {
  reset();
  const p = provider();
  const arns = Array.from({ length: 12 }, (_, i) => ivs.addStage(`d${i}`, { tags: { [POOL_TAG]: 'pool-a' } }).arn as StageArn);
  const t0 = performance.now();
  await Promise.all(arns.map((a) => p.deleteStage(a)));
  const ms = performance.now() - t0;
  assert.equal(ivs.stages.size, 0);
  assert.ok(ms >= 2150, `12 calls at 5/s took ${ms.toFixed(0)} ms`);
  assert.ok(ivs.maxInWindow(STAGE_OPS, 990) <= 5, `at most 5 calls per second (saw ${ivs.maxInWindow(STAGE_OPS, 990)})`);
});

test('throttling is retried until IVS accepts; a final error (ValidationException, AccessDenied) is not retried', async () => {
  reset();
  const p = provider();
  ivs.failNext('CreateStage', 2, () => awsError('ThrottlingException', 'Rate exceeded'));
  const s = await p.createStage({ name: 'sc-x', tags: { [POOL_TAG]: 'pool-a' } });
  assert.equal(ivs.callsOf('CreateStage').length, 3);
  assert.ok(ivs.stages.has(s.stageArn));
  assert.ok(logs.lines().some((l) => l.msg === 'provider.retry' && l.op === 'CreateStage'));

  ivs.failNext('CreateStage', 1, () => new ValidationException({ message: 'name too long', $metadata: { httpStatusCode: 400 } }));
  await assert.rejects(p.createStage({ name: 'sc-y', tags: {} }), (err: unknown) => err instanceof IvsCallError && /ValidationException: name too long/.test(err.message));
  assert.equal(ivs.callsOf('CreateStage').length, 4);
  assert.equal((await p.health()).ok, false, 'health reports the last call failing');

  ivs.failNext('ListStages', 1, () => awsError('AccessDeniedException', 'User is not authorized to perform ivs:ListStages', 403));
  await assert.rejects(provider().listStages(), /AccessDeniedException.*IAM policy must allow ivs:ListStages/);

  ivs.failNext('DeleteStage', 5, () => awsError('ThrottlingException', 'Rate exceeded'));
  await assert.rejects(p.deleteStage(s.stageArn), (err: unknown) => err instanceof TransientProviderError, 'gives up after 5 attempts');
  assert.equal(ivs.callsOf('DeleteStage').length, 5);
});

test('DeleteStage and GetStage of a stage IVS no longer has: delete succeeds (idempotent), get answers undefined', async () => {
  reset();
  const p = provider();
  const gone = 'arn:aws:ivs:us-east-1:123456789012:stage/gone' as StageArn;
  await p.deleteStage(gone);
  assert.equal(await p.getStage(gone), undefined);
});

test('a CreateStage answer without endpoints.whip is deleted at once and reported, never returned', async () => {
  reset();
  const p = provider();
  const realCreate = ivs.addStage.bind(ivs);
  ivs.addStage = (id, o) => realCreate(id, { ...o, whip: false });
  try {
    await assert.rejects(p.createStage({ name: 'sc-nowhip', tags: { [POOL_TAG]: 'pool-a' } }), /no endpoints\.whip/);
  } finally {
    ivs.addStage = realCreate;
  }
  assert.equal(ivs.callsOf('DeleteStage').length, 1);
  assert.equal(ivs.stages.size, 0);
});

const target = { arn: 'arn:aws:ivs:us-east-1:123456789012:stage/tok1' as StageArn, id: 'tok1' as StageId, whipUrl: 'https://tok1.global-bm.whip.live-video.net' };

test('API tokens: CreateParticipantToken with one capability, our participant id as userId, the TTL in minutes; IVS participant id returned', async () => {
  reset();
  ivs.addStage('tok1', { tags: { [POOL_TAG]: 'pool-a' } });
  const issuer = new IvsApiTokenIssuer(createIvsClient('us-east-1'), new Pacer(50, log, fastRetry, 1));
  const now = Date.now();
  const sub = await issuer.issue({ stage: target, participantId: 'v_abc' as ParticipantId, grant: SUBSCRIBE_GRANT, label: 'alice', ttlSeconds: 3600, nowMs: now });
  assert.deepEqual(ivs.callsOf('CreateParticipantToken')[0]!.input, {
    stageArn: target.arn,
    userId: 'v_abc',
    capabilities: ['SUBSCRIBE'],
    duration: 60,
    attributes: { label: 'alice' },
  });
  assert.equal(sub.token, 'ivs-issued-token-1');
  assert.equal(sub.participantId, 'ivsP1');
  assert.equal(sub.whipUrl, target.whipUrl);
  ivs.failNext('CreateParticipantToken', 1, () => awsError('ThrottlingException', 'Rate exceeded'));
  const pub = await issuer.issue({ stage: target, participantId: 'pub_x' as ParticipantId, grant: PUBLISH_GRANT, ttlSeconds: 43_200, nowMs: now });
  const calls = ivs.callsOf('CreateParticipantToken');
  assert.equal(calls.length, 3, 'the throttled call was retried');
  assert.deepEqual(calls[2]!.input.capabilities, ['PUBLISH']);
  assert.equal(calls[2]!.input.duration, 720);
  assert.ok(pub.expiresAt.getTime() > now + 11 * 3600_000);
  ivs.failNext('CreateParticipantToken', 1, () => awsError('AccessDeniedException', 'denied', 403));
  await assert.rejects(
    issuer.issue({ stage: target, participantId: 'v_d' as ParticipantId, grant: SUBSCRIBE_GRANT, ttlSeconds: 60, nowMs: now }),
    (err: unknown) => (err as { code?: string }).code === 'PROVIDER_ERROR',
  );
});

test('self-signed tokens: ES384 with kid = the imported public key ARN and the IVS claim set, verifiable with the public key', async () => {
  reset();
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
  const pem = privateKey.export({ type: 'sec1', format: 'pem' }).toString();
  const publicKeyArn = 'arn:aws:ivs:us-east-1:123456789012:public-key/AbCdEf123456';
  const issuer = new IvsSelfSignedTokenIssuer({ privateKeyPem: pem, publicKeyArn, eventsUrl: 'wss://global.events.live-video.net' });
  const now = Date.now();
  const t = await issuer.issue({ stage: target, participantId: 'v_xyz' as ParticipantId, grant: SUBSCRIBE_GRANT, label: 'bob', ttlSeconds: 3600, nowMs: now });
  assert.deepEqual(decodeProtectedHeader(t.token), { alg: 'ES384', typ: 'JWT', kid: publicKeyArn });
  const { payload } = await jwtVerify(t.token, createPublicKey(privateKey), { algorithms: ['ES384'] });
  const iat = Math.floor(now / 1000);
  assert.deepEqual(payload, {
    exp: iat + 3600,
    iat,
    jti: 'v_xyz',
    user_id: 'v_xyz',
    resource: target.arn,
    topic: 'tok1',
    events_url: 'wss://global.events.live-video.net',
    whip_url: target.whipUrl,
    capabilities: { allow_publish: false, allow_subscribe: true },
    attributes: { label: 'bob' },
    version: '1.0',
  });
  assert.equal(t.participantId, 'v_xyz');
  assert.equal(ivs.calls.length, 0, 'no IVS call');
  const long = await issuer.issue({ stage: target, participantId: 'pub_1' as ParticipantId, grant: PUBLISH_GRANT, ttlSeconds: 30 * 86400, nowMs: now });
  assert.equal(long.expiresAt.getTime(), (iat + 14 * 86400) * 1000, 'capped at 14 days after iat');
});

test('config for ivs: AWS_REGION required; the signing key must be P-384 and comes with its public key ARN; the key is never echoed', () => {
  const base = { API_SECRET_KEY: SECRETS.apiKey, MEDIA_SERVER_SECRET: SECRETS.media, STAGE_PROVIDER: 'ivs' };
  const msg = (env: Record<string, string>) => {
    try {
      parseConfig({ ...base, ...env });
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      return err.message;
    }
    return '';
  };
  assert.match(msg({}), /AWS_REGION: required when STAGE_PROVIDER=ivs/);
  assert.doesNotMatch(msg({}), /STAGE_SERVER_SECRET/);
  const p256 = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const m = msg({ AWS_REGION: 'us-east-1', IVS_TOKEN_SIGNING_KEY: p256 });
  assert.match(m, /IVS_TOKEN_SIGNING_KEY: must be an ECDSA P-384/);
  assert.match(m, /IVS_TOKEN_PUBLIC_KEY_ARN: required with IVS_TOKEN_SIGNING_KEY/);
  assert.doesNotMatch(m, /PRIVATE KEY/);
  assert.match(msg({ AWS_REGION: 'us-east-1', IVS_TOKEN_SIGNING_KEY: 'not a key', IVS_TOKEN_PUBLIC_KEY_ARN: 'arn:aws:ivs:us-east-1:123456789012:public-key/abc' }), /not a PEM private key/);
  const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey.export({ type: 'sec1', format: 'pem' }).toString();
  const c = parseConfig({
    ...base,
    AWS_REGION: 'eu-west-1',
    IVS_TOKEN_SIGNING_KEY: p384.trim().replace(/\n/g, '\\n'), // one-line .env form
    IVS_TOKEN_PUBLIC_KEY_ARN: 'arn:aws:ivs:eu-west-1:123456789012:public-key/abc',
  });
  assert.equal(c.ivs?.region, 'eu-west-1');
  assert.equal(c.ivs?.selfSigned?.publicKeyArn, 'arn:aws:ivs:eu-west-1:123456789012:public-key/abc');
  assert.equal(c.ivs?.selfSigned?.privateKeyPem, p384.trim());
  assert.equal(c.ivs?.viewerReconcileIntervalMs, 60_000);
});
