/**
 * The `whip` provider: a fixed list of WHIP destinations (WHIP_TARGETS: Cloudflare, Dolby, LiveKit Ingress,
 * MediaMTX, Janus, another Stagecast …) treated as stages, so the Media Server fans out to any mix of them.
 * The pool is fixed: stages are adopted from listStages at reconciliation and never created or deleted.
 * Viewers watch at each destination, not through Stagecast. Tokens are the destinations' own and never stored
 * in SQLite or logged: only this provider (and its token issuer) holds them, in memory.
 */
import { createHash } from 'node:crypto';
import { NotFound, type ParticipantId, type StageArn, type StageId } from '@stagecast/protocol';
import type { IssuedToken, IssueRequest, StageTokenIssuer } from './token-issuer.js';
import { POOL_TAG, type ProviderHealth, type ProviderStage, type StageProvider } from './provider.js';

export interface WhipTarget {
  url: string;
  /** Bearer token the destination expects; absent → the Media Server sends no Authorization. */
  token?: string;
}

/** A stable stage id per destination URL: the stage survives restarts and token rotation, and ids never collide. */
export function whipTargetStageId(url: string): StageId {
  return `w${createHash('sha256').update(url).digest('hex').slice(0, 24)}` as StageId;
}

export function whipTargetStageArn(url: string): StageArn {
  return `arn:stagecast:ivs:whip:000000000000:stage/${whipTargetStageId(url)}` as StageArn;
}

/** Where a destination is, for logs and names: scheme, host and port only (paths may carry secrets, as Cloudflare's do). */
export function whipTargetOrigin(url: string): string {
  return new URL(url).origin;
}

export class WhipTargetProvider implements StageProvider {
  readonly kind = 'whip';
  readonly maxCallsPerSecond = 1000; // no remote calls
  readonly fixedPool = true;
  private readonly stages: ProviderStage[];
  private readonly byArn = new Map<StageArn, WhipTarget>();

  constructor(targets: readonly WhipTarget[], poolId: string, now = Date.now()) {
    this.stages = targets.map((t, i) => {
      const stageArn = whipTargetStageArn(t.url);
      this.byArn.set(stageArn, t);
      return {
        stageArn,
        stageId: whipTargetStageId(t.url),
        name: `whip-${i}-${new URL(t.url).hostname}`.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 128),
        whipUrl: t.url,
        playback: { type: 'external' },
        tags: { [POOL_TAG]: poolId, 'stagecast:whip-target': String(i) },
        createdAt: now,
      };
    });
  }

  /** The destination behind a stage (for its token), undefined when WHIP_TARGETS no longer lists it. */
  target(arn: StageArn): WhipTarget | undefined {
    return this.byArn.get(arn);
  }

  async createStage(): Promise<ProviderStage> {
    throw new Error('the whip provider is a fixed pool (WHIP_TARGETS): stages are never created');
  }
  async deleteStage(): Promise<void> {
    throw new Error('the whip provider is a fixed pool (WHIP_TARGETS): stages are never deleted');
  }
  async listStages(): Promise<ProviderStage[]> {
    return this.stages.map((s) => ({ ...s, tags: { ...s.tags } }));
  }
  async getStage(arn: StageArn): Promise<ProviderStage | undefined> {
    return this.stages.find((s) => s.stageArn === arn);
  }
  async health(): Promise<ProviderHealth> {
    return { ok: true, detail: `${this.stages.length} WHIP destination(s)` };
  }
}

/** PUBLISH tokens for WHIP destinations: the destination's own URL and token, as configured. */
export class WhipTargetTokenIssuer implements StageTokenIssuer {
  readonly kind = 'whip';
  constructor(private readonly provider: WhipTargetProvider) {}
  async issue(req: IssueRequest): Promise<IssuedToken> {
    if (req.grant.subscribe) throw new NotFound('WHIP destinations have no Stagecast viewers: watch at the destination');
    const t = this.provider.target(req.stage.arn);
    if (!t) throw new NotFound('no WHIP destination for this stage (removed from WHIP_TARGETS)');
    return {
      token: t.token ?? '',
      participantId: req.participantId as ParticipantId,
      whipUrl: t.url,
      // The destination's token does not expire with us; the Media Server's leg rotates on this schedule regardless.
      expiresAt: new Date(req.nowMs + req.ttlSeconds * 1000),
    };
  }
}
