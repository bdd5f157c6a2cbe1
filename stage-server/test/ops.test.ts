/** What orchestrators and scrapers see: liveness vs readiness (draining), METRICS_TOKEN, counters named *_total. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IdleRoom, type Room } from '../src/services/room.js';
import { admin, startInProcess, tempDir } from './helpers.js';

const METRICS_TOKEN = 'stage-metrics-token-0123456789';

test('/ready is 200 once the stages are loaded and 503 "draining" while it stops; /health stays 200 meanwhile', async (t) => {
  const dir = await tempDir();
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const { server, base } = await startInProcess(
    { DATA_DIR: dir.path },
    {
      roomFactory: () => (stage) => {
        const idle = new IdleRoom(stage);
        const room: Room = { stats: () => idle.stats(), handleHttp: () => idle.handleHttp(), close: () => held };
        return room;
      },
    },
  );
  t.after(async () => {
    release();
    await server.stop();
    await dir.remove();
  });
  assert.equal((await fetch(`${base}/ready`)).status, 200);
  assert.equal((await admin(base).create({ name: 'held' })).status, 201);
  const stopping = server.stop(); // the room's close is held: the server drains
  const r = await fetch(`${base}/ready`);
  assert.equal(r.status, 503);
  const body = (await r.json()) as { checks: { state: { ok: boolean; detail: string } } };
  assert.match(body.checks.state.detail, /draining/);
  assert.equal((await fetch(`${base}/health`)).status, 200);
  release();
  await stopping;
});

test('METRICS_TOKEN: /stats and /metrics need the bearer (missing or wrong → 401 JSON); /health and /ready stay open', async (t) => {
  const dir = await tempDir();
  const { server, base } = await startInProcess({ DATA_DIR: dir.path, METRICS_TOKEN });
  t.after(async () => {
    await server.stop();
    await dir.remove();
  });
  for (const path of ['/stats', '/metrics']) {
    for (const headers of [{}, { authorization: 'Bearer nope-nope-nope' }, { authorization: METRICS_TOKEN }] as Record<string, string>[]) {
      const r = await fetch(base + path, { headers });
      assert.equal(r.status, 401, `${path} ${JSON.stringify(headers)}`);
      assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'UNAUTHORIZED');
    }
    assert.equal((await fetch(base + path, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).status, 200, path);
  }
  assert.equal((await fetch(`${base}/health`)).status, 200);
  assert.equal((await fetch(`${base}/ready`)).status, 200);
});

test('/metrics: every counter is named *_total and every *_total is a counter', async (t) => {
  const dir = await tempDir();
  const { server, base } = await startInProcess({ DATA_DIR: dir.path });
  t.after(async () => {
    await server.stop();
    await dir.remove();
  });
  assert.equal((await admin(base).create({ name: 'one' })).status, 201);
  const text = await (await fetch(`${base}/metrics`)).text();
  const types = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].filter((m) => !/_(process|nodejs)_/.test(m[1]!) && !m[1]!.startsWith('stagecast_stage_server_'));
  assert.ok(types.length > 5);
  for (const [, name, type] of types) assert.equal(type === 'counter', name!.endsWith('_total'), `${name} is a ${type}`);
});
