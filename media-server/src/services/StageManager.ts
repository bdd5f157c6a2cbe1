/**
 * Keeps one WHIP leg per stage this server publishes into, started as soon as the stage exists (before any
 * broadcaster), and feeds the broadcaster's session (or the relay from the origin) into the Router that fans out to
 * every leg. Stage events from the API Server add and remove legs at once; a full sync (at start, after a WebSocket
 * reconnect, and every SYNC_INTERVAL_MS) repairs anything missed. A leg due for rotation is replaced
 * make-before-break.
 *
 * Ownership: an API Server that assigns stages (its stage list names `mediaServerId`, or it sends stage_assigned)
 * gets a leg from this server only for the stages it owns or is handing over (`previousMediaServerId`). An older API
 * Server names no owner: every stage gets a leg, as with one Media Server. A token refused with 409 means the stage
 * is not ours (any more): the leg is dropped, not retried.
 */
import type { Origin, StageArn, StagesResponse, StageSummary, TokenResponse } from '@stagecast/protocol';
import type { MediaKind, SourceParams, SourcePort } from '@stagecast/rtc';
import type { Logger } from '../logger.js';
import { httpStatusOf, type IngestSession, type LegConnector } from '../media/ports.js';
import type { APIClientEvents, HeartbeatPayload, StageAssignedEvent } from './APIClientService.js';
import { StageLeg, type LegTiming, type SinkHostPort, type StageLegStats } from './StageLeg.js';

/** What the StageManager needs of the API client. */
export interface StageApi {
  getStages(): Promise<StagesResponse>;
  getStageToken(stageArn: StageArn, opts?: { whipFailed?: boolean }): Promise<TokenResponse>;
  on<K extends keyof APIClientEvents>(event: K, listener: (...args: APIClientEvents[K]) => void): unknown;
  off<K extends keyof APIClientEvents>(event: K, listener: (...args: APIClientEvents[K]) => void): unknown;
}

/** What the StageManager needs of the Router. */
export interface RouterPort extends SinkHostPort {
  setSource(port: SourcePort, params: SourceParams): void;
  clearSource(): void;
  pushRtp(kind: MediaKind, packet: Uint8Array): void;
  pushRtcp(packet: Uint8Array): void;
  on(event: 'keyframe', listener: (e: { at: number }) => void): unknown;
  off(event: 'keyframe', listener: (e: { at: number }) => void): unknown;
}

export interface StageManagerDeps {
  /** This server's id: a stage is ours when the API Server names it as owner or previous owner. */
  serverId: string;
  api: StageApi;
  router: RouterPort;
  connect: LegConnector;
  log: Logger;
  timing: LegTiming;
  syncIntervalMs: number;
  bindAddress?: string;
  random?: () => number;
  now?: () => number;
  /** A leg was added, connected or dropped, the origin changed, or the router's feed changed: worth an immediate heartbeat / a relay check. */
  onChange?: (what: 'leg' | 'origin' | 'feed') => void;
}

/** How a drain ended (StageManager.waitForHandovers). */
export type DrainOutcome = 'moved' | 'nowhere' | 'timeout' | 'not-assigning';

/** Does the API Server assign stages? Unknown until its stage list or a stage_assigned event says. */
type OwnershipMode = 'unknown' | 'assigned' | 'all';

interface StageEntry {
  arn: StageArn;
  leg: StageLeg;
  /** The replacement being brought up while `leg` still serves (make-before-break). */
  next?: StageLeg;
}

export interface StageManagerStats {
  publisherOnline: boolean;
  publisherSince?: string;
  stagesExpected: number;
  stagesConnected: number;
  lastSyncAt?: string;
  lastSyncOk?: boolean;
  syncs: number;
  syncFailures: number;
  legFailures: number;
  rotations: number;
  /** Legs dropped because the API Server gave the stage to another Media Server (stage_assigned, sync or a 409). */
  released: number;
  ownership: OwnershipMode;
  origin?: Origin | null;
  legs: StageLegStats[];
}

