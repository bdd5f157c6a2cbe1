/**
 * The `ivs` provider: Amazon IVS Real-Time stages through @aws-sdk/client-ivs-realtime.
 * - Every remote call (each ListStages page included) takes a token from the shared 5 TPS Pacer and is retried
 *   there when transient (throttling, rate quota, 5xx, network). The SDK's own retries are off (maxAttempts 1)
 *   so that one budget paces everything.
 * - ListStages cannot filter by tag: our stages are told apart client-side by stagecast:pool = STAGE_POOL_ID.
 * - The stage's `endpoints.whip` is what the Media Server publishes to; ListStages does not return it, so an
 *   adopted stage costs one GetStage. A created stage without one is deleted at once, never recorded half.
 */
import {
  CreateStageCommand,
  DeleteStageCommand,
  GetStageCommand,
  IVSRealTimeClient,
  ListParticipantsCommand,
  ListStagesCommand,
  type ParticipantSummary,
  type Stage,
  type StageSummary,
} from '@aws-sdk/client-ivs-realtime';
import { isStageArn, stageIdOf, type StageArn } from '@stagecast/protocol';
import type { Pacer } from './pacing.js';
import { CREATED_AT_TAG, POOL_TAG, TransientProviderError, type ProviderHealth, type ProviderStage, type ProviderStageSummary, type StageProvider } from './provider.js';

/** IVS's documented rate for CreateStage, DeleteStage, GetStage, ListStages, ListParticipants: 5 TPS each, not adjustable. */
export const IVS_STAGE_TPS = 5;
/** CreateParticipantToken has its own quota. */
export const IVS_TOKEN_TPS = 50;
/** Bounded pagination: 200 pages of 100 is 20,000 stages (the region default is 1,000). */
const MAX_PAGES = 200;

export function createIvsClient(region: string): IVSRealTimeClient {
  // No SDK retries (our Pacer retries inside the budget); bounded waits so a hung call cannot stall the pool.
  return new IVSRealTimeClient({ region, maxAttempts: 1, requestHandler: { connectionTimeout: 5_000, requestTimeout: 15_000 } });
}

/** A final IVS failure (validation, access denied, quota of resources): not retried, reported as is. */
export class IvsCallError extends Error {
  constructor(
    readonly op: string,
    readonly awsName: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'IvsCallError';
  }
}

interface AwsLikeError {
  name?: string;
  message?: string;
  code?: string;
  $fault?: 'client' | 'server';
  $metadata?: { httpStatusCode?: number };
}

const THROTTLING = new Set(['ThrottlingException', 'Throttling', 'TooManyRequestsException', 'RequestLimitExceeded', 'SlowDown']);
const NETWORK = new Set(['TimeoutError', 'AbortError', 'NetworkingError', 'RequestTimeout', 'RequestTimeoutException']);

/**
 * IVS error → TransientProviderError (retry: throttling, a rate quota, 5xx, network) or IvsCallError (final:
 * ValidationException, AccessDeniedException, a resource quota such as the 1,000 stages per region, …).
 */
export function classifyIvsError(op: string, err: unknown): Error {
  const e = (err ?? {}) as AwsLikeError;
  const name = e.name ?? 'Error';
  const message = e.message ?? String(err);
  const status = e.$metadata?.httpStatusCode;
  const text = `IVS ${op}: ${name}: ${message}`;
  const rateQuota = name === 'ServiceQuotaExceededException' && /\b(rate|tps|throttl|too many requests|per second)/i.test(message);
  if (THROTTLING.has(name) || rateQuota || status === 429) return new TransientProviderError(text, { cause: err });
  if (e.$fault === 'server' || (status !== undefined && status >= 500) || name === 'InternalServerException') return new TransientProviderError(text, { cause: err });
  if (!e.$metadata && (NETWORK.has(name) || /^E[A-Z]+$/.test(e.code ?? ''))) return new TransientProviderError(text, { cause: err });
  const hint = name === 'AccessDeniedException' ? ` (the IAM policy must allow ivs:${op}; see docs/deploy-aws.md)` : '';
  return new IvsCallError(op, name, text + hint, { cause: err });
}

export function isIvsNotFound(err: unknown): boolean {
  return (err as AwsLikeError | undefined)?.name === 'ResourceNotFoundException';
}

function createdAtOf(tags: Record<string, string>): number {
  const t = Date.parse(tags[CREATED_AT_TAG] ?? '');
  return Number.isFinite(t) ? t : Date.now();
}

export interface IvsProviderOptions {
  poolId: string;
  /** The 5 TPS budget shared by every stage call (and ListParticipants). */
  pacer: Pacer;
}

export class IvsStageProvider implements StageProvider {
  readonly kind = 'ivs';
  readonly maxCallsPerSecond = IVS_STAGE_TPS;
  readonly selfPaced = true;
  private last: ProviderHealth = { ok: true, detail: 'no IVS call yet' };

