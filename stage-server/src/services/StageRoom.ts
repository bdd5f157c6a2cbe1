/**
 * One stage's media: a Router fed by at most one WHIP publisher, and WHEP viewers as its sinks. The room checks
 * participant tokens (publish for WHIP, subscribe for WHEP), keeps the publisher slot, enforces the viewer safety
 * limit (503 + Retry-After), reports real joins and leaves, and keeps the stage's statistics.
 *
 * Publisher handover: a new valid publish token takes the slot make-before-break — the same participant
 * reconnecting (OBS), or another Media Server taking the stage over (the API Server gives a publish token only to the
 * stage's owner and, during a handover, its previous owner). The new session is answered at once; the old one keeps
 * feeding the Router until the new one delivers its first packet (or the old one goes), then it is ended. The Router's
 * source change keeps sequence numbers and timestamps continuous, so viewers play on. Only one POST is answered at a
 * time: another participant's POST while one is being set up gets 409.
 *
 * One seat, one session: a subscribe token (its participant id) plays at most one WHEP session at a time. A second
 * POST with the same token replaces the first make-before-break — the new session is answered at once, the old one
 * keeps playing until the new one is connected, or until `replaceAfterMs`, whichever comes first — so a viewer can
 * reconnect without a gap, but can never fill a stage. A newer POST supersedes a replacement that has not connected.
 */
import type { Logger } from 'pino';
import { bearerToken, type ParticipantTokenVerifier } from '@stagecast/service';
import {
  CapacityExceeded,
  Conflict,
  isStagecastError,
  StagecastError,
  type Capability,
  type ParticipantId,
  type StageArn,
  type StageId,
  type StageMediaStats,
} from '@stagecast/protocol';
import type { MediaHttpRequest, MediaHttpResponse, MediaRole } from './http.js';
import type { IngestSession, MediaEndpoint, MediaPlane, MediaRouter, PlaybackSession, RouterSink } from './media-plane.js';
import type { ParticipantReporter } from './ParticipantReporter.js';
import type { Room, RoomIdentity } from './room.js';

export interface StageRoomOptions {
  stage: RoomIdentity;
  plane: MediaPlane;
  tokens: Pick<ParticipantTokenVerifier, 'verify'>;
  reporter: Pick<ParticipantReporter, 'joined' | 'left'>;
  logger: Logger;
  /** Base URL of this server, without a trailing slash. */
  publicUrl: () => string;
  /** 0 = unlimited. */
  maxViewers: number;
  bindAddress?: string;
  /** Seconds a refused viewer is told to wait. */
  retryAfterSec?: number;
  /** The longest an old session of a token plays on once a newer one was answered. Default 5 s. */
  replaceAfterMs?: number;
}

export const DEFAULT_REPLACE_AFTER_MS = 5000;
/** WHEP POSTs of one token in flight at once (one set up, the rest waiting their turn); more get 429. */
const MAX_POSTS_PER_TOKEN = 4;

/**
 * What to do with a publisher that arrives: `settingUp` is the participant whose POST is being answered, `live` the
 * one feeding (or about to feed) the stage. Pure: table-tested.
 */
export function decidePublisher(slot: { settingUp?: ParticipantId; live?: ParticipantId }, incoming: ParticipantId): 'accept' | 'handover' | 'conflict' {
  if (slot.settingUp !== undefined && slot.settingUp !== incoming) return 'conflict';
  return slot.live === undefined && slot.settingUp === undefined ? 'accept' : 'handover';
}

/** Whether one more viewer fits. Pure: table-tested. */
export function viewerFits(viewers: number, pending: number, maxViewers: number): boolean {
  return maxViewers <= 0 || viewers + pending < maxViewers;
}

interface Publisher {
  session: IngestSession;
  participantId: ParticipantId;
  state: 'connecting' | 'connected';
  since: string;
}

interface Viewer {
  session: PlaybackSession;
  participantId?: ParticipantId;
  /** Set once the viewer's tracks are open. */
  sink?: RouterSink;
  joined: boolean;
  connected: boolean;
  /** A newer session of the same token was answered: this one ends when that one connects, or at this timer. */
  retireTimer?: NodeJS.Timeout;
  /** Older sessions of the same token that this one closes once connected. */
  replaces: Viewer[];
}

interface Totals {
  packetsSent: number;
  bytesSent: number;
  retransmitted: number;
  nacksUnanswered: number;
}

