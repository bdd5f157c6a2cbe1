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
  insertStage(s: StageRecord): Promise<void>;
  getStage(arn: StageArn): Promise<StageWithCounts | undefined>;
  listStages(): Promise<StageWithCounts[]>;
  setStageState(arn: StageArn, state: StageState): Promise<void>;
  /** The endpoints as just read from the provider; false when the stage is no longer stored. */
  updateStageEndpoints(arn: StageArn, whipUrl: string, at: number): Promise<boolean>;
  /** Removes the stage and releases its viewers; returns the released viewer ids. */
  removeStage(arn: StageArn): Promise<ViewerId[]>;
  /** Sets the stage's Media Server (and the one handing it over, or null); false when the stage is no longer stored. */
  setStageAssignment(arn: StageArn, mediaServerId: ServerId | null, previousMediaServerId: ServerId | null): Promise<boolean>;

  // ---- seats
  /**
   * Atomically (one SQLite transaction, one Redis Lua script): seats the viewer on the stage the seat policy picks
   * — planning.ts pickStage's rule: the FULLEST active stage that still has room, ties to the older (createdAt,
   * then arn) — and returns that stage with its new counts; undefined when no stage has room (nothing is written).
   * N API Servers sharing one store never overfill a stage. `opts.stageArn`: that stage only (if active with room).
   */
  reserveSeat(viewer: { id: ViewerId; userId: string | null; now: number }, opts?: { stageArn?: StageArn }): Promise<StageWithCounts | undefined>;
  getViewer(id: ViewerId): Promise<ViewerRecord | undefined>;
  touchViewer(id: ViewerId, now: number): Promise<ViewerRecord | undefined>;
  /** Frees the seat; false when the viewer is unknown. */
  releaseViewer(id: ViewerId, now: number): Promise<boolean>;
  /** Frees every seat silent since before `olderThan`; returns them. */
  releaseStaleViewers(olderThan: number, now: number): Promise<ViewerRecord[]>;
  setViewerConnected(id: ViewerId, stageArn: StageArn, connected: boolean): Promise<boolean>;
  countViewers(): Promise<number>;

  // ---- media servers
  upsertMediaServer(m: MediaServerRecord): Promise<MediaServerRecord | undefined>; // returns the previous record
  getMediaServer(id: ServerId): Promise<MediaServerRecord | undefined>;
  updateMediaServerHeartbeat(id: ServerId, at: number, publisherOnline: boolean | undefined, legs: LegRecord[] | undefined): Promise<MediaServerRecord | undefined>;
  /** Sets the fields a heartbeat may change besides the above (each left alone when undefined); undefined when unknown. */
  updateMediaServerState(id: ServerId, patch: { draining?: boolean; ingest?: 'broadcaster' | 'relay' | 'none' }): Promise<MediaServerRecord | undefined>;
  /** Marks offline every online server silent since before `olderThan`; returns them. */
  markStaleMediaServersOffline(olderThan: number): Promise<MediaServerRecord[]>;
  /** Marks one server offline (its own shutdown); returns it, or undefined when unknown. */
  markMediaServerOffline(id: ServerId): Promise<MediaServerRecord | undefined>;
  listMediaServers(): Promise<MediaServerRecord[]>;

  // ---- consolidation: viewer moves
  /**
   * In ONE transaction: moves up to `count` seats from `from` to `to` (the newest seats first), marking each as
   * moved (movedFrom, movedAt); `to` is checked for room and must be active. Returns the moves made.
   */
  moveViewers(from: StageArn, to: StageArn, count: number, now: number): Promise<ViewerMove[]>;
  /** Every move not yet completed. */
  listPendingMoves(): Promise<ViewerMove[]>;
  /** The viewer says it plays its new stage: the move is done. False when there was none. */
  completeMove(id: ViewerId): Promise<boolean>;
  /** Forgets moves older than `olderThan` (the viewer never said it switched); returns them. */
  expireMoves(olderThan: number): Promise<ViewerMove[]>;

  // ---- participant usage (cost meter)
  /** Adds `samples` over [from, to) to the per-minute buckets (split at minute boundaries) and sets meteredUntil = to. */
  accrueUsage(from: number, to: number, samples: UsageSample[]): Promise<void>;
  /** Until when usage has been metered; undefined before the first accrual. */
  usageMeteredUntil(): Promise<number | undefined>;
  /** Buckets whose minute starts in [from, to), oldest first. */
  listUsage(from: number, to: number): Promise<UsageBucket[]>;

  // ---- scaling history
  addScalingEvent(e: Omit<ScalingEventRecord, 'id'>): Promise<ScalingEventRecord>;
  listScalingEvents(limit: number): Promise<ScalingEventRecord[]>; // newest first

  /** A cheap query that proves the database answers. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