  constructor(
    private readonly client: IVSRealTimeClient,
    private readonly o: IvsProviderOptions,
  ) {}

  /** One paced, classified IVS call. Health is the outcome of the last call (checking would spend the budget). */
  private async call<T>(op: string, fn: () => Promise<T>, notFound?: () => T): Promise<T> {
    try {
      const out = await this.o.pacer.call(op, async () => {
        try {
          return await fn();
        } catch (err) {
          if (notFound && isIvsNotFound(err)) return notFound();
          throw classifyIvsError(op, err);
        }
      });
      this.last = { ok: true };
      return out;
    } catch (err) {
      this.last = { ok: false, detail: (err as Error).message };
      throw err;
    }
  }

  private toStage(s: Stage | StageSummary, whipUrl?: string): ProviderStage | ProviderStageSummary {
    const arn = s.arn ?? '';
    if (!isStageArn(arn)) throw new IvsCallError('Stage', 'UnexpectedArn', `IVS returned a stage ARN we cannot use: ${arn}`);
    const tags = s.tags ?? {};
    return {
      stageArn: arn,
      stageId: stageIdOf(arn),
      name: s.name ?? '',
      ...(whipUrl ? { whipUrl } : {}),
      playback: { type: 'ivs' },
      tags,
      createdAt: createdAtOf(tags),
    };
  }

  async createStage(req: { name: string; tags: Record<string, string> }): Promise<ProviderStage> {
    const out = await this.call('CreateStage', () => this.client.send(new CreateStageCommand({ name: req.name, tags: req.tags })));
    const stage = out.stage;
    if (!stage?.arn) throw new IvsCallError('CreateStage', 'NoStage', 'IVS CreateStage answered without a stage');
    const whip = stage.endpoints?.whip;
    if (!whip) {
      // Never half-recorded: a stage we cannot publish to is removed (reconciliation deletes it if this fails too).
      await this.deleteStage(stage.arn as StageArn).catch(() => undefined);
      throw new IvsCallError('CreateStage', 'NoWhipEndpoint', `IVS CreateStage returned no endpoints.whip for ${stage.arn}`);
    }
    return this.toStage({ ...stage, tags: stage.tags ?? req.tags }, whip) as ProviderStage;
  }

  async deleteStage(arn: StageArn): Promise<void> {
    await this.call(
      'DeleteStage',
      async () => {
        await this.client.send(new DeleteStageCommand({ arn }));
      },
      () => undefined,
    );
  }

  async getStage(arn: StageArn): Promise<ProviderStage | undefined> {
    const out = await this.call('GetStage', () => this.client.send(new GetStageCommand({ arn })), () => undefined);
    if (!out?.stage) return undefined;
    return this.toStage(out.stage, out.stage.endpoints?.whip) as ProviderStage;
  }

  /** Every page of ListStages (each one paced), filtered to our pool by tag. */
  async listStages(): Promise<ProviderStageSummary[]> {
    const all = await this.listAllSummaries();
    return all.filter((s) => s.tags?.[POOL_TAG] === this.o.poolId).map((s) => this.toStage(s));
  }

  /**
   * Raw summaries of every stage in the region (the viewer reconciler reads activeSessionId from them).
   * `beforeEachCall` lets a caller spend its own, smaller budget too.
   */
  async listAllSummaries(beforeEachCall?: () => Promise<void>): Promise<StageSummary[]> {
    const out: StageSummary[] = [];
    let nextToken: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      await beforeEachCall?.();
      const res = await this.call('ListStages', () => this.client.send(new ListStagesCommand({ maxResults: 100, ...(nextToken ? { nextToken } : {}) })));
      out.push(...(res.stages ?? []));
      nextToken = res.nextToken || undefined;
      if (!nextToken) return out;
    }
    throw new IvsCallError('ListStages', 'TooManyPages', `IVS ListStages: more than ${MAX_PAGES} pages`);
  }

  /** Participants CONNECTED to a stage session, every page (paced); a stage or session gone → none. */
  async listConnectedParticipants(stageArn: StageArn, sessionId: string, beforeEachCall?: () => Promise<void>): Promise<ParticipantSummary[]> {
    const out: ParticipantSummary[] = [];
    let nextToken: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      await beforeEachCall?.();
      const res = await this.call(
        'ListParticipants',
        () =>
          this.client.send(
            new ListParticipantsCommand({ stageArn, sessionId, filterByState: 'CONNECTED', maxResults: 100, ...(nextToken ? { nextToken } : {}) }),
          ),
        () => undefined,
      );
      out.push(...(res?.participants ?? []));
      nextToken = res?.nextToken || undefined;
      if (!nextToken) return out;
    }
    throw new IvsCallError('ListParticipants', 'TooManyPages', `IVS ListParticipants: more than ${MAX_PAGES} pages`);
  }

  async health(): Promise<ProviderHealth> {
    return this.last;
  }
}
