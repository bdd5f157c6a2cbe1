/** The periodic reconciliation and the scaling actions never overlap, and a listing never drops a newer stage. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StageArn, StageId } from '@stagecast/protocol';
import { createLogger } from '../src/logger.js';
import { Metrics } from '../src/metrics.js';
import type { ProviderStage, ProviderStageSummary, StageProvider } from '../src/providers/provider.js';
import { EventBus } from '../src/services/EventBus.js';
import { reconcile } from '../src/services/reconcile.js';
import { StageAutoScalingService } from '../src/services/StageAutoScalingService.js';
import { SqliteStore } from '../src/store/sqlite.js';
import { waitFor } from './helpers/wait.js';

function deferred<T>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** Every createStage waits at the provider until the returned gate is resolved. */
function holdCreates(provider: GatedProvider) {
  const gate = deferred<void>();
  const realCreate = provider.createStage.bind(provider);
  provider.createStage = async (req) => {
    await gate.promise;
    return realCreate(req);
  };
  return gate;
}

/** A provider whose listings can be held open; records every call. */
class GatedProvider implements StageProvider {
  readonly kind = 'gated';
  readonly maxCallsPerSecond = 1000;
  readonly stages = new Map<StageArn, ProviderStage>();
  calls: string[] = [];
  listGate: ReturnType<typeof deferred<void>> | undefined;
  n = 0;
  async createStage(req: { name: string; tags: Record<string, string> }): Promise<ProviderStage> {
    this.calls.push('create');
    const id = `st${++this.n}`;
    const s: ProviderStage = {
      stageArn: `arn:stagecast:ivs:local:000000000000:stage/${id}` as StageArn,
      stageId: id as StageId,
      name: req.name,
      whipUrl: `http://127.0.0.1:1/whip/${id}`,
      playback: { type: 'ivs' },
      tags: req.tags,
      createdAt: Date.now(),
    };
    this.stages.set(s.stageArn, s);
    return s;
  }
  async deleteStage(arn: StageArn): Promise<void> {
    this.calls.push('delete');
    this.stages.delete(arn);
  }
  async listStages(): Promise<ProviderStageSummary[]> {
    this.calls.push('list');
    const snapshot = [...this.stages.values()];
    await this.listGate?.promise;
    return snapshot;
  }
  async health() {
    return { ok: true };
  }
}