export class StageManager {
  private readonly d: StageManagerDeps;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly stages = new Map<StageArn, StageEntry>();
  /** Last stage event per ARN (a counter): a sync that started before the event must not undo it. */
  private readonly lastEvent = new Map<StageArn, number>();
  private eventSeq = 0;
  private legSeq = 0;
  private expected = 0;
  private syncTimer: NodeJS.Timeout | undefined;
  private syncing: Promise<void> | undefined;
  private syncAgain = false;
  private lastSyncAt = NaN;
  private lastSyncOk: boolean | undefined;
  private syncs = 0;
  private syncFailures = 0;
  private legFailures = 0;
  private rotations = 0;
  private initialized = false;
  private stopped = false;
  private publisher: IngestSession | undefined;
  private publisherSince = NaN;
  private publishingLogged = false;
  private publisherKind: 'broadcaster' | 'relay' = 'broadcaster';
  private mode: OwnershipMode = 'unknown';
  private released = 0;
  /** The origin from the API Server: undefined = not told (older API Server), null = none. */
  private origin: Origin | null | undefined;
  private originEventSeq = 0;
  private drainWaiters: Array<() => void> = [];
  /** Each stage's owner as last told by the API Server (null: no Media Server can take it). */
  private readonly owners = new Map<StageArn, string | null>();

  private readonly onCreated = (e: { stageArn: StageArn }): void => {
    // An API Server that assigns stages follows stage_created with stage_assigned: the leg waits for that.
    if (this.mode === 'assigned') return;
    this.lastEvent.set(e.stageArn, ++this.eventSeq);
    this.connectToStage(e.stageArn);
  };
  private readonly onAssigned = (e: StageAssignedEvent): void => {
    this.mode = 'assigned';
    this.lastEvent.set(e.stageArn, ++this.eventSeq);
    this.owners.set(e.stageArn, e.serverId);
    if (this.isMine(e.serverId, e.previousServerId)) this.connectToStage(e.stageArn);
    else if (this.stages.has(e.stageArn)) this.release(e.stageArn, 'assigned to another media server');
    this.wakeDrainWaiters();
  };
  private readonly onOrigin = (e: { origin: Origin | null }): void => {
    this.originEventSeq++;
    this.setOrigin(e.origin);
  };
  private readonly onDeleted = (e: { stageArn: StageArn }): void => {
    this.lastEvent.set(e.stageArn, ++this.eventSeq);
    this.owners.delete(e.stageArn);
    void this.disconnectFromStage(e.stageArn);
  };
  private readonly onResync = (): void => {
    void this.syncAllStages();
  };
  private readonly onKeyframe = (): void => {
    if (this.publishingLogged || !this.publisher) return;
    this.publishingLogged = true;
    this.log.info({ sessionId: this.publisher.id, stages: this.stages.size }, 'publishing.started');
  };

  constructor(d: StageManagerDeps) {
    this.d = d;
    this.log = d.log.child({ component: 'stage-manager' });
    this.now = d.now ?? Date.now;
  }

  /**
   * Subscribes to the API Server's stage events. The seed's order: register → initialize → WebSocket → sync; the
   * client's 'resync' on every opening of the socket then closes the gap between that sync and the socket.
   */
  initialize(): void {
    if (this.initialized) return;
    this.initialized = true;
    this.d.api.on('stage_created', this.onCreated);
    this.d.api.on('stage_deleted', this.onDeleted);
    this.d.api.on('stage_assigned', this.onAssigned);
    this.d.api.on('origin_changed', this.onOrigin);
    this.d.api.on('resync', this.onResync);
    this.d.router.on('keyframe', this.onKeyframe);
  }

  private isMine(owner: string | null | undefined, previous: string | null | undefined): boolean {
    return owner === this.d.serverId || previous === this.d.serverId;
  }

  /** The stage is another server's now: close our leg (no retry) and say so. */
  private release(stageArn: StageArn, reason: string): void {
    if (!this.stages.has(stageArn)) return;
    this.released++;
    this.log.info({ stageArn, reason }, 'stage.released');
    void this.disconnectFromStage(stageArn, reason);
  }

  private setOrigin(origin: Origin | null): void {
    const same = origin === this.origin || (origin && this.origin && origin.serverId === this.origin.serverId && origin.url === this.origin.url);
    this.origin = origin;
    if (same) return;
    this.log.info({ origin: origin ? origin.serverId : null }, 'origin.changed');
    this.d.onChange?.('origin');
  }

  /** The origin as last told by the API Server (undefined: an older API Server that names none). */
  get currentOrigin(): Origin | null | undefined {
    return this.origin;
  }

