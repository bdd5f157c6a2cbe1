/** The stage pool under load over real HTTP, a real SQLite file and a real stage server (or its fake admin API). */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { ScalingEventsResponseSchema, StageListResponseSchema, ViewerJoinResponseSchema, type ServerMessage, type ViewerJoinResponse } from '@stagecast/protocol';
import { apiKey, call, SECRETS, startApi, type TestApi } from './helpers/api.js';
import { startStageBackend, type StageBackend } from './helpers/stage-backend.js';
import { waitFor } from './helpers/wait.js';
import { connectMediaSocket } from './helpers/ws-client.js';

let stage: StageBackend;
before(async () => {
  stage = await startStageBackend(SECRETS.stage);
});
after(async () => {
  await stage?.close();
});

function joinOnce(agent: Agent, url: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/api/viewers/join`, { method: 'POST', agent, headers: { ...apiKey, 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown }));
    });
    req.on('error', reject);
    req.end('{}');
  });
}

async function stages(api: TestApi) {
  return StageListResponseSchema.parse((await call(`${api.url}/api/stages`, { headers: apiKey })).body).stages;
}
async function lastEventId(api: TestApi): Promise<number> {
  return (await events(api)).at(-1)?.id ?? 0;
}
async function events(api: TestApi) {
  return ScalingEventsResponseSchema.parse((await call(`${api.url}/api/scaling/events?limit=1000`, { headers: apiKey })).body).events.reverse();
}

/** The WebSocket saw exactly the scaling history since it connected, in order, with seq 1, 2, 3, … */
async function assertAnnouncementsMatch(api: TestApi, messages: ServerMessage[], afterEventId: number, existing: string[] = []): Promise<void> {
  const stageMsgs = messages.filter((m) => m.type === 'stage_created' || m.type === 'stage_deleted');
  assert.deepEqual(
    messages.map((m) => m.seq),
    messages.map((_, i) => i + 1),
    'seq strictly increasing without gaps',
  );
  const ev = (await events(api)).filter((e) => e.id > afterEventId);
  const created = ev.filter((e) => e.action === 'create' || e.action === 'adopt').map((e) => e.stageArn);
  const deleted = ev.filter((e) => e.action === 'delete' || e.action === 'drop').map((e) => e.stageArn);
  assert.deepEqual(stageMsgs.filter((m) => m.type === 'stage_created').map((m) => m.data.stageArn), created);
  assert.deepEqual(stageMsgs.filter((m) => m.type === 'stage_deleted').map((m) => m.data.stageArn), deleted);
  // Each stage is announced created before it is announced deleted.
  const seen = new Set<string>(existing);
  for (const m of stageMsgs) {
    if (m.type === 'stage_created') seen.add(m.data.stageArn);
    else assert.ok(seen.has(m.data.stageArn), `deleted before created: ${m.data.stageArn}`);
  }
}

test('1,000 concurrent joins at capacity 50 → exactly 21 stages (20 full + the spare), none over capacity, distinct seats, announcements in order', async (t) => {
  t.diagnostic(`stage backend: ${stage.kind}`);
  const api = await startApi({ stageUrl: stage.url, env: { STAGE_CAPACITY: '50', STAGE_POOL_ID: 'load', MAX_STAGES: '100' }, logLevel: 'warn' });
  const agent = new Agent({ keepAlive: true, maxSockets: 100 });
  // The pool settles at MIN_STAGES before the Media Server socket connects: it sees everything after.
  await waitFor(async () => (await stages(api)).length === 1, { what: 'MIN_STAGES stage' });
  const socket = await connectMediaSocket(api.wsUrl);
  const since = await lastEventId(api);
  try {
    const results = await Promise.all(Array.from({ length: 1000 }, () => joinOnce(agent, api.url)));
    const bad = results.filter((r) => r.status !== 201);
    assert.equal(bad.length, 0, `failed joins: ${JSON.stringify(bad.slice(0, 3))}`);
    const joins: ViewerJoinResponse[] = results.map((r) => ViewerJoinResponseSchema.parse(r.body));
    assert.equal(new Set(joins.map((j) => j.viewerId)).size, 1000, 'every viewer has its own seat');

    const perStage = new Map<string, number>();
    for (const j of joins) perStage.set(j.stageArn, (perStage.get(j.stageArn) ?? 0) + 1);
    assert.ok([...perStage.values()].every((n) => n <= 50), 'no stage over capacity in the answers');

    const final = await waitFor(
      async () => {
        const s = await stages(api);
        return s.length === 21 && api.server.services.scaling.creatingCount === 0 ? s : undefined;
      },
      { timeoutMs: 10_000, what: '21 stages' },
    );
    assert.equal(final.filter((s) => s.viewers === 50).length, 20);
    assert.equal(final.filter((s) => s.viewers === 0).length, 1, 'one empty spare');
    assert.ok(final.every((s) => s.viewers <= s.capacity));
    for (const s of final) assert.equal(s.viewers, perStage.get(s.stageArn) ?? 0);
    assert.equal((await stage.list()).filter((s) => s.tags['stagecast:pool'] === 'load').length, 21, 'the stage server holds the same 21');

    await waitFor(() => socket.messages.filter((m) => m.type === 'stage_created').length === 20, { what: '20 stage_created' });
    await assertAnnouncementsMatch(api, socket.messages, since);
  } finally {
    socket.close();
    agent.destroy();
    await api.stop();
  }
});

test('a draining stage gets no new viewers', async () => {
  const api = await startApi({ stageUrl: stage.url, env: { STAGE_CAPACITY: '10', STAGE_POOL_ID: 'drain', MIN_STAGES: '2' }, logLevel: 'warn' });
  try {
    const [a, b] = await waitFor(async () => {
      const s = await stages(api);
      return s.length === 2 ? s : undefined;
    });
    // Take `a` out of rotation exactly as the scaler does before a delete.
    await api.server.services.store.setStageState(a!.stageArn, 'draining');
    const agent = new Agent({ keepAlive: true, maxSockets: 10 });
    try {
      const results = await Promise.all(Array.from({ length: 8 }, () => joinOnce(agent, api.url)));
      for (const r of results) {
        assert.equal(r.status, 201);
        assert.notEqual((r.body as ViewerJoinResponse).stageArn, a!.stageArn);
        assert.equal((r.body as ViewerJoinResponse).stageArn, b!.stageArn);
      }
    } finally {
      agent.destroy();
    }
  } finally {
    await api.stop();
  }
});

test('scale-down after the cooldown, never a stage with viewers, never below MIN_STAGES; stage_deleted announced in order', async () => {
  const api = await startApi({
    stageUrl: stage.url,
    env: { STAGE_CAPACITY: '5', STAGE_POOL_ID: 'down', MIN_STAGES: '2', SCALE_DOWN_COOLDOWN: '1' },
    logLevel: 'warn',
  });
  await waitFor(async () => (await stages(api)).length === 2, { what: 'MIN_STAGES' });
  const socket = await connectMediaSocket(api.wsUrl);
  const since = await lastEventId(api);
  const initial = (await stages(api)).map((s) => s.stageArn);
  const agent = new Agent({ keepAlive: true, maxSockets: 20 });
  try {
    const joins = (await Promise.all(Array.from({ length: 17 }, () => joinOnce(agent, api.url)))).map((r) => r.body as ViewerJoinResponse);
    // 17 viewers at 5 a stage → 4 stages (5, 5, 5, 2) + 1 empty spare.
    await waitFor(async () => (await stages(api)).length === 5 && api.server.services.scaling.creatingCount === 0, { what: '5 stages' });
    const keep = joins[0]!;
    for (const j of joins.slice(1)) assert.equal((await call(`${api.url}/api/viewers/${j.viewerId}`, { method: 'DELETE', headers: apiKey })).status, 204);

    // After the cooldown the empty stages go, down to MIN_STAGES (2): keep's stage and one empty spare.
    const after = await waitFor(
      async () => {
        const s = await stages(api);
        return s.length === 2 ? s : undefined;
      },
      { timeoutMs: 8000, what: 'scale-down to MIN_STAGES' },
    );
    assert.ok(after.some((s) => s.stageArn === keep.stageArn && s.viewers === 1), 'the stage with a viewer is kept');

    // It stays at MIN_STAGES: watch a further cooldown and a half (bounded polling, not a sleep).
    const until = Date.now() + 1500;
    while (Date.now() < until) {
      assert.equal((await stages(api)).length, 2);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal((await api.server.services.store.getViewer(keep.viewerId))?.stageArn, keep.stageArn);
    const live = new Set((await stage.list()).filter((s) => s.tags['stagecast:pool'] === 'down').map((s) => s.stageArn));
    assert.deepEqual(live, new Set(after.map((s) => s.stageArn)), 'deleted at the stage server too');
    await waitFor(() => socket.messages.filter((m) => m.type === 'stage_deleted').length === 3, { what: '3 stage_deleted' });
    await assertAnnouncementsMatch(api, socket.messages, since, initial);
    assert.deepEqual(
      socket.messages.map((m) => m.type),
      ['stage_created', 'stage_created', 'stage_created', 'stage_deleted', 'stage_deleted', 'stage_deleted'],
    );
  } finally {
    agent.destroy();
    socket.close();
    await api.stop();
  }
});