export class StageRoom implements Room {
  readonly stageId: StageId;
  readonly stageArn: StageArn;
  private readonly log: Logger;
  private readonly router: MediaRouter;
  private readonly whip: MediaEndpoint;
  private readonly whep: MediaEndpoint;
  private publisher: Publisher | undefined;
  /** A new publisher answered while `publisher` still feeds the Router: it takes over at its first packet. */
  private incoming: Publisher | undefined;
  private handovers = 0;
  /** Participant id holding the publisher slot while its POST is being answered. */
  private publisherReservation: ParticipantId | undefined;
  /** Sessions created by the endpoints, until the POST that made them returns and names their participant. */
  private readonly newIngest = new Map<string, IngestSession>();
  private readonly viewers = new Map<string, Viewer>();
  /** WHEP POSTs of one token run one at a time, so each later one sees the earlier one's session and replaces it. */
  private readonly postsByToken = new Map<ParticipantId, { tail: Promise<unknown>; n: number }>();
  private pendingViewers = 0;
  /** Sessions whose POST's reservation was already turned into a viewer. */
  private readonly reservationsTaken = new Set<string>();
  /** Counters of viewers that have left, so stage totals never go backwards. */
  private readonly gone: Totals = { packetsSent: 0, bytesSent: 0, retransmitted: 0, nacksUnanswered: 0 };
  private bitrate = { at: Date.now(), bytes: 0, bps: 0 };
  private closed = false;

  constructor(private readonly o: StageRoomOptions) {
    this.stageId = o.stage.stageId;
    this.stageArn = o.stage.stageArn;
    this.log = o.logger.child({ stageId: this.stageId, stageArn: this.stageArn });
    this.router = o.plane.createRouter(this.stageId);
    const path = (role: MediaRole) => `/stages/${encodeURIComponent(this.stageId)}/${role}`;
    this.whip = o.plane.createWhipEndpoint({
      basePath: path('whip'),
      endpointUrl: () => o.publicUrl() + path('whip'),
      // The old publisher lives until its successor delivers; a successor superseded before it did overlaps them both.
      maxSessions: 3,
      bindAddress: o.bindAddress,
      onSession: (s) => this.newIngest.set(s.id, s),
    });
    this.whep = o.plane.createWhepEndpoint({
      basePath: path('whep'),
      endpointUrl: () => o.publicUrl() + path('whep'),
      // Twice the seats: a seat's old session plays on while its replacement connects (the room counts seats).
      maxSessions: o.maxViewers > 0 ? 2 * o.maxViewers : 100_000,
      bindAddress: o.bindAddress,
      onSession: (s) => this.addViewer(s),
    });
  }

  async handleHttp(role: MediaRole, req: MediaHttpRequest): Promise<MediaHttpResponse> {
    if (this.closed) return errorResponse(new StagecastError('NOT_FOUND', 'stage deleted'));
    if (req.method !== 'POST') return (role === 'whip' ? this.whip : this.whep).handle(req);
    try {
      return role === 'whip' ? await this.postWhip(req) : await this.postWhep(req);
    } catch (e) {
      if (isStagecastError(e)) return errorResponse(e);
      this.log.error({ err: e, role }, 'media.request_failed');
      return errorResponse(new StagecastError('INTERNAL', 'internal error'));
    }
  }

  private async postWhip(req: MediaHttpRequest): Promise<MediaHttpResponse> {
    const claims = await this.verify(req, 'publish');
    const jti = claims.jti as ParticipantId;
    const live = this.incoming?.participantId ?? this.publisher?.participantId;
    if (decidePublisher({ ...(this.publisherReservation ? { settingUp: this.publisherReservation } : {}), ...(live ? { live } : {}) }, jti) === 'conflict') {
      throw new Conflict('another publisher is being set up on this stage');
    }
    this.publisherReservation = jti;
    let res: MediaHttpResponse;
    try {
      res = await this.whip.handle(req);
    } finally {
      this.publisherReservation = undefined;
    }
    const session = this.takeSession(this.newIngest, res);
    if (!session) return res;
    if (this.closed) {
      session.close('stage deleted');
      return errorResponse(new StagecastError('NOT_FOUND', 'stage deleted'));
    }
    const entry: Publisher = { session, participantId: jti, state: 'connecting', since: new Date().toISOString() };
    const superseded = this.incoming;
    if (this.publisher) {
      // Make-before-break: the live publisher feeds the stage until this one delivers.
      this.incoming = entry;
      if (superseded) this.endPublisher(superseded, 'superseded by a newer publisher');
      this.log.info({ participantId: jti, replacing: this.publisher.participantId }, 'publisher.handover_started');
    } else {
      this.publisher = entry;
    }
    this.wirePublisher(entry);
    this.log.info({ participantId: jti, sessionId: session.id }, 'publisher.session_created');
    return res;
  }

