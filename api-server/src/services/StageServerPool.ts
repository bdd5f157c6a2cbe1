/**
 * The stage servers of STAGE_PROVIDER=local: where a new stage goes (pickStageServer: the live server with the
 * fewest stages, then the fewest viewers) and whether each server is alive. Every server's GET /health is read
 * every interval; DOWN_AFTER_FAILURES failed reads in a row mark it down: its stages are removed from the store
 * (their viewers released, `stage_deleted` sent to the Media Servers, a `drop` scaling event recorded) and the
 * scaler plans at once, so the pool's capacity comes back on the live servers. A down server takes no new stage;
 * one good read brings it back, after the stages it still holds that the store no longer knows are deleted there.
 */
import type { StageArn } from '@stagecast/protocol';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { stageServerOf, type LocalStageProvider, type StageServerSelector } from '../providers/local.js';
import { CREATED_AT_TAG } from '../providers/provider.js';
import type { Store } from '../store/store.js';
import type { EventBus } from './EventBus.js';

/** Failed health reads in a row after which a stage server is down. */
export const DOWN_AFTER_FAILURES = 2;

export interface StageServerLoad {
  url: string;
  /** Stages stored on it plus creates on their way there. */
  stages: number;
  viewers: number;
}

/** Pure: the least-loaded server — fewest stages, then fewest viewers, then the first listed. */
export function pickStageServer(candidates: readonly StageServerLoad[]): string | undefined {
  let best: StageServerLoad | undefined;
  for (const c of candidates) if (!best || c.stages < best.stages || (c.stages === best.stages && c.viewers < best.viewers)) best = c;
  return best?.url;
}

export interface StageServerStatus {
  url: string;
  state: 'up' | 'down';
  /** Failed health reads in a row. */
  failures: number;
  /** ms epoch of the last health read answered or failed; null before the first. */
  checkedAt: number | null;
  /** ms epoch since when it is in `state`. */
  since: number;
  lastError: string | null;
  stages: number;
  viewers: number;
}

interface ServerState {
  url: string;
  state: 'up' | 'down';
  failures: number;
  checkedAt: number | null;
  since: number;
  lastError: string | null;
}

export interface StageServerPoolDeps {
  urls: readonly string[];
  provider: LocalStageProvider;
  store: Store;
  bus: EventBus;
  log: Logger;
  metrics: Metrics;
  intervalMs: number;
  /** Called once a down server's stages are removed, so the pool is planned again (StageAutoScalingService.plan). */
  replan: () => void;
  now?: () => number;
}

export class StageServerPool implements StageServerSelector {
  private readonly servers: ServerState[];
  private readonly log: Logger;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private checking: Promise<void> | undefined;

  constructor(private readonly d: StageServerPoolDeps) {
    this.log = d.log.child({ component: 'stage-servers' });
    this.now = d.now ?? Date.now;
    const at = this.now();
    this.servers = d.urls.map((url) => ({ url, state: 'up', failures: 0, checkedAt: null, since: at, lastError: null }));
    d.metrics.registerStageServers(() => this.servers.map((s) => ({ url: s.url, up: s.state === 'up' })));
  }

