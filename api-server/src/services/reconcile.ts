/**
 * Start-up reconciliation of the store with the provider. Stages cost money: none may leak.
 * - at the provider, not in the store (crash between create and store write): adopted — it is ours by tag;
 * - in the store, not at the provider (lost): dropped, its viewers released, `stage_deleted` announced — only when it
 *   was recorded before the listing began (a stage recorded meanwhile is newer than the listing, not lost).
 * A listing without endpoints (IVS ListStages) costs one GetStage per adopted stage, never one per kept stage;
 * an orphan whose WHIP endpoint cannot be learnt is deleted rather than recorded without one.
 */
import type { StageArn } from '@stagecast/protocol';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { ProviderStage, ProviderStageSummary, StageProvider } from '../providers/provider.js';
import type { Store } from '../store/store.js';
import type { EventBus } from './EventBus.js';

export interface ReconcileDeps {
  store: Store;
  provider: StageProvider;
  bus: EventBus;
  log: Logger;
  metrics?: Metrics;
  capacity: number;
  now: () => number;
}

export interface ReconcileResult {
  adopted: StageArn[];
  dropped: StageArn[];
  /** Orphans deleted at the provider because they could not be recorded whole. */
  deleted: StageArn[];
  kept: number;
}

export async function reconcile(d: ReconcileDeps): Promise<ReconcileResult> {
  // Only a stage recorded before the listing began can be missing from it for being lost: one recorded while the
  // listing was on its way (a create that landed meanwhile) may simply be newer than the provider's answer.
  const before = new Set((await d.store.listStages()).map((s) => s.arn));
  const remote = await d.provider.listStages();
  const local = await d.store.listStages();
  const remoteArns = new Set(remote.map((s) => s.stageArn));
  const localArns = new Set(local.map((s) => s.arn));
  const result: ReconcileResult = { adopted: [], dropped: [], deleted: [], kept: 0 };
  const now = d.now();

  for (const summary of remote) {
    if (localArns.has(summary.stageArn)) {
      result.kept++;
      continue;
    }
    const found = await withEndpoints(d, summary);
    if (found === 'gone') continue;
    if (found === 'deleted') {
      result.deleted.push(summary.stageArn);
      continue;
    }
    const r = found;
    // The store may have changed while GetStage was on its way (a create recorded meanwhile).
    if (await d.store.getStage(r.stageArn)) {
      result.kept++;
      continue;
    }
    await d.store.insertStage({
      arn: r.stageArn,
      id: r.stageId,
      name: r.name,
      capacity: d.capacity,
      state: 'active',
      whipUrl: r.whipUrl,
      playback: r.playback,
      tags: r.tags,
      createdAt: r.createdAt,
      emptySince: now,
      endpointsAt: now,
    });
    await d.store.addScalingEvent({ at: now, action: 'adopt', stageArn: r.stageArn, reason: 'at the provider, missing from the store' });
    d.metrics?.scalingActions.inc({ action: 'adopt' });
    d.log.warn({ stageArn: r.stageArn }, 'stage.adopted');
    d.bus.publish({ type: 'stage_created', data: { stageArn: r.stageArn, timestamp: new Date(now).toISOString() } });
    result.adopted.push(r.stageArn);
  }
  for (const l of local) {
    if (remoteArns.has(l.arn) || !before.has(l.arn)) continue;
    const released = await d.store.removeStage(l.arn);
    await d.store.addScalingEvent({
      at: now,
      action: 'drop',
      stageArn: l.arn,
      reason: 'in the store, lost by the provider',
      detail: { releasedViewers: released.length },
    });
    d.metrics?.scalingActions.inc({ action: 'drop' });
    d.log.warn({ stageArn: l.arn, releasedViewers: released.length }, 'stage.dropped');
    d.bus.publish({ type: 'stage_deleted', data: { stageArn: l.arn, timestamp: new Date(now).toISOString() } });
    result.dropped.push(l.arn);
  }
  d.log.info({ adopted: result.adopted.length, dropped: result.dropped.length, deleted: result.deleted.length, kept: result.kept }, 'stages.reconciled');
  return result;
}

/** The stage with its WHIP endpoint; 'gone' when it vanished meanwhile; 'deleted' when it had none to record. */
async function withEndpoints(d: ReconcileDeps, s: ProviderStageSummary): Promise<ProviderStage | 'gone' | 'deleted'> {
  if (s.whipUrl) return { ...s, whipUrl: s.whipUrl };
  let full: ProviderStage | undefined;
  if (d.provider.getStage) {
    full = await d.provider.getStage(s.stageArn);
    if (!full) return 'gone';
    if (full.whipUrl) return full;
  }
  d.log.error({ stageArn: s.stageArn }, 'stage.orphan_without_whip_endpoint');
  await d.provider.deleteStage(s.stageArn);
  await d.store.addScalingEvent({ at: d.now(), action: 'delete', stageArn: s.stageArn, reason: 'orphan at the provider without a WHIP endpoint' });
  d.metrics?.scalingActions.inc({ action: 'delete' });
  return 'deleted';
}
