import type { StageId } from '@stagecast/protocol';

/** What is persisted of a stage; URLs and the ARN are derived from it and the config. */
export interface StageRecord {
  stageId: StageId;
  name: string;
  tags: Record<string, string>;
  createdAt: string;
}

/** Persistence of the stage list, behind one interface (a file today; anything else later). */
export interface StageStore {
  load(): Promise<StageRecord[]>;
  /** Replaces the whole list durably: when it resolves, a crash cannot lose it. */
  save(stages: readonly StageRecord[]): Promise<void>;
}
