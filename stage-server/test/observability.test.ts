import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CreateStageResponseSchema, HealthResponseSchema, StageServerStatsResponseSchema } from '@stagecast/protocol';
import { IdleRoom, type Room } from '../src/services/room.js';
import { admin, startInProcess, tempDir } from './helpers.js';

test('GET /health reports ok with the protocol shape, without credentials', async (t) => {
  const dir = await tempDir();
  const { server, base } = await startInProcess({ DATA_DIR: dir.path });
  t.after(async () => {
    await server.stop();
    await dir.remove();
  });
  const res = await fetch(`${base}/health`);
  assert.equal(res.status, 200);
  const h = HealthResponseSchema.parse(await res.json());
  assert.equal(h.service, 'stage-server');
  assert.equal(h.checks.stages?.ok, true);
});

test('GET /stats and /metrics report every stage: zeros with no media, and the room’s numbers labelled by stage id', async (t) => {
  const dir = await tempDir();
  const closed: string[] = [];
  // A room that reports fixed media numbers for one named stage, to prove they reach /stats and /metrics.
  const { server, base } = await startInProcess(
    { DATA_DIR: dir.path },
    {
      roomFactory: () => (stage) => {
        const idle = new IdleRoom(stage);
        const room: Room = {
          stats: () => ({
            ...idle.stats(),
            ...(stage.stageId === busyId
              ? { publisher: { state: 'connected' as const, participantId: 'pub1' }, viewers: 3, bitrateBps: 2_500_000, packetsReceived: 1234, keyframesReceived: 7, packetsLost: 2, publisherHandovers: 3 }
              : {}),
          }),
          handleHttp: () => idle.handleHttp(),
          close: async () => void closed.push(stage.stageId),
        };
        return room;
      },
    },
  );
  let busyId = '';
  t.after(async () => {
    await server.stop();
    await dir.remove();
  });
  const api = admin(base);
  const quiet = CreateStageResponseSchema.parse(await (await api.create()).json()).stage;
  busyId = CreateStageResponseSchema.parse(await (await api.create()).json()).stage.stageId;

  const stats = StageServerStatsResponseSchema.parse(await (await fetch(`${base}/stats`)).json());
  assert.deepEqual(stats.totals, { stages: 2, publishers: 1, viewers: 3 });
  const q = stats.stages.find((s) => s.stageId === quiet.stageId)!;
  assert.equal(q.publisher.state, 'offline');
  assert.equal(q.viewers + q.packetsReceived + q.bitrateBps + q.keyframesReceived + q.packetsLost, 0);
  const b = stats.stages.find((s) => s.stageId === busyId)!;
  assert.equal(b.packetsReceived, 1234);

  const m = await fetch(`${base}/metrics`);
  assert.equal(m.status, 200);
  assert.match(m.headers.get('content-type') ?? '', /text\/plain/);
  const text = await m.text();
  assert.match(text, /^stagecast_stages 2$/m);
  assert.match(text, new RegExp(`^stagecast_stage_viewers\\{stage_id="${busyId}"\\} 3$`, 'm'));
  assert.match(text, new RegExp(`^stagecast_stage_publisher_connected\\{stage_id="${busyId}"\\} 1$`, 'm'));
  assert.match(text, new RegExp(`^stagecast_stage_bitrate_bps\\{stage_id="${busyId}"\\} 2500000$`, 'm'));
  assert.match(text, new RegExp(`^stagecast_stage_packets_received_total\\{stage_id="${busyId}"\\} 1234$`, 'm'));
  assert.match(text, new RegExp(`^stagecast_stage_keyframes_received_total\\{stage_id="${busyId}"\\} 7$`, 'm'));
  assert.match(text, new RegExp(`^stagecast_stage_packets_lost_total\\{stage_id="${busyId}"\\} 2$`, 'm'));
  assert.match(text, new RegExp(`^stagecast_stage_publisher_handovers_total\\{stage_id="${busyId}"\\} 3$`, 'm'));
  assert.match(text, new RegExp(`^stagecast_stage_viewers\\{stage_id="${quiet.stageId}"\\} 0$`, 'm'));
  assert.match(text, /^stagecast_stage_server_process_cpu_seconds_total /m);

  // Deleting a stage closes its room and removes its series.
  assert.equal((await api.delete(busyId)).status, 204);
  assert.deepEqual(closed, [busyId]);
  const after = await (await fetch(`${base}/metrics`)).text();
  assert.doesNotMatch(after, new RegExp(busyId));
  assert.match(after, /^stagecast_stages 1$/m);
});
