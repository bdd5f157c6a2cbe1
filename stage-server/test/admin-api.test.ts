import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  CreateStageResponseSchema,
  ListStagesResponseSchema,
  localStageArn,
  type ErrorBody,
} from '@stagecast/protocol';
import type { StageServer } from '../src/app.js';
import { bodyOf, oversizedHeaderRequest, rawRequest } from '../../packages/service/test/raw-http.js';
import { admin, SECRET, startInProcess, tempDir } from './helpers.js';

describe('admin API over a real port', () => {
  let server: StageServer;
  let base: string;
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let api: ReturnType<typeof admin>;

  before(async () => {
    dir = await tempDir();
    ({ server, base } = await startInProcess({ DATA_DIR: dir.path, PUBLIC_URL: 'http://stage.test:8080/' }));
    api = admin(base);
  });
  after(async () => {
    await server?.stop();
    await dir?.remove();
  });

  async function errorOf(res: Response): Promise<ErrorBody['error']> {
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
    const body = (await res.json()) as ErrorBody;
    assert.equal(typeof body.error.message, 'string');
    return body.error;
  }

  test('POST /admin/stages creates a stage: 201, protocol shape, 12-char base62 id, ARN and URLs under PUBLIC_URL', async () => {
    const res = await api.create({ name: 'pool-1', tags: { stagecast: 'pool' } });
    assert.equal(res.status, 201);
    const { stage } = CreateStageResponseSchema.parse(await res.json());
    assert.match(stage.stageId, /^[0-9A-Za-z]{12}$/);
    assert.equal(stage.stageArn, localStageArn(stage.stageId));
    assert.equal(stage.name, 'pool-1');
    assert.deepEqual(stage.tags, { stagecast: 'pool' });
    assert.equal(stage.whipUrl, `http://stage.test:8080/stages/${stage.stageId}/whip`);
    assert.equal(stage.whepUrl, `http://stage.test:8080/stages/${stage.stageId}/whep`);
    assert.ok(!Number.isNaN(Date.parse(stage.createdAt)));
  });

  test('POST /admin/stages without a body creates an unnamed stage', async () => {
    const res = await fetch(`${base}/admin/stages`, { method: 'POST', headers: { authorization: `Bearer ${SECRET}` } });
    assert.equal(res.status, 201);
    const { stage } = CreateStageResponseSchema.parse(await res.json());
    assert.equal(stage.name, '');
    assert.deepEqual(stage.tags, {});
  });

  test('stage ids are unique across many creations', async () => {
    const ids = await Promise.all(
      Array.from({ length: 20 }, async () => CreateStageResponseSchema.parse(await (await api.create()).json()).stage.stageId),
    );
    assert.equal(new Set(ids).size, ids.length);
  });

  test('GET /admin/stages lists every stage; GET /admin/stages/:id returns one', async () => {
    const created = CreateStageResponseSchema.parse(await (await api.create({ name: 'listed' })).json()).stage;
    const listRes = await api.list();
    assert.equal(listRes.status, 200);
    const { stages } = ListStagesResponseSchema.parse(await listRes.json());
    assert.deepEqual(
      stages.find((s) => s.stageId === created.stageId),
      created,
    );
    const one = await api.get(created.stageId);
    assert.equal(one.status, 200);
    assert.deepEqual(CreateStageResponseSchema.parse(await one.json()).stage, created);
  });

  test('DELETE /admin/stages/:id → 204, then the stage is gone (404) and no longer listed', async () => {
    const created = CreateStageResponseSchema.parse(await (await api.create()).json()).stage;
    const del = await api.delete(created.stageId);
    assert.equal(del.status, 204);
    assert.equal((await del.text()).length, 0);
    const get = await api.get(created.stageId);
    assert.equal(get.status, 404);
    assert.equal((await errorOf(get)).code, 'NOT_FOUND');
    const { stages } = ListStagesResponseSchema.parse(await (await api.list()).json());
    assert.ok(!stages.some((s) => s.stageId === created.stageId));
  });

  test('DELETE of an unknown or already deleted stage is idempotent: 204', async () => {
    assert.equal((await api.delete('doesNotExist1')).status, 204);
    const created = CreateStageResponseSchema.parse(await (await api.create()).json()).stage;
    assert.equal((await api.delete(created.stageId)).status, 204);
    assert.equal((await api.delete(created.stageId)).status, 204);
  });

  test('GET of an unknown stage → 404 NOT_FOUND', async () => {
    const res = await api.get('unknownStage');
    assert.equal(res.status, 404);
    assert.equal((await errorOf(res)).code, 'NOT_FOUND');
  });

  for (const [what, headers] of [
    ['no Authorization header', {}],
    ['an Authorization header that is not Bearer', { authorization: `Basic ${Buffer.from(`x:${SECRET}`).toString('base64')}` }],
  ] as const) {
    test(`every admin route refuses ${what}: 401 UNAUTHORIZED with WWW-Authenticate`, async () => {
      for (const [method, path] of [
        ['POST', '/admin/stages'],
        ['GET', '/admin/stages'],
        ['GET', '/admin/stages/abc'],
        ['DELETE', '/admin/stages/abc'],
      ]) {
        const res = await fetch(`${base}${path}`, { method, headers });
        assert.equal(res.status, 401, `${method} ${path}`);
        assert.equal(res.headers.get('www-authenticate'), 'Bearer');
        assert.equal((await errorOf(res)).code, 'UNAUTHORIZED');
      }
    });
  }

  test('every admin route refuses a wrong secret: 403 FORBIDDEN, and nothing is created or deleted', async () => {
    const before = ListStagesResponseSchema.parse(await (await api.list()).json()).stages.length;
    const wrong = admin(base, 'not-the-secret');
    const victim = CreateStageResponseSchema.parse(await (await api.create()).json()).stage;
    for (const res of [await wrong.create(), await wrong.list(), await wrong.get(victim.stageId), await wrong.delete(victim.stageId)]) {
      assert.equal(res.status, 403);
      assert.equal((await errorOf(res)).code, 'FORBIDDEN');
    }
    // A secret that is a prefix of the real one is wrong too.
    assert.equal((await admin(base, SECRET.slice(0, -1)).list()).status, 403);
    const after = ListStagesResponseSchema.parse(await (await api.list()).json()).stages;
    assert.equal(after.length, before + 1);
    assert.ok(after.some((s) => s.stageId === victim.stageId));
  });

  test('invalid input → 400 INVALID_INPUT with details naming the field', async () => {
    const cases: Array<[string, unknown, string]> = [
      ['a name with a space', { name: 'has space' }, 'name'],
      ['a name over 128 chars', { name: 'a'.repeat(129) }, 'name'],
      ['tags that are not strings', { tags: { a: 1 } }, 'tags.a'],
      ['an unknown field', { nam: 'typo' }, ''],
      ['a body that is not an object', [1, 2], ''],
    ];
    for (const [what, body, path] of cases) {
      const res = await api.create(body);
      assert.equal(res.status, 400, what);
      const err = await errorOf(res);
      assert.equal(err.code, 'INVALID_INPUT', what);
      assert.ok(Array.isArray(err.details), what);
      assert.ok((err.details as Array<{ path: string }>).some((d) => d.path === path), `${what}: ${JSON.stringify(err.details)}`);
    }
  });

  test('malformed JSON → 400 INVALID_INPUT; a wrong content type → 415; an oversized body → 413', async () => {
    const h = { authorization: `Bearer ${SECRET}` };
    const bad = await fetch(`${base}/admin/stages`, { method: 'POST', headers: { ...h, 'content-type': 'application/json' }, body: '{"name":' });
    assert.equal(bad.status, 400);
    assert.equal((await errorOf(bad)).code, 'INVALID_INPUT');
    const xml = await fetch(`${base}/admin/stages`, { method: 'POST', headers: { ...h, 'content-type': 'application/xml' }, body: '<a/>' });
    assert.equal(xml.status, 415);
    assert.equal((await errorOf(xml)).code, 'UNSUPPORTED_MEDIA_TYPE');
    const big = await fetch(`${base}/admin/stages`, {
      method: 'POST',
      headers: { ...h, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'x', tags: { pad: 'y'.repeat(200_000) } }),
    });
    assert.equal(big.status, 413);
    assert.equal((await errorOf(big)).code, 'PAYLOAD_TOO_LARGE');
  });

  test('an invalid stage id in the path → 400 INVALID_INPUT', async () => {
    const res = await api.get('bad%20id');
    assert.equal(res.status, 400);
    assert.equal((await errorOf(res)).code, 'INVALID_INPUT');
  });

  test('Fastify’s and Node’s own refusals have the one shape: over-long path parameter 414, malformed URL 400, header fields too large 431', async () => {
    const long = await fetch(`${base}/stages/${'a'.repeat(300)}/whep`, { method: 'POST' });
    assert.equal(long.status, 414);
    assert.equal((await errorOf(long)).code, 'URI_TOO_LONG');
    const badUrl = await fetch(`${base}/stages/%E0%A4%A/whep`, { method: 'POST' });
    assert.equal(badUrl.status, 400);
    assert.equal((await errorOf(badUrl)).code, 'INVALID_INPUT');
    const raw = await rawRequest(Number(new URL(base).port), oversizedHeaderRequest());
    assert.match(raw, /^HTTP\/1\.1 431 /);
    assert.deepEqual(bodyOf(raw), { error: { code: 'HEADERS_TOO_LARGE', message: 'request header fields too large' } });
  });

  test('an unknown route → 404 JSON error', async () => {
    const res = await fetch(`${base}/nope`);
    assert.equal(res.status, 404);
    assert.equal((await errorOf(res)).code, 'NOT_FOUND');
  });
});
