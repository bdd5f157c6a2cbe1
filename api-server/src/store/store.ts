/** Persistence behind one interface: SqliteStore (one API Server) and RedisStore (several, REDIS_URL). */
import type { Playback, ScalingActionKind, ServerId, StageArn, StageId, ViewerId } from '@stagecast/protocol';

export type StageState = 'active' | 'draining';

export interface StageRecord {
  arn: StageArn;
  id: StageId;
  name: string;
  capacity: number;
  state: StageState;
  whipUrl: string;
  playback: Playback;
  tags: Record<string, string>;
  /** ms epoch */
  createdAt: number;
  /** ms epoch since when it has had no seat taken; null while it has viewers. */
  emptySince: number | null;
  /** ms epoch when whipUrl was last read from the provider (IVS: cache endpoints 14 days at most). Default: createdAt. */
  endpointsAt?: number;
  /** The Media Server that publishes into the stage (null: none). Default null. */
  mediaServerId?: ServerId | null;
  /** During a handover, the Media Server still publishing until mediaServerId's leg connects. Default null. */
  previousMediaServerId?: ServerId | null;
}

export interface StageWithCounts extends StageRecord {
  endpointsAt: number;
  mediaServerId: ServerId | null;
  previousMediaServerId: ServerId | null;
  /** Seats taken. */
  viewers: number;
  /** Viewers whose connection the stage server reported. */
  connected: number;
}

export interface ViewerRecord {
  id: ViewerId;
  stageArn: StageArn;
  userId: string | null;
  joinedAt: number;
  lastSeen: number;
  connected: boolean;
  /** Set while the viewer has been moved here by consolidation and still plays this stage. */
  movedFrom: StageArn | null;
  movedAt: number | null;
}

/** Participants on one stage during a metered interval. */
export interface UsageSample {
  stageArn: StageArn;
  viewers: number;
  publishers: number;
}

/** Participant-milliseconds of one stage in one minute. */
export interface UsageBucket {
  /** ms epoch of the minute's start. */
  minute: number;
  stageArn: StageArn;
  viewerMs: number;
  publisherMs: number;
}

export interface ViewerMove {
  viewerId: ViewerId;
  from: StageArn;
  to: StageArn;
  at: number;
}

export interface LegRecord {
  stageArn: StageArn;
  state: 'connecting' | 'connected' | 'failed' | 'closed';
}

export interface MediaServerRecord {
  id: ServerId;
  ip: string;
  port: number;
  state: 'online' | 'offline';
  registeredAt: number;
  lastHeartbeat: number;
  publisherOnline: boolean;
  legs: LegRecord[];
  /** Base URL (default http://ip:port). */
  url?: string;
  /** MAX_LEGS of that server; undefined: no limit. */
  maxLegs?: number;
  /** SIGTERM received: its stages move elsewhere, it takes no new one. */
  draining?: boolean;
  /** 'broadcaster': it is the origin. */
  ingest?: 'broadcaster' | 'relay' | 'none';
}

export interface ScalingEventRecord {
  id: number;
  at: number;
  action: ScalingActionKind;
  stageArn: StageArn | null;
  reason: string;
  detail?: unknown;
}

export interface Store {
  // ---- stages
  insertStage(s: StageRecord): void;
  getStage(arn: StageArn): StageWithCounts | undefined;
  listStages(): StageWithCounts[];
  setStageState(arn: StageArn, state: StageState): void;
  /** The endpoints as just read from the provider; false when the stage is no longer stored. */
  updateStageEndpoints(arn: StageArn, whipUrl: string, at: number): boolean;
  /** Removes the stage and releases its viewers; returns the released viewer ids. */
  removeStage(arn: StageArn): ViewerId[];
  /** Sets the stage's Media Server (and the one handing it over, or null); false when the stage is no longer stored. */
  setStageAssignment(arn: StageArn, mediaServerId: ServerId | null, previousMediaServerId: ServerId | null): boolean;

  // ---- seats
  /**
   * In ONE synchronous transaction: choose a stage with `pick` among the current stages and insert the viewer
   * there. Returns the stage, or undefined when `pick` finds none (nothing is written).
   */
  reserveSeat(
    viewer: { id: ViewerId; userId: string | null; now: number },
    pick: (stages: StageWithCounts[]) => StageWithCounts | undefined,
  ): StageWithCounts | undefined;
  getViewer(id: ViewerId): ViewerRecord | undefined;
  touchViewer(id: ViewerId, now: number): ViewerRecord | undefined;
  /** Frees the seat; false when the viewer is unknown. */
  releaseViewer(id: ViewerId, now: number): boolean;
  /** Frees every seat silent since before `olderThan`; returns them. */
  releaseStaleViewers(olderThan: number, now: number): ViewerRecord[];
  setViewerConnected(id: ViewerId, stageArn: StageArn, connected: boolean): boolean;
  countViewers(): number;

  // ---- media servers
  upsertMediaServer(m: MediaServerRecord): MediaServerRecord | undefined; // returns the previous record
  getMediaServer(id: ServerId): MediaServerRecord | undefined;
  updateMediaServerHeartbeat(id: ServerId, at: number, publisherOnline: boolean | undefined, legs: LegRecord[] | undefined): MediaServerRecord | undefined;
  /** Sets the fields a heartbeat may change besides the above (each left alone when undefined); undefined when unknown. */
  updateMediaServerState(id: ServerId, patch: { draining?: boolean; ingest?: 'broadcaster' | 'relay' | 'none' }): MediaServerRecord | undefined;
  /** Marks offline every online server silent since before `olderThan`; returns them. */
  markStaleMediaServersOffline(olderThan: number): MediaServerRecord[];
  /** Marks one server offline (its own shutdown); returns it, or undefined when unknown. */
  markMediaServerOffline(id: ServerId): MediaServerRecord | undefined;
  listMediaServers(): MediaServerRecord[];

  // ---- consolidation: viewer moves
  /**
   * In ONE transaction: moves up to `count` seats from `from` to `to` (the newest seats first), marking each as
   * moved (movedFrom, movedAt); `to` is checked for room and must be active. Returns the moves made.
   */
  moveViewers(from: StageArn, to: StageArn, count: number, now: number): ViewerMove[];
  /** Every move not yet completed. */
  listPendingMoves(): ViewerMove[];
  /** The viewer says it plays its new stage: the move is done. False when there was none. */
  completeMove(id: ViewerId): boolean;
  /** Forgets moves older than `olderThan` (the viewer never said it switched); returns them. */
  expireMoves(olderThan: number): ViewerMove[];

  // ---- participant usage (cost meter)
  /** Adds `samples` over [from, to) to the per-minute buckets (split at minute boundaries) and sets meteredUntil = to. */
  accrueUsage(from: number, to: number, samples: UsageSample[]): void;
  /** Until when usage has been metered; undefined before the first accrual. */
  usageMeteredUntil(): number | undefined;
  /** Buckets whose minute starts in [from, to), oldest first. */
  listUsage(from: number, to: number): UsageBucket[];

  // ---- scaling history
  addScalingEvent(e: Omit<ScalingEventRecord, 'id'>): ScalingEventRecord;
  listScalingEvents(limit: number): ScalingEventRecord[]; // newest first

  /** A cheap query that proves the database answers. */
  ping(): void;
  close(): void;
}