  private async postWhep(req: MediaHttpRequest): Promise<MediaHttpResponse> {
    const claims = await this.verify(req, 'subscribe');
    const jti = claims.jti as ParticipantId;
    const q = this.postsByToken.get(jti) ?? { tail: Promise.resolve(), n: 0 };
    if (q.n >= MAX_POSTS_PER_TOKEN) throw new StagecastError('RATE_LIMITED', 'this token is already setting up a session', { retryAfter: 1 });
    q.n++;
    this.postsByToken.set(jti, q);
    const run = q.tail.then(() => this.seatWhep(req, jti));
    q.tail = run.catch(() => undefined);
    try {
      return await run;
    } finally {
      if (--q.n === 0 && this.postsByToken.get(jti) === q) this.postsByToken.delete(jti);
    }
  }

  private async seatWhep(req: MediaHttpRequest, jti: ParticipantId): Promise<MediaHttpResponse> {
    if (this.closed) throw new StagecastError('NOT_FOUND', 'stage deleted');
    // A token that already holds a seat is replacing its session, not taking another seat.
    const reseat = [...this.viewers.values()].some((v) => v.participantId === jti);
    if (!reseat && !viewerFits(this.seatedViewers(), this.pendingViewers, this.o.maxViewers)) {
      throw new CapacityExceeded('this stage has no room for another viewer', this.o.retryAfterSec ?? 5);
    }
    this.pendingViewers++;
    let res: MediaHttpResponse | undefined;
    try {
      res = await this.whep.handle(req);
    } finally {
      // The reservation ends when the session is added (addViewer), not when this request resumes: in between,
      // another request must not count this viewer twice.
      const created = res === undefined ? undefined : sessionIdOf(res);
      if (!(created !== undefined && this.reservationsTaken.delete(created))) this.pendingViewers = Math.max(0, this.pendingViewers - 1);
    }
    const id = sessionIdOf(res);
    const viewer = id === undefined ? undefined : this.viewers.get(id);
    if (viewer) {
      viewer.participantId = jti;
      this.log.info({ participantId: jti, sessionId: id }, 'viewer.session_created');
      this.replaceOlderSessions(viewer, jti);
    }
    return res;
  }

  /** Sessions that hold a seat: a session being replaced does not. */
  private seatedViewers(): number {
    let n = 0;
    for (const v of this.viewers.values()) if (!v.retireTimer) n++;
    return n;
  }

  /** `next` is the newest session of `jti`: older connected ones retire (make-before-break), unconnected ones end now. */
  private replaceOlderSessions(next: Viewer, jti: ParticipantId): void {
    const older = [...this.viewers.values()].filter((v) => v !== next && v.participantId === jti);
    for (const old of older) {
      if (!old.connected) {
        // A replacement that never connected, superseded in turn: it hands over what it was to replace.
        next.replaces.push(...old.replaces);
        old.replaces = [];
        old.session.close('superseded by a newer session of the same token');
        continue;
      }
      next.replaces.push(old);
      if (!old.retireTimer) {
        old.retireTimer = setTimeout(() => old.session.close('replaced by a newer session of the same token (bound)'), this.o.replaceAfterMs ?? DEFAULT_REPLACE_AFTER_MS);
        old.retireTimer.unref?.();
      }
    }
    if (older.length > 0) this.log.info({ participantId: jti, sessionId: next.session.id, replacing: older.length }, 'viewer.session_replacing');
  }

  /** `v` connected: the sessions it replaces end, and its seat's "joined" carries over (no left + joined in between). */
  private completeReplacement(v: Viewer): void {
    const olds = v.replaces;
    v.replaces = [];
    for (const old of olds) {
      if (!this.viewers.has(old.session.id)) continue;
      if (old.joined) {
        old.joined = false;
        v.joined = true;
      }
      old.session.close('replaced by a newer session of the same token');
    }
  }

  private async verify(req: MediaHttpRequest, capability: Capability) {
    return this.o.tokens.verify(bearerToken(req.headers.authorization), { resource: this.stageArn, capability, label: 'stage' });
  }

  private takeSession<S>(pending: Map<string, S>, res: MediaHttpResponse): S | undefined {
    const id = sessionIdOf(res);
    const s = id === undefined ? undefined : pending.get(id);
    pending.clear(); // a session whose POST failed was never answered: the endpoint closes it
    return s;
  }

