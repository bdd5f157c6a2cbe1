/** The one error shape over a real port: our errors, Fastify's own (FST_ERR_*), unknown routes, Node's 431/400, closing. */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { CapacityExceeded, Unauthorized } from '@stagecast/protocol';
import { httpErrorOptions, registerErrorHandling } from '../src/index.js';
import { bodyOf, rawRequest } from './raw-http.js';

async function withApp(fn: (url: string, app: FastifyInstance) => Promise<void>): Promise<void> {
  const app = Fastify({ bodyLimit: 1024, ...httpErrorOptions() });
  registerErrorHandling(app);
  app.post('/things', async (req) => ({ got: req.body }));
  app.get('/things/:id', async (req) => ({ id: (req.params as { id: string }).id }));
  app.get('/secret', async () => {
    throw new Unauthorized();
  });
  app.get('/full', async () => {
    throw new CapacityExceeded('every stage is full', 7);
  });
  app.get('/bug', async () => {
    throw new TypeError('cannot read x of undefined');
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  try {
    await fn(`http://127.0.0.1:${(app.server.address() as { port: number }).port}`, app);
  } finally {
    await app.close();
  }
}

const shape = async (res: Response) => {
  const body = (await res.json()) as { error: { code: string; message: string } };
  assert.equal(typeof body.error.message, 'string');
  assert.deepEqual(Object.keys(body), ['error']);
  return { status: res.status, code: body.error.code };
};

test('every refusal has the shape {error:{code,message}}: typed errors, Fastify’s FST_ERR_*, unknown routes, internal errors', async () => {
  await withApp(async (url) => {
    const json = { 'content-type': 'application/json' };
    const cases: [string, Promise<Response>, number, string][] = [
      ['bad JSON', fetch(`${url}/things`, { method: 'POST', headers: json, body: '{"a":' }), 400, 'INVALID_INPUT'],
      ['empty JSON body', fetch(`${url}/things`, { method: 'POST', headers: json, body: '' }), 400, 'INVALID_INPUT'],
      ['body too large', fetch(`${url}/things`, { method: 'POST', headers: json, body: JSON.stringify({ a: 'x'.repeat(2000) }) }), 413, 'PAYLOAD_TOO_LARGE'],
      ['unsupported content type', fetch(`${url}/things`, { method: 'POST', headers: { 'content-type': 'application/x-nope' }, body: 'x' }), 415, 'UNSUPPORTED_MEDIA_TYPE'],
      ['over-long path parameter', fetch(`${url}/things/${'a'.repeat(500)}`), 414, 'URI_TOO_LONG'],
      ['malformed URL', fetch(`${url}/things/%E0%A4%A`), 400, 'INVALID_INPUT'],
      ['unknown route', fetch(`${url}/nowhere`), 404, 'NOT_FOUND'],
      ['typed error', fetch(`${url}/secret`), 401, 'UNAUTHORIZED'],
      ['typed 503', fetch(`${url}/full`), 503, 'CAPACITY_EXCEEDED'],
      ['a bug', fetch(`${url}/bug`), 500, 'INTERNAL'],
    ];
    for (const [what, res, status, code] of cases) assert.deepEqual(await shape(await res), { status, code }, what);
    const full = await fetch(`${url}/full`);
    assert.equal(full.headers.get('retry-after'), '7');
    assert.equal((await fetch(`${url}/secret`)).headers.get('www-authenticate'), 'Bearer');
    const bug = (await (await fetch(`${url}/bug`)).json()) as { error: { message: string } };
    assert.equal(bug.error.message, 'internal error', 'an internal error does not leak its message');
  });
});

test('Node’s own refusals, answered before Fastify sees a request, have the shape too: 431 header fields too large, 400 unparsable', async () => {
  await withApp(async (url) => {
    const port = Number(new URL(url).port);
    const big = await rawRequest(port, `GET /things/1 HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    assert.match(big, /^HTTP\/1\.1 431 /);
    assert.match(big, /content-type: application\/json/i);
    assert.deepEqual(bodyOf(big), { error: { code: 'HEADERS_TOO_LARGE', message: 'request header fields too large' } });
    const garbage = await rawRequest(port, 'NOT HTTP AT ALL\r\n\r\n');
    assert.match(garbage, /^HTTP\/1\.1 400 /);
    assert.equal((bodyOf(garbage) as { error: { code: string } }).error.code, 'INVALID_INPUT');
  });
});

test('a request that arrives while the server closes gets 503 in the shape (not Fastify’s own body)', async () => {
  const app = Fastify({ ...httpErrorOptions(), forceCloseConnections: false });
  registerErrorHandling(app);
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  app.get('/slow', async () => {
    await held;
    return { ok: true };
  });
  app.get('/fast', async () => ({ ok: true }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  const port = (app.server.address() as { port: number }).port;
  // A keep-alive connection stays open while the server closes; its next request is answered by the closing server.
  const s = connect(port, '127.0.0.1');
  await new Promise<void>((r) => s.once('connect', () => r()));
  let out = '';
  s.on('data', (d) => (out += d.toString()));
  s.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
  await new Promise((r) => setTimeout(r, 50));
  const closing = app.close();
  await new Promise((r) => setTimeout(r, 50));
  s.write('GET /fast HTTP/1.1\r\nHost: x\r\n\r\n');
  release();
  await closing;
  await new Promise((r) => setTimeout(r, 50));
  s.destroy();
  const second = out.slice(out.indexOf('HTTP/1.1', 10));
  assert.match(second, /^HTTP\/1\.1 503 /, out);
  assert.match(second, /"code":"CAPACITY_EXCEEDED"/);
});
