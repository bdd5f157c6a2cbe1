/**
 * Stage providers behind one interface: `local` (the stage server), `ivs` (Amazon IVS Real-Time) and `whip`
 * (a fixed list of WHIP destinations). Participant tokens come from a StageTokenIssuer (token-issuer.ts).
 */
import type { Playback, StageArn, StageId } from '@stagecast/protocol';

/** Tag keys that mark our stages at the provider (IVS ListStages cannot filter by tag: we filter client-side). */
export const POOL_TAG = 'stagecast:pool';
export const CREATED_AT_TAG = 'stagecast:created-at';

export interface ProviderStage {
  stageArn: StageArn;
  stageId: StageId;
  name: string;
  /** Where a publisher (the Media Server's leg) sends WHIP. */
  whipUrl: string;
  /** How a viewer plays it. */
  playback: Playback;
  tags: Record<string, string>;
  /** ms epoch */
  createdAt: number;
}

/**
 * A stage as a listing returns it. IVS's ListStages carries no endpoints: `whipUrl` is then absent and
 * `getStage` fetches it (reconciliation does so only for the stages it adopts).
 */
export type ProviderStageSummary = Omit<ProviderStage, 'whipUrl'> & { whipUrl?: string };

export interface ProviderHealth {
  ok: boolean;
  detail?: string;
}

export interface StageProvider {
  readonly kind: string;
  /** The provider's documented call rate (local: 20, IVS: 5). */
  readonly maxCallsPerSecond: number;
  /**
   * A fixed pool (`whip`): the stages are what listStages returns, adopted at reconciliation; the pool is never
   * grown or shrunk, and createStage/deleteStage are never called.
   */
  readonly fixedPool?: boolean;
  /** The provider paces and retries each of its own remote calls (IVS: one call per ListStages page). */
  readonly selfPaced?: boolean;
  createStage(req: { name: string; tags: Record<string, string> }): Promise<ProviderStage>;
  /** Idempotent: a stage that does not exist is a success. */
  deleteStage(arn: StageArn): Promise<void>;
  /** Only OUR stages: those tagged stagecast:pool = STAGE_POOL_ID. */
  listStages(): Promise<ProviderStageSummary[]>;
  /** One stage with its endpoints; undefined when it does not exist. Needed when listStages omits whipUrl. */
  getStage?(arn: StageArn): Promise<ProviderStage | undefined>;
  health(): Promise<ProviderHealth>;
}

/** A failure worth retrying (network error, throttling, 5xx). Anything else is final. */
export class TransientProviderError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TransientProviderError';
  }
}