  /** `p` (the incoming publisher) takes the slot: the old one is ended, the Router's source becomes `p`. */
  private takeOver(p: Publisher): void {
    if (this.incoming !== p) return;
    this.incoming = undefined;
    const old = this.publisher;
    this.publisher = p;
    if (old) this.handovers++;
    if (p.state === 'connected') this.o.reporter.joined(this.stageArn, p.participantId, 'publisher');
    if (old) {
      this.log.info({ participantId: p.participantId, replaced: old.participantId }, 'publisher.replaced');
      this.endPublisher(old, 'handed over to a new publisher');
    }
  }

  private wirePublisher(p: Publisher): void {
    const s = p.session;
    // The source is set by whichever comes first, the first packet or 'connected': node-datachannel delivers them on
    // different threads, and packets can beat the state change. Set only at 'connected', the first packets were
    // dropped — a Media Server leg's keyframe-cache replay among them, so a new stage waited ~1 s for the next one.
    let sourceSet = false;
    const ensureSource = () => {
      if (sourceSet) return;
      sourceSet = true;
      this.router.setSource(s.sourcePort, s.params);
    };
    s.onRtp((kind, packet) => {
      if (this.incoming === p) this.takeOver(p);
      if (this.publisher !== p) return;
      ensureSource();
      this.router.pushRtp(kind, packet);
    });
    s.onRtcp((packet) => {
      if (this.publisher === p) this.router.pushRtcp(packet);
    });
    // The first keyframe of this publisher session: from then on a viewer's first frame is a replay away. Logged
    // with the time since 'connected', so a Media Server leg's keyframe-cache replay shows here (a few ms) and a
    // stage that waits for the broadcaster's next keyframe shows too (up to a GOP).
    let connectedAt = NaN;
    const onKeyframe = (): void => {
      if (this.incoming === p) return; // the old publisher's keyframe: this one has not taken over yet
      this.router.off('keyframe', onKeyframe);
      if (this.publisher !== p) return;
      const sinceConnectedMs = connectedAt === connectedAt ? Date.now() - connectedAt : undefined;
      this.log.info({ participantId: p.participantId, sinceConnectedMs }, 'publisher.first_keyframe');
    };
    this.router.on('keyframe', onKeyframe);
    s.on('connected', () => {
      if (this.incoming === p) {
        // Connected, but the stage keeps the old publisher's media until this one's first packet.
        p.state = 'connected';
        connectedAt = Date.now();
        return;
      }
      if (this.publisher !== p) return;
      p.state = 'connected';
      connectedAt = Date.now();
      ensureSource();
      this.o.reporter.joined(this.stageArn, p.participantId, 'publisher');
      this.log.info({ participantId: p.participantId }, 'publisher.connected');
    });
    s.on('closed', (reason) => {
      this.router.off('keyframe', onKeyframe);
      if (this.incoming === p) {
        this.incoming = undefined;
        this.log.info({ participantId: p.participantId, reason }, 'publisher.handover_failed');
        return;
      }
      if (this.publisher !== p) return;
      this.publisher = undefined;
      this.router.clearSource();
      if (p.state === 'connected') this.o.reporter.left(this.stageArn, p.participantId, 'publisher');
      this.log.info({ participantId: p.participantId, reason }, 'publisher.disconnected');
      // The old publisher went first: its successor takes the slot now (the source is set at its first packet).
      const next = this.incoming;
      if (next) this.takeOver(next);
    });
  }

  private endPublisher(p: Publisher, reason: string): void {
    if (p.state === 'connected') this.o.reporter.left(this.stageArn, p.participantId, 'publisher');
    p.session.close(reason);
  }

  private addViewer(session: PlaybackSession): void {
    if (this.pendingViewers > 0) {
      this.pendingViewers--;
      this.reservationsTaken.add(session.id);
    }
    const v: Viewer = { session, joined: false, connected: false, replaces: [] };
    this.viewers.set(session.id, v);
    // A viewer becomes a sink as soon as its tracks can carry packets, publisher or not: it then gets the cached
    // keyframe at once, and media whenever a publisher arrives. Added any earlier, the replay would be lost.
    session.onWritable(() => {
      if (this.viewers.get(session.id) !== v || this.closed) return;
      const sink = this.router.addSink(session.sinkPort);
      v.sink = sink;
      session.onRtcp((packet) => sink.handleRtcp(packet));
    });
    session.on('connected', () => {
      if (!this.viewers.has(session.id)) return;
      v.connected = true;
      this.completeReplacement(v);
      if (v.joined || !v.participantId) return;
      v.joined = true;
      this.o.reporter.joined(this.stageArn, v.participantId);
      this.log.info({ participantId: v.participantId }, 'viewer.connected');
    });
    session.on('closed', (reason) => this.removeViewer(session.id, reason));
  }

