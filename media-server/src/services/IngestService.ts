/**
 * The broadcaster's slot: one at a time. A POST from anyone else while a broadcaster is live is a
 * Conflict (409); a POST that presents the SAME token replaces the live session (OBS reconnects with a
 * new POST, and its old session may not be dead yet). The replacement is make-before-break: the old session
 * stays the router's source until the new one's first RTP packet, then it is closed; a replacement that dies
 * before delivering anything leaves the old one in place. A session that has delivered no RTP for
 * `silenceTakeoverMs` (INGEST_SILENCE_TAKEOVER_S) no longer holds the slot against a broadcaster with another token:
 * a crashed browser or OBS whose connection has not timed out yet (consent freshness: ~30 s) does not lock its
 * broadcaster out when it comes back with a freshly minted token. POSTs are serialized, so the session the endpoint
 * hands over during a POST belongs to that POST's broadcaster.
 *
 * IVS rules (see IvsRules.ts): with an IvsPolicy, every session is put behind an IvsGate. When the rules
 * are enforced, an offer IVS would refuse is answered 422 at once, and a stream whose bitstream breaks a refusing
 * rule is ended (the legs stay up, as after any broadcaster drop) and its token is refused with the same 422 for
 * REFUSAL_HOLD (IVS_REFUSAL_HOLD_S): OBS reconnects at once, and that POST is where OBS can show the reason.
 * After the hold a new POST is admitted and judged again by its bitstream.
 */
import { Conflict } from '@stagecast/protocol';
import { checkIvsRules, type H264StreamReport } from '@stagecast/rtc';
import type { Logger } from '../logger.js';
import type { IngestSession } from '../media/ports.js';
import type { IngestAuth, IngestPrincipal } from './IngestAuth.js';
import { RtpWatch } from './RtpWatch.js';
import { IvsGate } from './IvsGate.js';
import type { IvsPolicy } from './IvsPolicy.js';
import { checkOfferForIvs, isRefusing, refusalError, refusalMessage, type IvsRulesMode, type IvsRuleViolation } from './IvsRules.js';

export interface PublisherSink {
  onPublisherConnected(session: IngestSession): void;
  onPublisherDisconnected(session?: IngestSession): void;
  /** What feeds the router now: a broadcaster arriving while a relay from the origin feeds it replaces the relay make-before-break. */
  readonly feed?: 'broadcaster' | 'relay' | 'none';
}

interface Live {
  session: IngestSession;
  /** What the publisher sink is given: the session (or its IvsGate) behind an RtpWatch. */
  forward: RtpWatch;
  gate?: IvsGate;
  /** Handed to the publisher sink (the router feeds from it). False while it replaces `previous`. */
  switched: boolean;
  /** The session this one replaces, still the router's source until this one's first packet. */
  previous?: Live;
  closed: boolean;
  principal: IngestPrincipal;
  since: number;
  /** Warning codes already logged for this session. */
  warned: Set<string>;
  refused?: boolean;
}

interface Refusal {
  until: number;
  violations: IvsRuleViolation[];
}

export interface IvsIngestStats {
  mode: IvsRulesMode;
  enforcing: boolean;
  ivsTargets: number;
  refusals: number;
  refusalsByCode: Record<string, number>;
  /** POSTs answered 422 because their token's stream was refused moments ago. */
  refusedReconnects: number;
  warnings: number;
  warningsByCode: Record<string, number>;
  lastRefusal?: { at: string; codes: string[]; message: string; sessionId?: string; until?: string };
}

const MAX_REMEMBERED_REFUSALS = 1000;

export interface IngestStats {
  live: boolean;
  sessionId?: string;
  since?: string;
  auth?: 'static' | 'jwt';
  sessions: number;
  replacements: number;
  /** Silent sessions ended for a broadcaster with another token. */
  takeovers: number;
  conflicts: number;
  refused: number;
  ivs?: IvsIngestStats;
}

