/**
 * StageAssignmentService over a real SQLite file, with the real registry and event bus: what is stored and what is
 * announced, in which order, when stages are created, servers drain, die, lose their socket, and legs connect.
 */
import { after, afterEach, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { localStageArn, type ServerId, type ServerMessage, type StageArn, type StageId } from '@stagecast/protocol';
import { createLogger } from '../src/logger.js';
import { Metrics } from '../src/metrics.js';
import { EventBus } from '../src/services/EventBus.js';
import { MediaServerRegistry } from '../src/services/MediaServerRegistry.js';
import { StageAssignmentService } from '../src/services/StageAssignmentService.js';
import { SqliteStore } from '../src/store/sqlite.js';
import { LogCapture } from './helpers/api.js';

const HB = 1000;
const T0 = 1_770_000_000_000;

interface Rig {
  dir: string;
  store: SqliteStore;
  bus: EventBus;
  registry: MediaServerRegistry;
  service: StageAssignmentService;
  metrics: Metrics;
  messages: ServerMessage[];
  logs: LogCapture;
  clock: { now: number };
}
let rig: Rig;
const dirs: string[] = [];

beforeEach(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sc-assign-'));
  dirs.push(dir);
  const store = new SqliteStore(dir);
  const bus = new EventBus();
  const logs = new LogCapture();
  const log = createLogger('info', logs);
  const clock = { now: T0 };
  const now = () => clock.now;
  const metrics = new Metrics(store);
  const registry = new MediaServerRegistry({ store, bus, log, heartbeatIntervalMs: HB, now });
  const service = new StageAssignmentService({ store, bus, registry, log, metrics, heartbeatIntervalMs: HB, now });
  const messages: ServerMessage[] = [];
  bus.subscribe((m) => messages.push(m));
  await service.start();
  rig = { dir, store, bus, registry, service, metrics, messages, logs, clock };
});
afterEach(async () => {
  await rig.service.stop();
  rig.store.close();
});
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const sid = (s: string) => s as ServerId;

/** A stage as the scaler records and announces it. */
async function createStage(n: number): Promise<StageArn> {
  const arn = localStageArn(`st${n}`);
  await rig.store.insertStage({
    arn,
    id: `st${n}` as StageId,
    name: `st${n}`,
    capacity: 10,
    state: 'active',
    whipUrl: 'http://127.0.0.1:1/whip',
    playback: { type: 'whep', url: 'http://127.0.0.1:1/whep' },
    tags: {},
    createdAt: T0 + n,
    emptySince: T0,
  });
  rig.bus.publish({ type: 'stage_created', data: { stageArn: arn, timestamp: new Date(rig.clock.now).toISOString() } });
  await rig.service.settled();
  return arn;
}

async function register(id: string, extra: { maxLegs?: number } = {}) {
  await rig.registry.register({ serverId: sid(id), ipAddress: '127.0.0.1', port: 4000 + id.charCodeAt(0), ...extra });
}

async function owner(arn: StageArn): Promise<[string | null, string | null]> {
  const st = await rig.store.getStage(arn);
  return [st!.mediaServerId, st!.previousMediaServerId];
}

const assigned = (arn: StageArn) =>
  rig.messages.flatMap((m) => (m.type === 'stage_assigned' && m.data.stageArn === arn ? [[m.data.serverId, m.data.previousServerId ?? null]] : []));
const logEvents = (msg: string) => rig.logs.lines().filter((l) => l.msg === msg);

test('a new stage is assigned to a live server and stage_assigned follows stage_created', async () => {
  await register('a');
  const arn = await createStage(1);
  assert.deepEqual(await owner(arn), ['a', null]);
  const types = rig.messages.filter((m) => 'stageArn' in m.data && m.data.stageArn === arn).map((m) => m.type);
  assert.deepEqual(types, ['stage_created', 'stage_assigned']);
  assert.deepEqual(assigned(arn), [['a', null]]);
  assert.equal(logEvents('stage.assigned').length, 1);
});

test('with no server the stage has no owner; it is assigned as soon as one registers', async () => {
  const arn = await createStage(1);
  assert.deepEqual(await owner(arn), [null, null]);
  assert.deepEqual(assigned(arn), [], 'nothing to announce while no server can take it');
  await register('a');
  assert.deepEqual(await owner(arn), ['a', null]);
  assert.deepEqual(assigned(arn), [['a', null]]);
});

test('a server that registers takes half the stages (rebalance), each handed over make-before-break', async () => {
  await register('a');
  const arns = [await createStage(1), await createStage(2), await createStage(3), await createStage(4)];
  await register('b');
  const owners = await Promise.all(arns.map(owner));
  assert.equal(owners.filter(([o]) => o === 'a').length, 2);
  assert.equal(owners.filter(([o]) => o === 'b').length, 2);
  for (const [o, p] of owners) assert.equal(p, o === 'b' ? 'a' : null, 'a stage moved to b keeps a as previous');
  const servers = await rig.service.servers();
  assert.deepEqual(
    servers.map((s) => [s.server.id, s.assignedStages]),
    [['a', 4], ['b', 2]],
    'a still holds the legs it hands over',
  );
  const metrics = await rig.metrics.registry.getSingleMetricAsString('stagecast_stage_handovers_total');
  assert.match(metrics, /reason="rebalance"} 2/);
});