  private removeViewer(id: string, reason: string): void {
    const v = this.viewers.get(id);
    if (!v) return;
    this.viewers.delete(id);
    clearTimeout(v.retireTimer);
    if (v.sink) {
      const st = v.sink.stats();
      this.gone.packetsSent += st.packetsSent;
      this.gone.bytesSent += st.bytesSent;
      this.gone.retransmitted += st.retransmitted;
      this.gone.nacksUnanswered += st.nacksReceived - st.retransmitted;
      v.sink.close();
    }
    if (v.joined && v.participantId) this.o.reporter.left(this.stageArn, v.participantId);
    this.log.info({ participantId: v.participantId, reason }, 'viewer.disconnected');
  }

  stats(): StageMediaStats {
    const src = this.router.sourceStats();
    let packetsSent = this.gone.packetsSent;
    let bytesSent = this.gone.bytesSent;
    let retransmitted = this.gone.retransmitted;
    let nacksUnanswered = this.gone.nacksUnanswered;
    for (const v of this.viewers.values()) {
      if (!v.sink) continue;
      const st = v.sink.stats();
      packetsSent += st.packetsSent;
      bytesSent += st.bytesSent;
      retransmitted += st.retransmitted;
      nacksUnanswered += st.nacksReceived - st.retransmitted;
    }
    const p = this.publisher;
    return {
      stageId: this.stageId,
      stageArn: this.stageArn,
      publisher: p ? { state: p.state, participantId: p.participantId, since: p.since } : { state: 'offline' },
      viewers: this.viewers.size,
      bitrateBps: p ? this.bitrateOf(src.bytesReceived, src.bitrateBps) : 0,
      packetsReceived: src.packetsReceived,
      bytesReceived: src.bytesReceived,
      keyframesReceived: src.keyframesReceived,
      packetsLost: Math.max(0, src.lost),
      keyframeRequestsSent: src.plisSent,
      nacksSent: src.nacksSent,
      packetsRecovered: src.recovered,
      packetsLostForGood: src.lostForGood,
      packetsSent,
      bytesSent,
      retransmitted,
      nacksUnanswered,
      publisherHandovers: this.handovers,
    };
  }

  /** The router's own estimate when it has one; else bytes over the time since the last reading. */
  private bitrateOf(bytes: number, routerBps: number): number {
    if (routerBps > 0) return Math.round(routerBps);
    const now = Date.now();
    const dt = now - this.bitrate.at;
    if (dt >= 1000) {
      this.bitrate = { at: now, bytes, bps: Math.max(0, ((bytes - this.bitrate.bytes) * 8 * 1000) / dt) };
    }
    return Math.round(this.bitrate.bps);
  }

  async close(reason: string): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const p = this.publisher;
    const next = this.incoming;
    this.publisher = undefined;
    this.incoming = undefined;
    if (p) this.endPublisher(p, reason);
    if (next) this.endPublisher(next, reason);
    for (const id of [...this.viewers.keys()]) {
      const v = this.viewers.get(id)!;
      this.removeViewer(id, reason);
      v.session.close(reason);
    }
    await Promise.allSettled([this.whip.close(), this.whep.close()]);
    this.router.close();
    this.log.info({ reason }, 'room.closed');
  }
}

/** The session id is the last path segment of the 201's Location. */
function sessionIdOf(res: MediaHttpResponse): string | undefined {
  if (res.status !== 201) return undefined;
  const loc = res.headers['location'] ?? res.headers['Location'];
  const l = Array.isArray(loc) ? loc[0] : loc;
  if (!l) return undefined;
  const path = l.split('?')[0]!;
  const seg = path.slice(path.lastIndexOf('/') + 1);
  return seg ? decodeURIComponent(seg) : undefined;
}

function errorResponse(e: StagecastError): MediaHttpResponse {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (e.code === 'UNAUTHORIZED') headers['www-authenticate'] = 'Bearer';
  if (e.retryAfter !== undefined) headers['retry-after'] = String(e.retryAfter);
  return { status: e.status, headers, body: JSON.stringify(e.toBody()) };
}