  /** Legs for new stages, none for gone ones. Concurrent calls coalesce into one more run. Never throws. */
  syncAllStages(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.syncing) {
      this.syncAgain = true;
      return this.syncing;
    }
    this.syncing = (async () => {
      do {
        this.syncAgain = false;
        await this.syncOnce();
      } while (this.syncAgain && !this.stopped);
    })().finally(() => {
      this.syncing = undefined;
    });
    return this.syncing;
  }

  private async syncOnce(): Promise<void> {
    const startedAt = this.eventSeq;
    const originSeq = this.originEventSeq;
    this.syncs++;
    let res: StagesResponse;
    try {
      res = await this.d.api.getStages();
    } catch (err) {
      this.syncFailures++;
      if (this.lastSyncOk !== false) this.log.warn({ err: (err as Error).message }, 'stages.sync_failed');
      this.lastSyncOk = false;
      return; // keep every leg: the API Server being away is no reason to stop forwarding
    }
    if (this.stopped) return;
    const list: StageSummary[] = res.stages;
    // An API Server that assigns stages names an origin (null included) and every stage's owner.
    const assigning = res.origin !== undefined || list.some((s) => s.mediaServerId !== undefined);
    if (assigning) this.mode = 'assigned';
    else if (this.mode === 'unknown') this.mode = 'all';
    if (res.origin !== undefined && this.originEventSeq === originSeq) this.setOrigin(res.origin);
    const ours = (s: StageSummary) => s.mediaServerId === undefined || this.isMine(s.mediaServerId, s.previousMediaServerId);
    const fresh = (arn: StageArn) => (this.lastEvent.get(arn) ?? 0) <= startedAt;
    const listed = new Set(list.map((st) => st.stageArn));
    for (const arn of [...this.owners.keys()]) if (!listed.has(arn) && fresh(arn)) this.owners.delete(arn);
    for (const st of list) if (st.mediaServerId !== undefined && fresh(st.stageArn)) this.owners.set(st.stageArn, st.mediaServerId);
    const want = new Set(list.filter((s) => s.state !== 'draining' && ours(s)).map((s) => s.stageArn));
    const added: StageArn[] = [];
    const removed: StageArn[] = [];
    for (const arn of want) {
      if (!this.stages.has(arn) && fresh(arn)) {
        this.connectToStage(arn);
        added.push(arn);
      }
    }
    for (const arn of [...this.stages.keys()]) {
      if (!want.has(arn) && fresh(arn)) {
        const other = list.find((s) => s.stageArn === arn);
        if (other && other.state !== 'draining') this.release(arn, 'assigned to another media server');
        else void this.disconnectFromStage(arn);
        removed.push(arn);
      }
    }
    // Events older than this sync are reflected in the list it got: forget them (bounded memory).
    for (const [arn, seq] of this.lastEvent) if (seq <= startedAt) this.lastEvent.delete(arn);
    this.expected = want.size;
    this.lastSyncAt = this.now();
    this.lastSyncOk = true;
    this.log.info({ expected: want.size, legs: this.stages.size, added: added.length, removed: removed.length }, 'stages.synced');
  }

  /** Idempotent: starts the stage's leg unless it has one. */
  connectToStage(stageArn: StageArn): void {
    if (this.stopped || this.stages.has(stageArn)) return;
    const entry: StageEntry = { arn: stageArn, leg: this.newLeg(stageArn) };
    this.stages.set(stageArn, entry);
    this.expected = Math.max(this.expected, this.stages.size);
    this.wire(entry, entry.leg);
    entry.leg.start();
    this.d.onChange?.('leg');
  }

  /** Closes the stage's leg(s) at once; resolves when their WHIP sessions are DELETEd. */
  async disconnectFromStage(stageArn: StageArn, reason = 'stage deleted'): Promise<void> {
    const entry = this.stages.get(stageArn);
    if (!entry) return;
    this.stages.delete(stageArn);
    this.expected = Math.max(0, this.expected - 1);
    const closing = [entry.leg.close(reason)];
    if (entry.next) closing.push(entry.next.close(reason));
    this.d.onChange?.('leg');
    this.owners.delete(stageArn);
    this.wakeDrainWaiters();
    await Promise.all(closing);
  }

  /** A token request answered 409: the API Server gives this stage to other Media Servers. Drop the leg, no retry. */
  private async token(arn: StageArn, opts?: { whipFailed?: boolean }): Promise<TokenResponse> {
    try {
      return await this.d.api.getStageToken(arn, opts);
    } catch (err) {
      if (httpStatusOf(err) === 409) {
        this.lastEvent.set(arn, ++this.eventSeq);
        this.release(arn, 'token refused: not assigned to this media server');
      }
      throw err;
    }
  }

  private newLeg(stageArn: StageArn): StageLeg {
    const legId = `leg${++this.legSeq}`;
    return new StageLeg({
      stageArn,
      legId,
      getToken: (arn, opts) => this.token(arn, opts),
      connect: this.d.connect,
      router: this.d.router,
      log: this.d.log,
      timing: this.d.timing,
      ...(this.d.bindAddress ? { bindAddress: this.d.bindAddress } : {}),
      ...(this.d.random ? { random: this.d.random } : {}),
      ...(this.d.now ? { now: this.d.now } : {}),
    });
  }

  private wire(entry: StageEntry, leg: StageLeg): void {
    leg.on('failed', () => {
      this.legFailures++;
    });
    leg.on('rotate-due', () => this.rotate(entry, leg));
    leg.on('connected', () => this.d.onChange?.('leg'));
  }

  /** Make-before-break: a new participant comes up, then the old one goes. */
  private rotate(entry: StageEntry, old: StageLeg): void {
    if (this.stopped || this.stages.get(entry.arn) !== entry || entry.leg !== old || entry.next) return;
    const next = this.newLeg(entry.arn);
    entry.next = next;
    this.wire(entry, next);
    next.on('connected', () => {
      if (entry.next !== next) return;
      entry.next = undefined;
      entry.leg = next;
      this.rotations++;
      this.log.info({ stageArn: entry.arn, oldLeg: old.legId, newLeg: next.legId }, 'stage.rotated');
      void old.close('rotated');
    });
    next.start();
  }

  // ---- the broadcaster --------------------------------------------------------------------------

  /**
   * A broadcaster's session (new, or replacing one), or the relay from the origin: the router's source becomes it;
   * legs are untouched. The Router keeps sequence numbers and timestamps continuous across the change.
   */
  onPublisherConnected(session: IngestSession, kind: 'broadcaster' | 'relay' = 'broadcaster'): void {
    if (this.stopped) return;
    const router = this.d.router;
    this.publisher = session;
    this.publisherKind = kind;
    this.publisherSince = this.now();
    this.publishingLogged = false;
    router.setSource(session.sourcePort, session.params);
    // One guard per packet: a replaced session that still delivers must not feed the router.
    session.onRtp((kind, packet) => {
      if (this.publisher === session) router.pushRtp(kind, packet);
    });
    session.onRtcp((packet) => {
      if (this.publisher === session) router.pushRtcp(packet);
    });
    this.log.info({ sessionId: session.id, kind, audio: !!session.params.audio, video: !!session.params.video, stages: this.stages.size }, 'publisher.connected');
    this.d.onChange?.('feed');
  }

  /** The broadcaster went away: the router drops its source, every leg stays up for its return. */
  onPublisherDisconnected(session?: IngestSession): void {
    if (!this.publisher || (session && session !== this.publisher)) return;
    const id = this.publisher.id;
    this.publisher = undefined;
    this.publisherSince = NaN;
    this.d.router.clearSource();
    this.log.info({ sessionId: id }, 'publisher.disconnected');
    this.d.onChange?.('feed');
  }

  /** The broadcaster itself feeds the router (not a relay). */
  get publisherOnline(): boolean {
    return this.publisher !== undefined && this.publisherKind === 'broadcaster';
  }

  /** What feeds the router now. */
  get feed(): 'broadcaster' | 'relay' | 'none' {
    return this.publisher ? this.publisherKind : 'none';
  }

  get legCount(): number {
    return this.stages.size;
  }

  /**
   * Drain: waits until the API Server has moved every stage of this server elsewhere and each handover ended
   * ('moved': no leg left), or until each stage still held has no owner at all — no other Media Server can take it,
   * so there is nothing to wait for ('nowhere') — or `timeoutMs` ('timeout'). With an API Server that does not assign
   * stages nothing moves: 'not-assigning' at once.
   */
  waitForHandovers(timeoutMs: number): Promise<DrainOutcome> {
    const now = this.drainOutcome();
    if (now) return Promise.resolve(now);
    if (this.mode !== 'assigned') return Promise.resolve('not-assigning');
    if (timeoutMs <= 0) return Promise.resolve('timeout');
    return new Promise<DrainOutcome>((resolve) => {
      const done = (v: DrainOutcome) => {
        clearTimeout(t);
        this.drainWaiters = this.drainWaiters.filter((w) => w !== check);
        resolve(v);
      };
      const check = () => {
        const o = this.drainOutcome();
        if (o) done(o);
      };
      const t = setTimeout(() => done('timeout'), timeoutMs);
      this.drainWaiters.push(check);
    });
  }

  private drainOutcome(): 'moved' | 'nowhere' | undefined {
    if (this.stages.size === 0) return 'moved';
    if (this.mode !== 'assigned') return undefined;
    for (const arn of this.stages.keys()) if (this.owners.get(arn) !== null) return undefined;
    return 'nowhere';
  }

  /** Something a drain waits on changed: each waiter checks whether it is done. */
  private wakeDrainWaiters(): void {
    for (const check of [...this.drainWaiters]) check();
  }

  // ---- lifecycle and reporting ------------------------------------------------------------------

  startPeriodicSync(intervalMs = this.d.syncIntervalMs): void {
    if (this.syncTimer || this.stopped) return;
    this.syncTimer = setInterval(() => void this.syncAllStages(), intervalMs);
    this.syncTimer.unref?.();
  }

  stopPeriodicSync(): void {
    clearInterval(this.syncTimer);
    this.syncTimer = undefined;
  }

  /** What the heartbeat says: the serving leg of each stage. */
  heartbeatPayload(): HeartbeatPayload {
    return { publisherOnline: this.publisherOnline, legs: [...this.stages.values()].map((e) => ({ stageArn: e.arn, state: e.leg.state })) };
  }

  /** Whether the API Server assigns stages (learned from its stage list or a stage_assigned event). */
  get ownership(): OwnershipMode {
    return this.mode;
  }

  stageArns(): StageArn[] {
    return [...this.stages.keys()];
  }

  legFor(stageArn: StageArn): StageLeg | undefined {
    return this.stages.get(stageArn)?.leg;
  }

  stats(): StageManagerStats {
    const legs: StageLegStats[] = [];
    let connected = 0;
    for (const e of this.stages.values()) {
      legs.push(e.leg.stats());
      if (e.leg.state === 'connected') connected++;
      if (e.next) legs.push(e.next.stats());
    }
    const s: StageManagerStats = {
      publisherOnline: this.publisherOnline,
      stagesExpected: Math.max(this.expected, this.stages.size),
      stagesConnected: connected,
      syncs: this.syncs,
      syncFailures: this.syncFailures,
      legFailures: this.legFailures,
      rotations: this.rotations,
      released: this.released,
      ownership: this.mode,
      legs,
    };
    if (this.origin !== undefined) s.origin = this.origin;
    if (this.publisherSince === this.publisherSince) s.publisherSince = new Date(this.publisherSince).toISOString();
    if (this.lastSyncAt === this.lastSyncAt) s.lastSyncAt = new Date(this.lastSyncAt).toISOString();
    if (this.lastSyncOk !== undefined) s.lastSyncOk = this.lastSyncOk;
    return s;
  }

  /** Stops syncing and closes every leg (each DELETEs its WHIP session). Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.stopPeriodicSync();
    this.d.api.off('stage_created', this.onCreated);
    this.d.api.off('stage_deleted', this.onDeleted);
    this.d.api.off('stage_assigned', this.onAssigned);
    this.d.api.off('origin_changed', this.onOrigin);
    this.d.api.off('resync', this.onResync);
    this.d.router.off('keyframe', this.onKeyframe);
    const closing: Promise<void>[] = [];
    for (const e of this.stages.values()) {
      closing.push(e.leg.close('shutdown'));
      if (e.next) closing.push(e.next.close('shutdown'));
    }
    this.stages.clear();
    this.wakeDrainWaiters();
    this.publisher = undefined;
    await Promise.all(closing);
  }
}
