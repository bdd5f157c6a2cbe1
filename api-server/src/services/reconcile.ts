/**
 * Start-up reconciliation of the store with the provider. Stages cost money: none may leak.
 * - at the provider, not in the store (crash between create and store write): adopted — it is ours by tag;
 * - in the store, not at the provider (lost): dropped, its viewers released, `stage_deleted` announced.
 */
import type { StageArn } from '@stagecast/protocol';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { StageProvider } from '../providers/provider.js';
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
  kept: number;
}

export async function reconcile(d: ReconcileDeps): Promise<ReconcileResult> {
  const remote = await d.provider.listStages();
  const local = d.store.listStages();
  const remoteArns = new Set(remote.map((s) => s.stageArn));
  const localArns = new Set(local.map((s) => s.arn));
  const result: ReconcileResult = { adopted: [], dropped: [], kept: 0 };
  const now = d.now();

  for (const r of remote) {
    if (localArns.has(r.stageArn)) {
      result.kept++;
      continue;
    }
    d.store.insertStage({
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
    });
    d.store.addScalingEvent({ at: now, action: 'adopt', stageArn: r.stageArn, reason: 'at the provider, missing from the store' });
    d.metrics?.scalingActions.inc({ action: 'adopt' });
    d.log.warn({ stageArn: r.stageArn }, 'stage.adopted');
    d.bus.publish({ type: 'stage_created', data: { stageArn: r.stageArn, timestamp: new Date(now).toISOString() } });
    result.adopted.push(r.stageArn);
  }
  for (const l of local) {
    if (remoteArns.has(l.arn)) continue;
    const released = d.store.removeStage(l.arn);
    d.store.addScalingEvent({
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
  d.log.info({ adopted: result.adopted.length, dropped: result.dropped.length, kept: result.kept }, 'stages.reconciled');
  return result;
}