test('drain: stages move to the other server; the handover completes when its heartbeat reports the leg connected', async () => {
  await register('a');
  await register('b');
  const arn = await createStage(1); // a and b tie at 0: a (by id)
  assert.deepEqual(await owner(arn), ['a', null]);
  await rig.registry.heartbeat({ serverId: sid('a'), draining: true, legs: [{ stageArn: arn, state: 'connected' }] });
  assert.deepEqual(await owner(arn), ['b', 'a']);
  // b's leg is still connecting: the handover goes on.
  await rig.registry.heartbeat({ serverId: sid('b'), legs: [{ stageArn: arn, state: 'connecting' }] });
  assert.deepEqual(await owner(arn), ['b', 'a']);
  rig.clock.now += 500;
  await rig.registry.heartbeat({ serverId: sid('b'), legs: [{ stageArn: arn, state: 'connected' }] });
  assert.deepEqual(await owner(arn), ['b', null]);
  assert.deepEqual(assigned(arn), [['a', null], ['b', 'a'], ['b', null]]);
  const done = logEvents('stage.handover_completed');
  assert.equal(done.length, 1);
  assert.equal(done[0]!.reason, 'handover_completed');
  assert.equal(done[0]!.tookMs, 500);
  // A draining server gets no new stage.
  const arn2 = await createStage(2);
  assert.deepEqual(await owner(arn2), ['b', null]);
});

test('a handover not completed within 3 heartbeat intervals is completed anyway', async () => {
  await register('a');
  await register('b');
  const arn = await createStage(1);
  await rig.registry.socketOpened(sid('a'));
  await rig.registry.socketClosed(sid('a'));
  assert.deepEqual(await owner(arn), ['b', 'a'], 'socket closed: moved, a may still be alive');
  rig.clock.now += 3 * HB - 1;
  await rig.service.replan(false);
  assert.deepEqual(await owner(arn), ['b', 'a']);
  rig.clock.now += 1;
  await rig.service.replan(false);
  assert.deepEqual(await owner(arn), ['b', null]);
  assert.equal(logEvents('stage.handover_completed')[0]!.reason, 'handover_timeout');
});

test('a server gone offline (missed heartbeats) loses its stages with no previous; socket reopening rebalances back', async () => {
  await register('a');
  await register('b');
  const arn1 = await createStage(1);
  const arn2 = await createStage(2);
  assert.deepEqual([await owner(arn1), await owner(arn2)], [['a', null], ['b', null]]);
  rig.clock.now += 2 * HB;
  await rig.registry.heartbeat({ serverId: sid('b') });
  rig.clock.now += 2 * HB; // a silent for 4 intervals, b for 2
  await rig.registry.sweep();
  assert.deepEqual(await owner(arn1), ['b', null], 'a is known dead: nobody to hand over from');
  assert.equal(logEvents('stage.assigned').at(-1)!.reason, 'offline');
  // a comes back (heartbeat from an offline server): it takes one stage again.
  await rig.registry.heartbeat({ serverId: sid('a') });
  const owners = [await owner(arn1), await owner(arn2)].map(([o]) => o).sort();
  assert.deepEqual(owners, ['a', 'b']);
});

test('the single server owns everything; its socket closing leaves the stages with it as previous, reopening gives them back', async () => {
  await register('a');
  const arns = [await createStage(1), await createStage(2)];
  await rig.registry.socketOpened(sid('a'));
  await rig.registry.socketClosed(sid('a'));
  for (const arn of arns) assert.deepEqual(await owner(arn), [null, 'a']);
  await rig.registry.socketOpened(sid('a'));
  for (const arn of arns) assert.deepEqual(await owner(arn), ['a', null]);
});

test('maxLegs from register caps a server: the rest go to the other', async () => {
  await register('a', { maxLegs: 1 });
  await register('b');
  const arns = [await createStage(1), await createStage(2), await createStage(3)];
  const owners = await Promise.all(arns.map(async (a) => (await owner(a))[0]));
  assert.deepEqual(owners, ['a', 'b', 'b']);
});

test('origin: the server reporting ingest broadcaster, announced on change and cleared when its socket closes', async () => {
  await register('a');
  await register('b');
  await rig.registry.socketOpened(sid('a'));
  await rig.registry.heartbeat({ serverId: sid('a'), ingest: 'broadcaster' });
  await rig.registry.heartbeat({ serverId: sid('b'), ingest: 'relay' });
  await rig.registry.heartbeat({ serverId: sid('a'), ingest: 'broadcaster' });
  const origins = () => rig.messages.flatMap((m) => (m.type === 'origin_changed' ? [m.data.origin] : []));
  assert.deepEqual(origins(), [{ serverId: 'a', url: 'http://127.0.0.1:4097' }], 'announced once');
  assert.deepEqual(rig.registry.origin, { serverId: 'a', url: 'http://127.0.0.1:4097' });
  rig.clock.now += 10;
  await rig.registry.heartbeat({ serverId: sid('b'), ingest: 'broadcaster' });
  assert.equal(rig.registry.origin?.serverId, 'b', 'the most recent broadcaster is the origin');
  await rig.registry.heartbeat({ serverId: sid('b'), ingest: 'none' });
  assert.equal(rig.registry.origin?.serverId, 'a');
  await rig.registry.socketClosed(sid('a'));
  assert.equal(rig.registry.origin, null);
  assert.deepEqual(origins().map((o) => o?.serverId ?? null), ['a', 'b', 'a', null]);
});

test('a server that stops draining is ready again: the stages are rebalanced onto it', async () => {
  await register('a');
  await register('b');
  const arns = [await createStage(1), await createStage(2)];
  await rig.registry.heartbeat({ serverId: sid('a'), draining: true });
  for (const arn of arns) assert.equal((await owner(arn))[0], 'b');
  await rig.registry.heartbeat({ serverId: sid('b'), legs: arns.map((stageArn) => ({ stageArn, state: 'connected' as const })) });
  await rig.registry.heartbeat({ serverId: sid('a'), draining: false });
  const owners = (await Promise.all(arns.map(owner))).map(([o]) => o).sort();
  assert.deepEqual(owners, ['a', 'b']);
});
