/**
 * Viewer counts on IVS. IVS sends no event when a subscriber joins or leaves (EventBridge covers publishers only),
 * so our own accounting (seats from joins, heartbeats) is the count, and this service checks it periodically
 * against ListParticipants(CONNECTED) — inside the 5 TPS stage-call budget (the shared Pacer) and, within it, at
 * most IVS_VIEWER_RECONCILE_TPS calls per second of its own, so scaling always keeps most of the budget.
 *
 * What it corrects: each seat's `connected` flag (IVS is the truth about connections). What it does not: seats
 * (heartbeats own them: a viewer seated but not yet connected keeps its seat) and subscribers IVS has that we
 * have no seat for (a token outliving its seat): those are logged and counted as drift, never kicked.
 */
import { Counter, Gauge } from 'prom-client';
import type { StageArn, ViewerId } from '@stagecast/protocol';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { IvsStageProvider } from '../providers/ivs.js';
import type { Store } from '../store/store.js';

export interface StageDrift {
  stageArn: StageArn;
  /** Seats taken in our store. */
  seats: number;
  /** Subscribers IVS reports CONNECTED (publishers — the Media Server's legs — excluded). */
  ivsSubscribers: number;
  /** Of those, the ones that are none of our seats on this stage. */
  unaccounted: number;
  /** Seats whose viewer IVS does not see connected. */
  seatedNotConnected: number;
}

export interface IvsViewerReconcilerDeps {
  store: Store;
  /** Only the scaler lease holder checks (one IVS call budget for every API Server). */
  lease?: { readonly held: boolean };
  ivs: Pick<IvsStageProvider, 'listAllSummaries' | 'listConnectedParticipants'>;
  log: Logger;
  metrics?: Metrics;
  intervalMs: number;
  callsPerSecond: number;
}

/** Our participant ids (viewer ids) are the IVS userId (both token kinds) and, for self-signed tokens, the participantId. */
function viewerIdOf(p: { userId?: string | undefined; participantId?: string | undefined }): string | undefined {
  return p.userId || p.participantId || undefined;
}

export class IvsViewerReconciler {
  private readonly log: Logger;
  private readonly gapMs: number;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private running: Promise<StageDrift[]> | undefined;
  /** Viewers we marked connected, per stage, so that one IVS no longer lists is marked disconnected. */
  private marked = new Map<StageArn, Set<ViewerId>>();
  private readonly gauges?: { subscribers: Gauge; unaccounted: Gauge; notConnected: Gauge; runs: Counter<'result'> };

  constructor(private readonly d: IvsViewerReconcilerDeps) {
    this.log = d.log.child({ component: 'ivs-viewers' });
    this.gapMs = Math.ceil(1000 / d.callsPerSecond);
    if (d.metrics) {
      const registers = [d.metrics.registry];
      this.gauges = {
        subscribers: new Gauge({ name: 'stagecast_ivs_subscribers', help: 'Subscribers IVS reported CONNECTED at the last reconciliation', registers }),
        unaccounted: new Gauge({ name: 'stagecast_ivs_unaccounted_subscribers', help: 'IVS subscribers with no seat of ours (drift)', registers }),
        notConnected: new Gauge({ name: 'stagecast_ivs_seats_not_connected', help: 'Seats whose viewer IVS did not see connected', registers }),
        runs: new Counter({ name: 'stagecast_ivs_viewer_reconcile_total', help: 'Viewer reconciliations with IVS by result', labelNames: ['result'], registers }),
      };
    }
  }

  start(): void {
    this.stopped = false;
    if (this.timer || this.d.intervalMs <= 0) return;
    this.timer = setInterval(() => void this.runOnce().catch(() => undefined), this.d.intervalMs);
  }

  /** Stops the timer; a pass in flight ends at its next call. */
  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One pass over our active stages; concurrent callers share the pass in flight. */
  runOnce(): Promise<StageDrift[]> {
    this.running ??= this.pass()
      .then((r) => {
        this.gauges?.runs.inc({ result: 'ok' });
        return r;
      })
      .catch((err: Error) => {
        if (this.stopped) throw err;
        this.gauges?.runs.inc({ result: 'failed' });
        this.log.error({ err: err.message }, 'ivs.viewer_reconcile_failed');
        throw err;
      })
      .finally(() => {
        this.running = undefined;
      });
    return this.running;
  }

  private async pass(): Promise<StageDrift[]> {
    // Calls are sequential and each waits gapMs after the previous one returned, so however long the shared
    // pacer held a call, no two of ours are closer than gapMs: never more than callsPerSecond in any second.
    let first = true;
    const spend = async () => {
      if (!first) await new Promise((r) => setTimeout(r, this.gapMs));
      first = false;
      if (this.stopped) throw new Error('viewer reconciliation stopped');
    };
    if (this.d.lease && !this.d.lease.held) return []; // one API Server spends the IVS budget: the lease holder
    const stages = (await this.d.store.listStages()).filter((s) => s.state === 'active');
    if (!stages.length) return [];
    // One ListStages sweep gives every stage's active session (100 per page) instead of one GetStage each.
    const sessions = new Map((await this.d.ivs.listAllSummaries(spend)).map((s) => [s.arn, s.activeSessionId ?? '']));
    const drifts: StageDrift[] = [];
    for (const stage of stages) {
      const sessionId = sessions.get(stage.arn) ?? '';
      const participants = sessionId ? await this.d.ivs.listConnectedParticipants(stage.arn, sessionId, spend) : [];
      // The Media Server's legs publish (published, or pub_… before their first packet): not viewers.
      const subscribers = participants.filter((p) => !p.published && !(viewerIdOf(p) ?? '').startsWith('pub_'));
      const seen = new Set<ViewerId>();
      let unaccounted = 0;
      for (const p of subscribers) {
        const id = viewerIdOf(p) as ViewerId | undefined;
        if (id && (await this.d.store.setViewerConnected(id, stage.arn, true))) seen.add(id);
        else unaccounted++;
      }
      for (const id of this.marked.get(stage.arn) ?? []) if (!seen.has(id)) await this.d.store.setViewerConnected(id, stage.arn, false);
      this.marked.set(stage.arn, seen);
      const seats = (await this.d.store.getStage(stage.arn))?.viewers ?? stage.viewers;
      const drift: StageDrift = { stageArn: stage.arn, seats, ivsSubscribers: subscribers.length, unaccounted, seatedNotConnected: Math.max(0, seats - seen.size) };
      drifts.push(drift);
      if (drift.unaccounted || drift.seatedNotConnected) this.log.warn(drift, 'ivs.viewer_drift');
    }
    for (const arn of this.marked.keys()) if (!stages.some((s) => s.arn === arn)) this.marked.delete(arn);
    this.gauges?.subscribers.set(drifts.reduce((n, x) => n + x.ivsSubscribers, 0));
    this.gauges?.unaccounted.set(drifts.reduce((n, x) => n + x.unaccounted, 0));
    this.gauges?.notConnected.set(drifts.reduce((n, x) => n + x.seatedNotConnected, 0));
    this.log.info({ stages: drifts.length, subscribers: drifts.reduce((n, x) => n + x.ivsSubscribers, 0) }, 'ivs.viewers_reconciled');
    return drifts;
  }
}
