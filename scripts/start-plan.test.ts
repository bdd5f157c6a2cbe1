/** `npm start`'s plan of processes (scripts/start-plan.ts): counts, ports, each process's environment. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planProcesses, PlanError, processCount } from './start-plan.js';

const ctx = { secrets: { API_SECRET_KEY: 'k', MEDIA_SERVER_SECRET: 'm', STAGE_SERVER_SECRET: 's', INGEST_TOKEN: 'i', VIEWER_API_KEY: 'v' }, dataDir: '/d', webDist: '/w' };

test('by default: one stage server on 3002, the API Server on 3000, one Media Server on 3001, started in that order; OBS gets the front door', () => {
  const p = planProcesses({}, 8, ctx);
  assert.deepEqual(
    p.groups.map((g) => g.map((a) => `${a.name}:${a.port}`)),
    [['stage-server:3002'], ['api-server:3000'], ['media-server:3001']],
  );
  const [[stage], [api], [media]] = p.groups as [[(typeof p.groups)[0][0]], [(typeof p.groups)[0][0]], [(typeof p.groups)[0][0]]];
  assert.equal(p.whip, 'http://127.0.0.1:3000/whip', 'the API Server front door');
  assert.equal(api.env.STAGE_SERVER_URLS, 'http://127.0.0.1:3002');
  assert.equal(api.env.MEDIA_SERVER_URL, 'http://127.0.0.1:3001');
  assert.equal(api.env.WEB_DIST_DIR, '/w');
  assert.equal(stage.env.PUBLIC_URL, 'http://127.0.0.1:3002');
  assert.equal(stage.env.DATA_DIR, '/d', 'a single stage server keeps its stages where it always has');
  assert.equal(media.env.PUBLIC_URL, 'http://127.0.0.1:3001');
  assert.equal(media.env.SERVER_ID, 'media-1');
  assert.equal(media.env.API_SECRET_KEY, '', 'the operator key is kept off the Media Server');
  for (const a of [stage, api, media]) {
    assert.equal(a.env.API_SERVER_URL, 'http://127.0.0.1:3000');
    assert.equal(a.env.MEDIA_SERVER_SECRET, 'm');
    assert.equal(a.url, `http://127.0.0.1:${a.port}`);
  }
});

test('MEDIA_SERVERS=3 STAGE_SERVERS=2: consecutive ports, the stage servers right after the Media Servers; each with its own PUBLIC_URL, SERVER_ID and stage file; the API Server lists every stage server', () => {
  const p = planProcesses({ MEDIA_SERVERS: '3', STAGE_SERVERS: '2', PUBLIC_HOST: '192.168.1.20' }, 8, ctx);
  const [stages, [api], media] = p.groups as [typeof p.groups[0], typeof p.groups[0], typeof p.groups[0]];
  assert.deepEqual(media.map((a) => [a.name, a.port, a.env.SERVER_ID, a.env.PUBLIC_URL]), [
    ['media-server-1', 3001, 'media-1', 'http://192.168.1.20:3001'],
    ['media-server-2', 3002, 'media-2', 'http://192.168.1.20:3002'],
    ['media-server-3', 3003, 'media-3', 'http://192.168.1.20:3003'],
  ]);
  assert.deepEqual(stages.map((a) => [a.name, a.port, a.env.PUBLIC_URL, a.env.DATA_DIR]), [
    ['stage-server-1', 3004, 'http://192.168.1.20:3004', '/d'],
    ['stage-server-2', 3005, 'http://192.168.1.20:3005', '/d/stage-server-2'],
  ]);
  assert.equal(api!.env.STAGE_SERVER_URLS, 'http://192.168.1.20:3004,http://192.168.1.20:3005');
  assert.deepEqual(p.mediaServers, ['http://192.168.1.20:3001', 'http://192.168.1.20:3002', 'http://192.168.1.20:3003']);
  assert.deepEqual(p.stageServers, ['http://192.168.1.20:3004', 'http://192.168.1.20:3005']);
  assert.equal(p.whip, 'http://192.168.1.20:3000/whip');
});

test('auto = one per core; explicit ports are honoured; clashing or bad values are refused naming the variable', () => {
  const p = planProcesses({ MEDIA_SERVERS: 'auto', STAGE_SERVERS: 'AUTO', API_PORT: '8000', MEDIA_PORT: '9000', STAGE_PORT: '9100' }, 4, ctx);
  assert.deepEqual(p.groups[2]!.map((a) => a.port), [9000, 9001, 9002, 9003]);
  assert.deepEqual(p.groups[0]!.map((a) => a.port), [9100, 9101, 9102, 9103]);
  assert.equal(p.groups[1]![0]!.port, 8000);

  assert.equal(processCount('MEDIA_SERVERS', undefined, 4), 1);
  assert.equal(processCount('MEDIA_SERVERS', '', 4), 1);
  assert.equal(processCount('MEDIA_SERVERS', 'auto', 1), 1);
  assert.equal(processCount('MEDIA_SERVERS', 'auto', 512), 64, 'auto is capped');
  for (const bad of ['0', '-1', '1.5', 'two', '65']) assert.throws(() => processCount('MEDIA_SERVERS', bad, 4), (e: Error) => e instanceof PlanError && e.message.startsWith(`MEDIA_SERVERS=${bad}: must be`));
  assert.throws(() => planProcesses({ MEDIA_SERVERS: '2', STAGE_PORT: '3002' }, 4, ctx), /port 3002 is planned twice/);
  assert.throws(() => planProcesses({ API_PORT: '3001' }, 4, ctx), /port 3001 is planned twice/);
  assert.throws(() => planProcesses({ STAGE_PORT: '70000' }, 4, ctx), /STAGE_PORT=70000: must be a port number/);
  assert.throws(() => planProcesses({ MEDIA_PORT: '65535', MEDIA_SERVERS: '2' }, 4, ctx), /ports run past 65535/);
});