function setup(minStages = 1, joinWaitMs = 5_000) {
  const dir = mkdtempSync(join(tmpdir(), 'sc-race-'));
  const store = new SqliteStore(dir);
  const provider = new GatedProvider();
  const log = createLogger('silent');
  const bus = new EventBus();
  const scaling = new StageAutoScalingService({
    store,
    provider,
    bus,
    log,
    metrics: new Metrics(store),
    config: {
      capacity: 2,
      minStages,
      maxStages: 10,
      scaleUpThreshold: 0.8,
      scaleDownCooldownMs: 0,
      tickMs: 60_000,
      joinWaitMs,
      reconcileIntervalMs: 3_600_000,
      poolId: 'race',
    },
  });
  return {
    store,
    provider,
    bus,
    log,
    scaling,
    async close() {
      await scaling.stop();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

test('reconcile: a stage recorded while the provider listing was on its way is kept, not dropped as lost', async () => {
  const t = setup(0);
  try {
    t.provider.listGate = deferred();
    const running = reconcile({ store: t.store, provider: t.provider, bus: t.bus, log: t.log, capacity: 2, now: Date.now });
    // A create lands (at the provider and in the store) after the listing's snapshot was taken.
    const created = await t.provider.createStage({ name: 'late', tags: {} });
    await t.store.insertStage({ arn: created.stageArn, id: created.stageId, name: created.name, capacity: 2, state: 'active', whipUrl: created.whipUrl, playback: created.playback, tags: {}, createdAt: created.createdAt, emptySince: Date.now() });
    t.provider.listGate.resolve();
    const r = await running;
    assert.deepEqual(r.dropped, []);
    assert.ok(await t.store.getStage(created.stageArn), 'the newer stage is still recorded');
  } finally {
    await t.close();
  }
});

test('reconcile: a stage recorded before the listing and missing from it is still dropped (lost at the provider)', async () => {
  const t = setup(0);
  try {
    const lost = await t.provider.createStage({ name: 'lost', tags: {} });
    await t.store.insertStage({ arn: lost.stageArn, id: lost.stageId, name: lost.name, capacity: 2, state: 'active', whipUrl: lost.whipUrl, playback: lost.playback, tags: {}, createdAt: lost.createdAt, emptySince: Date.now() });
    t.provider.stages.delete(lost.stageArn);
    const r = await reconcile({ store: t.store, provider: t.provider, bus: t.bus, log: t.log, capacity: 2, now: Date.now });
    assert.deepEqual(r.dropped, [lost.stageArn]);
  } finally {
    await t.close();
  }
});

test('scaling: no create starts while a periodic reconcile is listing; the held plan runs right after it', async () => {
  const t = setup(1);
  try {
    await t.scaling.start();
    await waitFor(async () => (await t.store.listStages()).length === 1, { what: 'MIN_STAGES stage' });
    t.provider.calls = [];
    t.provider.listGate = deferred();
    const reconciling = t.scaling.reconcileNow();
    await waitFor(() => t.provider.calls.includes('list'), { what: 'listing started' });
    // Fill the only stage: the planner now wants a new one.
    const now = Date.now();
    const first = (await t.store.listStages())[0]!;
    for (const id of ['v_aaaaaaaaaaaaaaaa', 'v_bbbbbbbbbbbbbbbb'])
      await t.store.reserveSeat({ id: id as never, userId: null, now }, { stageArn: first.arn });
    void t.scaling.plan();
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(t.provider.calls, ['list'], 'nothing but the listing while it runs');
    t.provider.listGate.resolve();
    await reconciling;
    await waitFor(() => t.provider.calls.includes('create'), { what: 'the held create' });
    assert.equal((await t.store.listStages()).length >= 1, true);
    assert.ok(await t.store.getStage(first.arn), 'the full stage was not dropped');
  } finally {
    await t.close();
  }
});

test('scaling: a periodic reconcile does not start while a create is in flight', async () => {
  const t = setup(1);
  const gate = holdCreates(t.provider);
  try {
    await t.scaling.start(); // reconciles, then plans the MIN_STAGES create, held at the provider
    await waitFor(() => t.scaling.creatingCount === 1, { what: 'create in flight' });
    t.provider.calls = [];
    await t.scaling.reconcileNow();
    assert.ok(!t.provider.calls.includes('list'), 'no listing while the create is in flight');
  } finally {
    gate.resolve();
    await t.close();
  }
});

test('scaling: a reconcile deferred by a create in flight runs once it lands, and no new action starts before it', async () => {
  const t = setup(1);
  const gate = holdCreates(t.provider);
  try {
    await t.scaling.start();
    await waitFor(() => t.scaling.creatingCount === 1, { what: 'create in flight' });
    t.provider.calls = [];
    await t.scaling.reconcileNow(); // deferred
    void t.scaling.waitForSeat(async () => undefined); // a waiting join: the planner runs as soon as the create lands
    t.provider.listGate = deferred();
    gate.resolve();
    await waitFor(() => t.provider.calls.includes('list'), { what: 'the deferred reconcile' });
    // The stage fills up meanwhile: the planner wants another one, but not before the listing is over.
    const first = (await t.store.listStages())[0]!;
    for (const id of ['v_cccccccccccccccc', 'v_dddddddddddddddd']) await t.store.reserveSeat({ id: id as never, userId: null, now: Date.now() }, { stageArn: first.arn });
    void t.scaling.plan();
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(t.provider.calls, ['create', 'list'], 'the held create lands, then the listing; nothing new until it ends');
    t.provider.listGate.resolve();
    await waitFor(() => t.provider.calls.filter((c) => c === 'create').length >= 2, { what: 'the next stage, after the reconcile' });
  } finally {
    gate.resolve();
    t.provider.listGate?.resolve();
    await t.close();
  }
});

test('waiting joins: a seat found by a retry still on its way when the wait ends goes to discard (given back), never lost', async () => {
  const t = setup(0, 100);
  try {
    await t.scaling.start();
    const inFlight = deferred<string | undefined>();
    let calls = 0;
    const discarded: string[] = [];
    const attempt = async () => (++calls === 1 ? undefined : inFlight.promise);
    const waiting = t.scaling.waitForSeat(attempt, (late) => discarded.push(late));
    await waitFor(() => t.scaling.waitingJoins === 1, { what: 'the join waits' });
    void t.scaling.drainWaiters(); // a retry starts, and is held past the wait's end
    await waitFor(() => calls === 2, { what: 'the retry is on its way' });
    assert.equal(await waiting, undefined, 'the wait ended without a seat');
    inFlight.resolve('seat-1');
    await waitFor(() => discarded.length === 1, { what: 'the late seat discarded' });
    assert.deepEqual(discarded, ['seat-1']);
    assert.equal(t.scaling.waitingJoins, 0);
  } finally {
    await t.close();
  }
});
