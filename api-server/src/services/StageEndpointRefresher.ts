/**
 * Amazon IVS lets a client cache a stage's endpoints (`StageEndpoints`, the WHIP URL we hand the Media Server) for
 * 14 days at most. This re-reads them with GetStage before that — every stage whose endpoints are older than
 * IVS_ENDPOINT_REFRESH_S (12 days by default) — and at once for a stage whose WHIP POST just failed at the endpoint
 * (the Media Server says so in its next token request), at most once per stage per `failureMinIntervalMs`.
 * Calls go through the provider's shared 5 TPS pacer.
 */
import type { StageArn } from '@stagecast/protocol';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { ProviderStage } from '../providers/provider.js';
import type { Store } from '../store/store.js';

export interface EndpointRefresherDeps {
  store: Store;
  /** Only the scaler lease holder refreshes by age (IVS's call budget is shared by every API Server). */
  lease?: { readonly held: boolean };
  provider: { getStage(arn: StageArn): Promise<ProviderStage | undefined> };
  log: Logger;
  metrics: Metrics;
  /** Endpoints older than this are read again. */
  maxAgeMs: number;
  /** How often stored endpoints are checked for age. */
  checkIntervalMs: number;
  /** A failure-driven refresh of one stage happens at most this often. */
  failureMinIntervalMs: number;
  now?: () => number;
}

export type RefreshReason = 'age' | 'whip_failed';

export class StageEndpointRefresher {
  private readonly log: Logger;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly inflight = new Map<StageArn, Promise<void>>();
  private readonly lastFailureRefresh = new Map<StageArn, number>();

  constructor(private readonly d: EndpointRefresherDeps) {
    this.log = d.log.child({ component: 'endpoints' });
    this.now = d.now ?? Date.now;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.runOnce(), this.d.checkIntervalMs);
    this.timer.unref();
    void this.runOnce();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
    await Promise.allSettled([...this.inflight.values()]);
  }

  /** Refreshes every active stage whose endpoints are due, one after another. */
  runOnce(): Promise<void> {
    if (this.running) return this.running;
    const run = (async () => {
      if (this.d.lease && !this.d.lease.held) return;
      const due = (await this.d.store.listStages()).filter((s) => s.state === 'active' && this.now() - s.endpointsAt >= this.d.maxAgeMs);
      for (const s of due) await this.refresh(s.arn, 'age');
    })().finally(() => {
      if (this.running === run) this.running = undefined;
    });
    this.running = run;
    return run;
  }

  /** A WHIP POST into `arn` failed at its endpoint: read the endpoints again (throttled per stage). Never throws. */
  async afterWhipFailure(arn: StageArn): Promise<void> {
    const now = this.now();
    const last = this.lastFailureRefresh.get(arn);
    if (last !== undefined && now - last < this.d.failureMinIntervalMs) return this.inflight.get(arn);
    this.lastFailureRefresh.set(arn, now);
    if (this.lastFailureRefresh.size > 10_000) this.lastFailureRefresh.delete(this.lastFailureRefresh.keys().next().value!);
    return this.refresh(arn, 'whip_failed');
  }

  private refresh(arn: StageArn, reason: RefreshReason): Promise<void> {
    const existing = this.inflight.get(arn);
    if (existing) return existing;
    const p = this.doRefresh(arn, reason).finally(() => this.inflight.delete(arn));
    this.inflight.set(arn, p);
    return p;
  }

  private async doRefresh(arn: StageArn, reason: RefreshReason): Promise<void> {
    const before = await this.d.store.getStage(arn);
    if (!before || before.state !== 'active') return;
    let fresh: ProviderStage | undefined;
    try {
      fresh = await this.d.provider.getStage(arn);
    } catch (err) {
      this.d.metrics.endpointRefreshes.inc({ reason, result: 'error' });
      this.log.error({ stageArn: arn, reason, err: (err as Error).message }, 'stage.endpoints_refresh_failed');
      return;
    }
    if (!fresh?.whipUrl) {
      // Gone at the provider (or without a WHIP endpoint): the reconciliation drops or deletes it; keep what we have.
      this.d.metrics.endpointRefreshes.inc({ reason, result: 'gone' });
      this.log.warn({ stageArn: arn, reason }, 'stage.endpoints_gone');
      return;
    }
    const changed = fresh.whipUrl !== before.whipUrl;
    if (!(await this.d.store.updateStageEndpoints(arn, fresh.whipUrl, this.now()))) return;
    this.d.metrics.endpointRefreshes.inc({ reason, result: changed ? 'changed' : 'unchanged' });
    this.log.info({ stageArn: arn, reason, changed, ageMs: this.now() - before.endpointsAt }, 'stage.endpoints_refreshed');
  }
}
