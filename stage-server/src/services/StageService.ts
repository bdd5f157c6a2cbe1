/**
 * The stage list: create, list, get, delete, persisted through a StageStore so stages survive a restart as IVS
 * stages do. Each stage owns a Room (its media); deleting the stage closes the room.
 */
import type { Logger } from 'pino';
import {
  localStageArn,
  NotFound,
  STAGE_SERVER_ROUTES,
  type CreateStageRequest,
  type LocalStage,
  type StageId,
  type StageArn,
  type StageMediaStats,
} from '@stagecast/protocol';
import type { StageRecord, StageStore } from '../store/types.js';
import { newStageId } from './ids.js';
import type { Room, RoomFactory } from './room.js';

interface Entry {
  record: StageRecord;
  stageArn: StageArn;
  room: Room;
}

export interface StageServiceOptions {
  store: StageStore;
  /** Base of whipUrl / whepUrl, without a trailing slash; a function because it is known only once listening. */
  publicUrl: () => string;
  roomFactory: RoomFactory;
  logger: Logger;
}

export class StageService {
  private readonly entries = new Map<StageId, Entry>();
  private started = false;

  constructor(private readonly opts: StageServiceOptions) {}

  /** Loads the persisted stages and opens their rooms. */
  async start(): Promise<void> {
    if (this.started) return;
    const records = await this.opts.store.load();
    for (const r of records) this.open(r);
    this.started = true;
    this.opts.logger.info({ stages: records.length }, 'stages.loaded');
  }

  /** Closes every room; the stages themselves stay persisted. */
  async stop(): Promise<void> {
    const rooms = [...this.entries.values()].map((e) => e.room.close('server stopping'));
    await Promise.allSettled(rooms);
  }

  async create(input: CreateStageRequest): Promise<LocalStage> {
    let stageId = newStageId();
    while (this.entries.has(stageId)) stageId = newStageId();
    const record: StageRecord = {
      stageId,
      name: input.name ?? '',
      tags: { ...(input.tags ?? {}) },
      createdAt: new Date().toISOString(),
    };
    const entry = this.open(record);
    try {
      await this.persist();
    } catch (e) {
      // Never answer 201 for a stage a restart would forget.
      this.entries.delete(stageId);
      await entry.room.close('stage not persisted');
      throw e;
    }
    this.opts.logger.info({ stageId, stageArn: entry.stageArn, name: record.name }, 'stage.created');
    return this.view(entry);
  }

  list(): LocalStage[] {
    return [...this.entries.values()].map((e) => this.view(e));
  }

  get(stageId: string): LocalStage {
    return this.view(this.entry(stageId));
  }

  /** The room of a stage, for the media routes. */
  room(stageId: string): Room {
    return this.entry(stageId).room;
  }

  has(stageId: string): boolean {
    return this.entries.has(stageId as StageId);
  }

  /** Deletes a stage and ends its sessions. Returns false when it did not exist (which is not an error). */
  async delete(stageId: string): Promise<boolean> {
    const entry = this.entries.get(stageId as StageId);
    if (!entry) return false;
    this.entries.delete(stageId as StageId);
    await entry.room.close('stage deleted');
    await this.persist();
    this.opts.logger.info({ stageId, stageArn: entry.stageArn }, 'stage.deleted');
    return true;
  }

  stats(): StageMediaStats[] {
    return [...this.entries.values()].map((e) => e.room.stats());
  }

  private entry(stageId: string): Entry {
    const e = this.entries.get(stageId as StageId);
    if (!e) throw new NotFound(`no stage ${stageId}`);
    return e;
  }

  private open(record: StageRecord): Entry {
    const stageArn = localStageArn(record.stageId);
    const entry: Entry = { record, stageArn, room: this.opts.roomFactory({ stageId: record.stageId, stageArn }) };
    this.entries.set(record.stageId, entry);
    return entry;
  }

  /** URLs are derived on every read: the public URL may be known only once the server listens (PORT=0). */
  private view(e: Entry): LocalStage {
    const base = this.opts.publicUrl();
    return {
      stageArn: e.stageArn,
      stageId: e.record.stageId,
      name: e.record.name,
      tags: e.record.tags,
      createdAt: e.record.createdAt,
      whipUrl: base + STAGE_SERVER_ROUTES.whip(e.record.stageId),
      whepUrl: base + STAGE_SERVER_ROUTES.whep(e.record.stageId),
    };
  }

  private persist(): Promise<void> {
    return this.opts.store.save([...this.entries.values()].map((e) => e.record));
  }
}
