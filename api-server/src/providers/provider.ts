/**
 * Stage providers behind one interface: `local` (the stage server) now, `ivs` and `whip` later.
 * Token minting for local stages stays in the API Server (tokens.ts).
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

export interface ProviderHealth {
  ok: boolean;
  detail?: string;
}

export interface StageProvider {
  readonly kind: string;
  /** The provider's documented call rate (local: 20, IVS: 5). */
  readonly maxCallsPerSecond: number;
  createStage(req: { name: string; tags: Record<string, string> }): Promise<ProviderStage>;
  /** Idempotent: a stage that does not exist is a success. */
  deleteStage(arn: StageArn): Promise<void>;
  /** Only OUR stages: those tagged stagecast:pool = STAGE_POOL_ID. */
  listStages(): Promise<ProviderStage[]>;
  health(): Promise<ProviderHealth>;
}

/** A failure worth retrying (network error, throttling, 5xx). Anything else is final. */
export class TransientProviderError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TransientProviderError';
  }
}
