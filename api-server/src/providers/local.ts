/**
 * The `local` provider: an HTTP client of the admin API of one or more stage servers (packages/protocol
 * stage-server.ts). Each stage lives on one server, named by its STAGE_SERVER_TAG; a StageServerSelector (the API
 * Server's StageServerPool) picks where a new stage goes and says which servers are down.
 */
import {
  CreateStageResponseSchema,
  ListStagesResponseSchema,
  stageIdOf,
  STAGE_SERVER_ROUTES,
  type LocalStage,
  type StageArn,
} from '@stagecast/protocol';
import { POOL_TAG, TransientProviderError, type ProviderHealth, type ProviderStage, type StageProvider } from './provider.js';

/** Tag naming the stage server (its base URL as configured) that holds a local stage. */
export const STAGE_SERVER_TAG = 'stagecast:stage-server';

/** Where new stages go, and which servers are known down. */
export interface StageServerSelector {
  /**
   * The base URL of the stage server a new stage goes to; undefined when none is live. `creating` counts, per
   * server, the creates already on their way there (not yet in the store).
   */
  pick(creating: ReadonlyMap<string, number>): Promise<string | undefined> | string | undefined;
  /** A server known down: its stages were removed from the store, listings leave it out. */
  isDown(baseUrl: string): boolean;
}

export interface LocalProviderOptions {
  /** The stage servers' base URLs (at least one). */
  baseUrls: string[];
  secret: string;
  poolId: string;
  timeoutMs?: number;
  /** Default: the server with the fewest creates in flight, none ever down. */
  selector?: StageServerSelector;
}

function toProviderStage(s: LocalStage, baseUrl: string): ProviderStage {
  const created = Date.parse(s.createdAt);
  return {
    stageArn: s.stageArn,
    stageId: s.stageId,
    name: s.name,
    whipUrl: s.whipUrl,
    playback: { type: 'whep', url: s.whepUrl },
    // The server that answered is the one that holds it, whatever an older tag says.
    tags: { ...s.tags, [STAGE_SERVER_TAG]: baseUrl },
    createdAt: Number.isFinite(created) ? created : Date.now(),
  };
}

/** The stage server a stored stage lives on: its tag, else the one server whose URL prefixes its WHIP URL. */
export function stageServerOf(stage: { tags: Record<string, string>; whipUrl: string }, baseUrls: readonly string[]): string | undefined {
  const tagged = stage.tags[STAGE_SERVER_TAG];
  if (tagged && baseUrls.includes(tagged)) return tagged;
  if (baseUrls.length === 1) return baseUrls[0];
  return baseUrls.find((u) => stage.whipUrl.startsWith(u + '/'));
}

export class LocalStageProvider implements StageProvider {
  readonly kind = 'local';
  /**
   * The stage server is our own stand-in on the same network: its create costs one atomic write of its stage list
   * (two fsyncs). 50/s keeps a pool of 50-seat stages ahead of 1,000 joins/s (20 stages/s) with room to spare.
   */
  readonly maxCallsPerSecond = 50;
  private readonly timeoutMs: number;
  private selector: StageServerSelector;
  /** Creates on their way, per server. */
  private readonly creating = new Map<string, number>();
  private picking: Promise<void> = Promise.resolve();
  /** Which server holds each stage this process created or listed (a delete goes there). */
  private readonly located = new Map<StageArn, string>();

  constructor(private readonly opts: LocalProviderOptions) {
    if (opts.baseUrls.length === 0) throw new Error('LocalStageProvider: no stage server URL');
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.selector = opts.selector ?? {
      pick: (creating) => [...opts.baseUrls].sort((a, b) => (creating.get(a) ?? 0) - (creating.get(b) ?? 0))[0],
      isDown: () => false,
    };
  }

  /** The selector that chooses servers from now on (the API Server's StageServerPool, built after the provider). */
  useSelector(selector: StageServerSelector): void {
    this.selector = selector;
  }

  get baseUrls(): readonly string[] {
    return this.opts.baseUrls;
  }