export class IngestService {
  private live: Live | undefined;
  private claim: IngestPrincipal | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private sessions = 0;
  private replacements = 0;
  private takeovers = 0;
  private conflicts = 0;
  private refused = 0;
  private stopped = false;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly refusals = new Map<string, Refusal>();
  private readonly ivsCounts = { refusals: 0, refusedReconnects: 0, warnings: 0, refusalsByCode: {} as Record<string, number>, warningsByCode: {} as Record<string, number> };
  private lastRefusal: IvsIngestStats['lastRefusal'];
  private ivsTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly d: {
      auth: IngestAuth;
      publisher: PublisherSink;
      log: Logger;
      now?: () => number;
      /** IVS rules; without it, no stream is inspected or refused here. */
      ivs?: IvsPolicy;
      /** How long a refused token's POSTs are answered 422 (ms). Default 30 s. */
      refusalHoldMs?: number;
      /** The router's H.264 report of the live stream (bitrate, keyframe interval), for warnings. */
      streamReport?: () => H264StreamReport | undefined;
      /** A live session silent this long (ms) may be taken over by another broadcaster. Default 5 s. */
      silenceTakeoverMs?: number;
    },
  ) {
    this.log = d.log.child({ component: 'ingest' });
    this.now = d.now ?? Date.now;
  }

  /** Starts the once-a-second IVS checks (enforcement changes, bitrate / keyframe warnings). */
  start(intervalMs = 1000): void {
    if (!this.d.ivs || this.ivsTimer || this.stopped) return;
    this.d.ivs.refresh();
    this.ivsTimer = setInterval(() => this.checkIvs(), intervalMs);
    this.ivsTimer.unref?.();
  }

  /** Verifies a broadcaster's Authorization header. Throws Unauthorized / Forbidden / ProviderError. */
  async authorize(header: string | string[] | undefined): Promise<IngestPrincipal> {
    try {
      return await this.d.auth.authorizeHeader(header);
    } catch (err) {
      this.refused++;
      throw err;
    }
  }

  /**
   * Runs one session-creating POST for `principal` (the endpoint's handle()), serialized with every
   * other POST. Throws Conflict when another broadcaster is live.
   */
  admit<T>(principal: IngestPrincipal, run: () => Promise<T>, offer?: string): Promise<T> {
    const next = this.queue.then(async () => {
      if (this.stopped) throw new Conflict('the media server is stopping');
      this.checkIvsOffer(principal, offer);
      const live = this.live;
      if (live && live.principal.tokenHash !== principal.tokenHash) {
        const silentMs = this.silentMs(live);
        if (silentMs < (this.d.silenceTakeoverMs ?? 5000)) {
          this.conflicts++;
          this.log.warn({ liveSession: live.session.id }, 'publisher.conflict');
          throw new Conflict('another broadcaster is live');
        }
        // The live session has gone quiet (a crashed client whose connection has not timed out): it loses the slot.
        this.takeovers++;
        this.log.warn({ oldSession: live.session.id, silentMs: Math.round(silentMs) }, 'publisher.taken_over');
        this.endLive('taken over: silent');
      }
      this.claim = principal;
      try {
        return await run();
      } finally {
        this.claim = undefined;
      }
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** The endpoint's onSession: called while admit() runs the POST that created it. */
  onSession(session: IngestSession): void {
    const principal = this.claim;
    if (!principal || this.stopped) {
      // Not created through admit() (cannot happen with the routes as written): refuse it.
      this.log.error({ sessionId: session.id }, 'publisher.unclaimed_session');
      session.close();
      return;
    }
    this.sessions++;
    // A replacement of a replacement: the one that never delivered is dropped, the one feeding the router stays.
    let old = this.live;
    if (old && !old.switched) {
      const pending = old;
      old = pending.previous;
      pending.previous = undefined;
      pending.session.close('replaced before it delivered');
    }
    const ivs = this.d.ivs;
    const gate = ivs?.inspecting ? new IvsGate(session, ivs, (g, v) => this.onViolation(g, v)) : undefined;
    const inner = gate ?? session;
    const postedAt = this.now();
    const replacing = old && !old.closed ? old : undefined;
    // Make-before-break: the legs keep the old session's media (or the relay's, on a Media Server that pulled from the
    // origin) until the new one delivers, then switch at once. (Switching at the POST froze every stage for the
    // ~0.4 s the new session needed to connect.)
    const deferred = replacing !== undefined || this.d.publisher.feed === 'relay';
    const onFirst = deferred
      ? () => {
          if (this.live !== live || live.closed || live.switched) return;
          live.switched = true;
          live.previous = undefined;
          this.d.publisher.onPublisherConnected(live.forward);
          if (replacing) this.replaced(replacing, live, this.now() - postedAt);
        }
      : undefined;
    const live: Live = {
      session,
      forward: new RtpWatch(inner, onFirst, this.now),
      principal,
      since: postedAt,
      warned: new Set(),
      switched: false,
      closed: false,
      ...(gate ? { gate } : {}),
      ...(replacing ? { previous: replacing } : {}),
    };
    this.live = live;
    session.on('closed', () => this.onClosed(live));
    if (!deferred) {
      live.switched = true;
      this.d.publisher.onPublisherConnected(live.forward);
      if (old) this.replaced(old, live, 0);
    }
  }

  /** How long the session feeding the router (or about to) has been silent: since its last RTP, or since its POST. */
  private silentMs(live: Live): number {
    const now = this.now();
    const quiet = (l: Live) => now - (l.forward.lastRtpAt === l.forward.lastRtpAt ? l.forward.lastRtpAt : l.since);
    // A pending replacement holds the slot while the session it replaces still delivers.
    return live.previous ? Math.min(quiet(live), quiet(live.previous)) : quiet(live);
  }

  /** Ends the live session (and the one it was replacing) now; the legs stay up. */
  private endLive(reason: string): void {
    const live = this.live;
    if (!live) return;
    this.live = undefined;
    const previous = live.previous;
    live.previous = undefined;
    live.session.close(reason);
    if (previous) {
      previous.session.close(reason);
      this.d.publisher.onPublisherDisconnected(previous.forward);
    }
    if (live.switched) this.d.publisher.onPublisherDisconnected(live.forward);
  }

  private replaced(old: Live, live: Live, waitedMs: number): void {
    this.replacements++;
    this.log.info({ oldSession: old.session.id, sessionId: live.session.id, waitedMs }, 'publisher.replaced');
    old.session.close('replaced by a new session of the same broadcaster');
  }

  private onClosed(entry: Live): void {
    entry.closed = true;
    const live = this.live;
    if (live !== entry) {
      // The session being replaced died first: the router has nothing to forward until the new one delivers.
      if (live && live.previous === entry) {
        live.previous = undefined;
        this.d.publisher.onPublisherDisconnected(entry.forward);
      }
      return;
    }
    const previous = entry.previous;
    if (!entry.switched && previous && !previous.closed) {
      // The replacement died before it delivered anything: the old session still feeds the router and keeps the slot.
      this.live = previous;
      this.log.warn({ sessionId: entry.session.id, keptSession: previous.session.id }, 'publisher.replacement_failed');
      return;
    }
    this.live = undefined;
    if (entry.switched) this.d.publisher.onPublisherDisconnected(entry.forward);
  }

  // ---- IVS rules ----------------------------------------------------------------------------------

  /** At POST time: a token refused moments ago, or an offer IVS would refuse, gets a 422 now. */
  private checkIvsOffer(principal: IngestPrincipal, offer: string | undefined): void {
    const ivs = this.d.ivs;
    if (!ivs?.inspecting) return;
    const now = this.now();
    for (const [k, r] of this.refusals) if (r.until <= now) this.refusals.delete(k);
    if (!ivs.refresh()) return;
    const held = this.refusals.get(principal.tokenHash);
    if (held) {
      this.ivsCounts.refusedReconnects++;
      this.log.info({ codes: held.violations.map((v) => v.code), retryAfterS: Math.ceil((held.until - now) / 1000) }, 'ingest.refused_reconnect');
      throw refusalError(held.violations, (held.until - now) / 1000);
    }
    if (offer === undefined) return;
    const violations = checkOfferForIvs(offer);
    if (violations.length === 0) return;
    this.countRefusal(violations);
    this.lastRefusal = { at: new Date(now).toISOString(), codes: violations.map((v) => v.code), message: refusalMessage(violations) };
    this.log.warn({ codes: violations.map((v) => v.code), stage: 'offer' }, 'ingest.refused');
    throw refusalError(violations);
  }

  private onViolation(gate: IvsGate, v: IvsRuleViolation): void {
    const live = this.live;
    if (!live || live.gate !== gate) return;
    if (isRefusing(v) && this.d.ivs?.enforcing) this.refuse(live);
    else this.warn(live, v);
  }

  private warn(live: Live, v: IvsRuleViolation): void {
    if (live.warned.has(v.code)) return;
    live.warned.add(v.code);
    this.ivsCounts.warnings++;
    this.ivsCounts.warningsByCode[v.code] = (this.ivsCounts.warningsByCode[v.code] ?? 0) + 1;
    this.log.warn({ sessionId: live.session.id, code: v.code, detail: v.message, enforcing: this.d.ivs?.enforcing ?? false }, 'ingest.ivs_warning');
  }

  /** Ends a live session whose stream IVS would refuse; its token is refused for the hold. Legs stay up. */
  private refuse(live: Live): void {
    const gate = live.gate;
    if (!gate || live.refused || this.live !== live) return;
    live.refused = true;
    gate.block();
    const violations = gate.violations.filter(isRefusing);
    const now = this.now();
    const until = now + (this.d.refusalHoldMs ?? 30_000);
    if (this.refusals.size >= MAX_REMEMBERED_REFUSALS) this.refusals.delete(this.refusals.keys().next().value!);
    this.refusals.set(live.principal.tokenHash, { until, violations });
    this.countRefusal(violations);
    const message = refusalMessage(violations);
    this.lastRefusal = { at: new Date(now).toISOString(), codes: violations.map((v) => v.code), message, sessionId: live.session.id, until: new Date(until).toISOString() };
    this.log.warn({ sessionId: live.session.id, codes: violations.map((v) => v.code), holdS: Math.round((until - now) / 1000), videoDropped: gate.videoDropped }, 'ingest.refused');
    live.session.close('refused: the stream breaks IVS rules');
  }

  private countRefusal(violations: readonly IvsRuleViolation[]): void {
    this.ivsCounts.refusals++;
    for (const v of violations) this.ivsCounts.refusalsByCode[v.code] = (this.ivsCounts.refusalsByCode[v.code] ?? 0) + 1;
  }

  /** Once a second: enforcement may have begun (an IVS stage appeared), and measured limits may be exceeded. */
  checkIvs(): void {
    const ivs = this.d.ivs;
    const live = this.live;
    if (!ivs?.inspecting) return;
    ivs.refresh();
    if (!live?.gate) return;
    if (live.gate.hasRefusingViolation && ivs.enforcing) return this.refuse(live);
    const report = this.d.streamReport?.();
    if (!report) return;
    for (const v of checkIvsRules(report)) if (!isRefusing(v)) this.warn(live, v);
  }

  get online(): boolean {
    return this.live !== undefined;
  }

  stats(): IngestStats {
    const s: IngestStats = {
      live: this.live !== undefined,
      sessions: this.sessions,
      replacements: this.replacements,
      takeovers: this.takeovers,
      conflicts: this.conflicts,
      refused: this.refused,
    };
    if (this.live) {
      s.sessionId = this.live.session.id;
      s.since = new Date(this.live.since).toISOString();
      s.auth = this.live.principal.kind;
    }
    const ivs = this.d.ivs;
    if (ivs) {
      ivs.refresh();
      const c = this.ivsCounts;
      s.ivs = {
        mode: ivs.mode,
        enforcing: ivs.enforcing,
        ivsTargets: ivs.ivsTargets,
        refusals: c.refusals,
        refusalsByCode: { ...c.refusalsByCode },
        refusedReconnects: c.refusedReconnects,
        warnings: c.warnings,
        warningsByCode: { ...c.warningsByCode },
      };
      if (this.lastRefusal) s.ivs.lastRefusal = { ...this.lastRefusal, codes: [...this.lastRefusal.codes] };
    }
    return s;
  }

  /** Ends the broadcaster's session. Idempotent. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.ivsTimer);
    this.ivsTimer = undefined;
    this.endLive('media server stopping');
  }
}