  /** Reads every server's health at once, then every interval (a round never overlaps the previous one). */
  start(): void {
    if (this.running) return;
    this.running = true;
    const loop = () => {
      if (!this.running) return;
      this.checking = this.checkAll().finally(() => {
        this.checking = undefined;
        if (this.running) this.timer = setTimeout(loop, this.d.intervalMs);
      });
    };
    loop();
  }

  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    await this.checking;
  }

  isDown(url: string): boolean {
    return this.servers.find((s) => s.url === url)?.state === 'down';
  }

  async pick(creating: ReadonlyMap<string, number>): Promise<string | undefined> {
    const load = await this.load();
    return pickStageServer(
      this.servers.filter((s) => s.state === 'up').map((s) => {
        const l = load.get(s.url);
        return { url: s.url, stages: (l?.stages ?? 0) + (creating.get(s.url) ?? 0), viewers: l?.viewers ?? 0 };
      }),
    );
  }

  async list(): Promise<StageServerStatus[]> {
    const load = await this.load();
    return this.servers.map((s) => ({ ...s, stages: load.get(s.url)?.stages ?? 0, viewers: load.get(s.url)?.viewers ?? 0 }));
  }

  /** One round of health reads (tests call it to advance without waiting for the timer). */
  async checkAll(): Promise<void> {
    await Promise.all(this.servers.map((s) => this.check(s)));
  }

  private async load(): Promise<Map<string, { stages: number; viewers: number }>> {
    const out = new Map<string, { stages: number; viewers: number }>();
    for (const st of await this.d.store.listStages()) {
      const url = stageServerOf(st, this.d.urls);
      if (!url) continue;
      const l = out.get(url) ?? { stages: 0, viewers: 0 };
      l.stages++;
      l.viewers += st.viewers;
      out.set(url, l);
    }
    return out;
  }

  private async check(s: ServerState): Promise<void> {
    const error = await this.readHealth(s.url);
    if (!this.running) return;
    s.checkedAt = this.now();
    if (error === undefined) {
      s.failures = 0;
      s.lastError = null;
      if (s.state === 'down') await this.bringBack(s);
      return;
    }
    s.failures++;
    s.lastError = error;
    this.d.metrics.stageServerChecksFailed.inc({ server: s.url });
    if (s.state === 'up') {
      this.log.warn({ stageServer: s.url, failures: s.failures, err: error }, 'stage_server.check_failed');
      if (s.failures >= DOWN_AFTER_FAILURES) await this.takeDown(s);
    }
  }

  /** undefined when it answered 2xx; else why not. */
  private async readHealth(url: string): Promise<string | undefined> {
    try {
      const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(Math.max(100, Math.min(2000, this.d.intervalMs))) });
      await res.body?.cancel();
      return res.ok ? undefined : `GET /health answered ${res.status}`;
    } catch (err) {
      return (err as Error).message;
    }
  }

  private async takeDown(s: ServerState): Promise<void> {
    s.state = 'down';
    s.since = this.now();
    this.d.metrics.stageServerDowns.inc({ server: s.url });
    const stages = (await this.d.store.listStages()).filter((st) => stageServerOf(st, this.d.urls) === s.url);
    this.log.error({ stageServer: s.url, failures: s.failures, err: s.lastError, stages: stages.length }, 'stage_server.down');
    const reason = `stage server down: ${s.url}`;
    for (const st of stages) await this.dropStage(st.arn, s.url, reason);
    this.d.replan();
  }

  private async dropStage(arn: StageArn, url: string, reason: string): Promise<void> {
    const at = this.now();
    const released = await this.d.store.removeStage(arn);
    this.d.provider.forget(arn);
    await this.d.store.addScalingEvent({ at, action: 'drop', stageArn: arn, reason, detail: { stageServer: url, releasedViewers: released.length } });
    this.d.metrics.scalingActions.inc({ action: 'drop' });
    this.log.warn({ stageArn: arn, stageServer: url, releasedViewers: released.length }, 'stage.dropped');
    this.d.bus.publish({ type: 'stage_deleted', data: { stageArn: arn, timestamp: new Date(at).toISOString() } });
  }

  /**
   * A server that was only unreachable still holds the stages removed from the store: they are deleted there before
   * it takes new ones (a failure to do so is logged; reconciliation adopts what is left). Only stages created before
   * it went down: a newer one is another API Server's create (sharing the store) that is not recorded yet.
   */
  private async bringBack(s: ServerState): Promise<void> {
    try {
      const known = new Set((await this.d.store.listStages()).map((st) => st.arn));
      const createdAt = (st: { tags: Record<string, string>; createdAt: number }) => {
        const tagged = Date.parse(st.tags[CREATED_AT_TAG] ?? '');
        return Number.isFinite(tagged) ? tagged : st.createdAt;
      };
      const leftovers = (await this.d.provider.listOn(s.url)).filter((st) => !known.has(st.stageArn) && createdAt(st) < s.since);
      for (const st of leftovers) await this.d.provider.deleteStage(st.stageArn);
      if (leftovers.length) this.log.info({ stageServer: s.url, deleted: leftovers.length }, 'stage_server.leftovers_deleted');
    } catch (err) {
      this.log.warn({ stageServer: s.url, err: (err as Error).message }, 'stage_server.leftovers_failed');
    }
    s.state = 'up';
    s.since = this.now();
    this.log.info({ stageServer: s.url }, 'stage_server.up');
    this.d.replan();
  }
}
