import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createServiceLogger } from '../src/index.js';

test('every app logger redacts tokens, secrets, Authorization and the API / Media Server secret headers', () => {
  const lines: string[] = [];
  const destination = new Writable({ write: (chunk, _enc, done) => (lines.push(chunk.toString()), done()) });
  const log = createServiceLogger('stage-server', 'info', { base: { serverId: 'ms-1' }, destination });
  log.info(
    {
      token: 'tok-1',
      secret: 'sec-1',
      stage: { token: 'tok-2' },
      headers: { authorization: 'Bearer tok-3', 'x-api-key': 'key-1', 'x-media-server-secret': 'sec-2' },
      req: { headers: { authorization: 'Bearer tok-4', 'x-api-key': 'key-2' } },
      kept: 'visible',
    },
    'event.name',
  );
  assert.equal(lines.length, 1);
  for (const leaked of ['tok-1', 'tok-2', 'tok-3', 'tok-4', 'sec-1', 'sec-2', 'key-1', 'key-2']) assert.ok(!lines[0]!.includes(leaked), `${leaked} leaked: ${lines[0]}`);
  const line = JSON.parse(lines[0]!);
  assert.equal(line.service, 'stage-server');
  assert.equal(line.serverId, 'ms-1');
  assert.equal(line.kept, 'visible');
  assert.equal(line.msg, 'event.name');
});