  private async request(baseUrl: string, method: string, path: string, body?: unknown): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(baseUrl + path, {
        method,
        headers: {
          authorization: `Bearer ${this.opts.secret}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw new TransientProviderError(`stage server ${baseUrl} unreachable: ${(err as Error).message}`, { cause: err });
    }
    return res;
  }

  private async fail(baseUrl: string, op: string, res: Response): Promise<never> {
    const text = (await res.text().catch(() => '')).slice(0, 300);
    const msg = `stage server ${baseUrl} ${op}: HTTP ${res.status} ${text}`;
    if (res.status >= 500 || res.status === 429) throw new TransientProviderError(msg);
    throw new Error(msg);
  }

  async createStage(req: { name: string; tags: Record<string, string> }): Promise<ProviderStage> {
    const baseUrl = await this.reserve();
    try {
      const res = await this.request(baseUrl, 'POST', STAGE_SERVER_ROUTES.stages, { ...req, tags: { ...req.tags, [STAGE_SERVER_TAG]: baseUrl } });
      if (res.status !== 201 && res.status !== 200) return await this.fail(baseUrl, 'create', res);
      const stage = toProviderStage(CreateStageResponseSchema.parse(await res.json()).stage, baseUrl);
      this.located.set(stage.stageArn, baseUrl);
      return stage;
    } finally {
      const n = (this.creating.get(baseUrl) ?? 1) - 1;
      if (n > 0) this.creating.set(baseUrl, n);
      else this.creating.delete(baseUrl);
    }
  }

  /**
   * Picks a server and counts the create as on its way there, one pick at a time: creates launched together see
   * each other, so they spread instead of all landing on the server that was least loaded before any of them.
   */
  private reserve(): Promise<string> {
    const turn = this.picking.then(async () => {
      const baseUrl = await this.selector.pick(this.creating);
      if (!baseUrl) throw new TransientProviderError('no live stage server');
      this.creating.set(baseUrl, (this.creating.get(baseUrl) ?? 0) + 1);
      return baseUrl;
    });
    this.picking = turn.then(
      () => undefined,
      () => undefined,
    );
    return turn;
  }

  /** On the server known to hold it; a stage of unknown place is deleted on every server that is not down. */
  async deleteStage(arn: StageArn): Promise<void> {
    const known = this.located.get(arn);
    const targets = known ? [known] : this.opts.baseUrls.filter((u) => !this.selector.isDown(u));
    for (const baseUrl of targets) {
      const res = await this.request(baseUrl, 'DELETE', STAGE_SERVER_ROUTES.stage(stageIdOf(arn)));
      if (!res.ok && res.status !== 404) return this.fail(baseUrl, 'delete', res);
      await res.body?.cancel();
    }
    this.located.delete(arn);
  }

  /** Every server that is not known down; one that fails to answer fails the listing (it may hold stages). */
  async listStages(): Promise<ProviderStage[]> {
    const live = this.opts.baseUrls.filter((u) => !this.selector.isDown(u));
    const lists = await Promise.all(live.map((u) => this.listOn(u)));
    return lists.flat();
  }

  /** One server's stages of our pool. */
  async listOn(baseUrl: string): Promise<ProviderStage[]> {
    const res = await this.request(baseUrl, 'GET', STAGE_SERVER_ROUTES.stages);
    if (!res.ok) return this.fail(baseUrl, 'list', res);
    const { stages } = ListStagesResponseSchema.parse(await res.json());
    const ours = stages.filter((s) => s.tags[POOL_TAG] === this.opts.poolId).map((s) => toProviderStage(s, baseUrl));
    for (const s of ours) this.located.set(s.stageArn, baseUrl);
    return ours;
  }

  /** Forgets where a stage was (its server went down and it was removed from the store). */
  forget(arn: StageArn): void {
    this.located.delete(arn);
  }

  /**
   * Healthy while at least one stage server that is not known down answers its admin API: answered as soon as one
   * does (a server that hangs does not hold readiness up); unhealthy once every one has failed.
   */
  async health(): Promise<ProviderHealth> {
    const total = this.opts.baseUrls.length;
    const live = this.opts.baseUrls.filter((u) => !this.selector.isDown(u));
    if (live.length === 0) return { ok: false, detail: `all ${total} stage servers are down` };
    const down = total - live.length;
    return new Promise<ProviderHealth>((resolve) => {
      const failed: string[] = [];
      for (const u of live) {
        void this.ping(u).then((err) => {
          if (err === undefined) resolve(down ? { ok: true, detail: `${down} of ${total} stage servers down` } : { ok: true });
          else if (failed.push(err) === live.length) resolve({ ok: false, detail: failed.join('; ') });
        });
      }
    });
  }

  /** undefined when the server's admin API answers 2xx; else why not. */
  private async ping(baseUrl: string): Promise<string | undefined> {
    try {
      const res = await this.request(baseUrl, 'GET', STAGE_SERVER_ROUTES.stages);
      await res.body?.cancel();
      return res.ok ? undefined : `${baseUrl}: admin API answered ${res.status}`;
    } catch (err) {
      return (err as Error).message;
    }
  }
}
