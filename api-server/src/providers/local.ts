/** The `local` provider: an HTTP client of the stage server's admin API (packages/protocol stage-server.ts). */
import {
  CreateStageResponseSchema,
  ListStagesResponseSchema,
  stageIdOf,
  STAGE_SERVER_ROUTES,
  type LocalStage,
  type StageArn,
} from '@stagecast/protocol';
import { POOL_TAG, TransientProviderError, type ProviderHealth, type ProviderStage, type StageProvider } from './provider.js';

export interface LocalProviderOptions {
  baseUrl: string;
  secret: string;
  poolId: string;
  timeoutMs?: number;
}

function toProviderStage(s: LocalStage): ProviderStage {
  const created = Date.parse(s.createdAt);
  return {
    stageArn: s.stageArn,
    stageId: s.stageId,
    name: s.name,
    whipUrl: s.whipUrl,
    playback: { type: 'whep', url: s.whepUrl },
    tags: s.tags,
    createdAt: Number.isFinite(created) ? created : Date.now(),
  };
}

export class LocalStageProvider implements StageProvider {
  readonly kind = 'local';
  /**
   * The stage server is our own stand-in on the same network: its create costs one atomic write of its stage list
   * (two fsyncs). 50/s keeps a pool of 50-seat stages ahead of 1,000 joins/s (20 stages/s) with room to spare.
   */
  readonly maxCallsPerSecond = 50;
  private readonly timeoutMs: number;
  constructor(private readonly opts: LocalProviderOptions) {
    this.timeoutMs = opts.timeoutMs ?? 5000;
  }

  private async request(method: string, path: string, body?: unknown): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(this.opts.baseUrl + path, {
        method,
        headers: {
          authorization: `Bearer ${this.opts.secret}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw new TransientProviderError(`stage server unreachable: ${(err as Error).message}`, { cause: err });
    }
    return res;
  }

  private async fail(op: string, res: Response): Promise<never> {
    const text = (await res.text().catch(() => '')).slice(0, 300);
    const msg = `stage server ${op}: HTTP ${res.status} ${text}`;
    if (res.status >= 500 || res.status === 429) throw new TransientProviderError(msg);
    throw new Error(msg);
  }

  async createStage(req: { name: string; tags: Record<string, string> }): Promise<ProviderStage> {
    const res = await this.request('POST', STAGE_SERVER_ROUTES.stages, req);
    if (res.status !== 201 && res.status !== 200) return this.fail('create', res);
    return toProviderStage(CreateStageResponseSchema.parse(await res.json()).stage);
  }

  async deleteStage(arn: StageArn): Promise<void> {
    const res = await this.request('DELETE', STAGE_SERVER_ROUTES.stage(stageIdOf(arn)));
    if (res.ok || res.status === 404) {
      await res.body?.cancel();
      return;
    }
    return this.fail('delete', res);
  }

  async listStages(): Promise<ProviderStage[]> {
    const res = await this.request('GET', STAGE_SERVER_ROUTES.stages);
    if (!res.ok) return this.fail('list', res);
    const { stages } = ListStagesResponseSchema.parse(await res.json());
    return stages.filter((s) => s.tags[POOL_TAG] === this.opts.poolId).map(toProviderStage);
  }

  async health(): Promise<ProviderHealth> {
    try {
      const res = await this.request('GET', STAGE_SERVER_ROUTES.stages);
      await res.body?.cancel();
      return res.ok ? { ok: true } : { ok: false, detail: `admin API answered ${res.status}` };
    } catch (err) {
      return { ok: false, detail: (err as Error).message };
    }
  }
}
