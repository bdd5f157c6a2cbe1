/**
 * One WHIP leg into one stage: fetch a PUBLISH token, start a WHIP client into the stage's whipUrl,
 * attach its SinkPort to the Router once it is connected and feed the router's Sink the RTCP the stage sends back. On failure
 * it retries with jittered exponential backoff and a FRESH token. When its token nears expiry or the leg
 * nears the provider's participant age limit (IVS: 24 h) it emits 'rotate-due'; the StageManager then
 * brings up a replacement leg and closes this one once the new one is connected (make-before-break).
 * close() is idempotent: the sink leaves the router at once, the WHIP session is DELETEd in the background.
 */
import { EventEmitter } from 'node:events';
import type { StageArn, TokenResponse } from '@stagecast/protocol';
import type { RouterSinkStats, SinkPort } from '@stagecast/rtc';
import type { Logger } from '../logger.js';
import { httpStatusOf, type LegConnection, type LegConnectionState, type LegConnector } from '../media/ports.js';
import type { LegState } from './APIClientService.js';
import { backoffDelay } from './backoff.js';

/** The part of a router Sink a leg uses. */
export interface LegSink {
  handleRtcp(packet: Uint8Array): void;
  stats(): RouterSinkStats;
  close(): void;
}
export interface SinkHostPort {
  addSink(port: SinkPort): LegSink;
}

export interface LegTiming {
  /** Rotate this long before the PUBLISH token expires. */
  renewBeforeMs: number;
  /** Rotate a leg this long after it connected (IVS cuts a participant at 24 h). */
  maxAgeMs: number;
  retryBaseMs: number;
  retryCapMs: number;
  /** From the 201 to ICE/DTLS 'connected'. */
  connectTimeoutMs: number;
  /** HTTP timeout of the WHIP POST / DELETE. */
  requestTimeoutMs: number;
}

export const DEFAULT_LEG_TIMING: LegTiming = {
  renewBeforeMs: 600_000,
  maxAgeMs: 82_800_000,
  retryBaseMs: 500,
  retryCapMs: 30_000,
  connectTimeoutMs: 15_000,
  requestTimeoutMs: 8_000,
};

export interface StageLegDeps {
  stageArn: StageArn;
  legId: string;
  /** `whipFailed`: this leg's last WHIP POST failed at the endpoint, so the API Server re-reads the stage's endpoints. */
  getToken(stageArn: StageArn, opts?: { whipFailed?: boolean }): Promise<TokenResponse>;
  connect: LegConnector;
  router: SinkHostPort;
  log: Logger;
  timing: LegTiming;
  bindAddress?: string;
  random?: () => number;
  now?: () => number;
}

export type RotateReason = 'token-expiry' | 'max-age';

export interface StageLegEvents {
  state: [LegState];
  connected: [];
  failed: [{ error: string; status?: number; attempt: number; retryInMs: number }];
  'rotate-due': [{ reason: RotateReason }];
  closed: [];
}

export interface StageLegStats {
  legId: string;
  stageArn: StageArn;
  state: LegState;
  participantId?: string;
  connectedAt?: string;
  attempts: number;
  failures: number;
  lastError?: string;
  tokenExpiresAt?: string;
  rotateAt?: string;
  rttMs?: number;
  sink?: RouterSinkStats;
}

export class StageLeg extends EventEmitter<StageLegEvents> {
  readonly stageArn: StageArn;
  readonly legId: string;
  private readonly d: StageLegDeps;
  private readonly log: Logger;
  private readonly now: () => number;
  private st: LegState = 'connecting';
  private conn: LegConnection | undefined;
  private sink: LegSink | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private connectTimer: NodeJS.Timeout | undefined;
  private rotateTimer: NodeJS.Timeout | undefined;
  private started = false;
  private closedFlag = false;
  /** The last attempt's WHIP POST failed (an HTTP error or no answer): the next token request says so. */
  private whipPostFailed = false;
  /** Consecutive failures (reset on connect): the backoff exponent. */
  private streak = 0;
  private attempts = 0;
  private failures = 0;
  private lastError: string | undefined;
  private participantId: string | undefined;
  private inflight: Promise<void> | undefined;
  private tokenExpiresAt = NaN;
  /** When the current token was fetched: its lifetime bounds how early it may be renewed. */
  private tokenFetchedAt = NaN;
  private warnedShortToken = false;
  private connectedAt = NaN;
  private rotateAt = NaN;
  private stopping: Promise<void> | undefined;

  constructor(d: StageLegDeps) {
    super();
    this.d = d;
    this.stageArn = d.stageArn;
    this.legId = d.legId;
    this.now = d.now ?? Date.now;
    this.log = d.log.child({ stageArn: d.stageArn, legId: d.legId });
  }

  get state(): LegState {
    return this.st;
  }
  get closed(): boolean {
    return this.closedFlag;
  }

  start(): void {
    if (this.started || this.closedFlag) return;
    this.started = true;
    void this.attempt();
  }

  private setState(s: LegState): void {
    if (this.st === s) return;
    this.st = s;
    this.emit('state', s);
  }

  /** Starts an attempt and remembers it, so that close() can wait for a POST still in flight. */
  private attempt(): Promise<void> {
    const run = this.runAttempt();
    this.inflight = run;
    void run.finally(() => {
      if (this.inflight === run) this.inflight = undefined;
    });
    return run;
  }

  private async runAttempt(): Promise<void> {
    if (this.closedFlag) return;
    this.attempts++;
    const n = this.attempts;
    this.setState('connecting');
    this.log.info({ attempt: n }, 'stage.connecting');
    let conn: LegConnection | undefined;
    try {
      const fetchedAt = this.now();
      const t = await this.d.getToken(this.stageArn, this.whipPostFailed ? { whipFailed: true } : {});
      if (this.closedFlag) return;
      try {
        conn = await this.d.connect({
          id: `${this.legId}.${n}`,
          whipUrl: t.whipUrl,
          token: t.token,
          timeoutMs: this.d.timing.requestTimeoutMs,
          ...(this.d.bindAddress ? { bindAddress: this.d.bindAddress } : {}),
        });
        this.whipPostFailed = false;
      } catch (err) {
        // The POST to the stage's endpoint failed: IVS endpoints can move, so the API Server should look again.
        this.whipPostFailed = true;
        throw err;
      }
      if (this.closedFlag) {
        // Closed while the POST was in flight: the stage holds a session now, DELETE it before close() settles.
        await conn.stop().catch(() => undefined);
        return;
      }
      this.conn = conn;
      this.participantId = t.participantId;
      this.tokenExpiresAt = Date.parse(t.expiresAt);
      this.tokenFetchedAt = fetchedAt;
      const c = conn;
      // The sink joins the router only once media can flow (onConnState): the router replays its keyframe cache
      // to a new sink at once, and a replay sent before the tracks are open is lost — the stage would then wait
      // for the next keyframe request (and OBS ignores those) instead of getting a picture at once.
      c.on('rtcp', (packet) => {
        if (this.conn === c) this.sink?.handleRtcp(packet);
      });
      c.on('state', (s) => this.onConnState(c, s));
      this.connectTimer = setTimeout(() => {
        if (this.conn === c && this.st !== 'connected') this.fail(new Error('ICE/DTLS did not connect in time'));
      }, this.d.timing.connectTimeoutMs);
      this.connectTimer.unref?.();
      // It may have connected (or died) between the 201 and our subscription.
      if (c.state === 'connected' || c.state === 'failed' || c.state === 'closed') this.onConnState(c, c.state);
    } catch (err) {
      if (conn && this.conn !== conn) void conn.stop();
      this.fail(err);
    }
  }

  private onConnState(c: LegConnection, s: LegConnectionState): void {
    if (this.conn !== c || this.closedFlag) return;
    if (s === 'connected') {
      if (this.st === 'connected') return;
      clearTimeout(this.connectTimer);
      this.streak = 0;
      this.sink ??= this.d.router.addSink(c.sinkPort);
      this.connectedAt = this.now();
      this.setState('connected');
      this.scheduleRotation();
      this.log.info({ participantId: this.participantId, attempt: this.attempts }, 'stage.connected');
      this.emit('connected');
    } else if (s === 'failed' || s === 'closed') {
      this.fail(new Error(`transport ${s}`));
    }
  }

  /** Rotation is due at whichever comes first: token renewal or the participant age limit. */
  private scheduleRotation(): void {
    clearTimeout(this.rotateTimer);
    // A token that lives no longer than the renewal margin (the API Server's PUBLISH_TOKEN_TTL_SECONDS at or below
    // LEG_TOKEN_RENEW_BEFORE_S) would make every rotation due at once, a new WHIP session per stage in a loop:
    // renew such a token at half its life instead, and say so once.
    const lifeMs = this.tokenExpiresAt - this.tokenFetchedAt;
    let renewBeforeMs = this.d.timing.renewBeforeMs;
    if (lifeMs === lifeMs && renewBeforeMs > lifeMs / 2) {
      renewBeforeMs = Math.max(0, lifeMs / 2);
      if (!this.warnedShortToken) {
        this.warnedShortToken = true;
        this.log.warn({ tokenLifetimeMs: Math.round(lifeMs), renewBeforeMs: this.d.timing.renewBeforeMs }, 'stage.token_shorter_than_renewal_margin');
      }
    }
    const byToken = this.tokenExpiresAt === this.tokenExpiresAt ? this.tokenExpiresAt - renewBeforeMs : Infinity;
    const byAge = this.connectedAt + this.d.timing.maxAgeMs;
    const at = Math.min(byToken, byAge);
    const reason: RotateReason = byToken <= byAge ? 'token-expiry' : 'max-age';
    this.rotateAt = at;
    const delay = Math.max(0, Math.min(at - this.now(), 2 ** 31 - 1));
    this.rotateTimer = setTimeout(() => {
      if (this.closedFlag) return;
      this.log.info({ reason }, 'stage.rotate_due');
      this.emit('rotate-due', { reason });
    }, delay);
    this.rotateTimer.unref?.();
  }

  private fail(err: unknown): void {
    if (this.closedFlag) return;
    this.teardownConnection();
    this.failures++;
    const status = httpStatusOf(err);
    const message = err instanceof Error ? err.message : String(err);
    this.lastError = status ? `HTTP ${status}: ${message}` : message;
    const retryInMs = backoffDelay(this.streak++, { baseMs: this.d.timing.retryBaseMs, capMs: this.d.timing.retryCapMs, random: this.d.random ?? Math.random });
    this.setState('failed');
    this.log.warn({ attempt: this.attempts, status, err: message, retryInMs }, 'stage.leg_failed');
    this.emit('failed', { error: message, ...(status ? { status } : {}), attempt: this.attempts, retryInMs });
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.attempt(), retryInMs);
    this.retryTimer.unref?.();
  }

  private teardownConnection(): Promise<void> {
    clearTimeout(this.connectTimer);
    clearTimeout(this.rotateTimer);
    this.rotateAt = NaN;
    this.connectedAt = NaN;
    this.sink?.close();
    this.sink = undefined;
    const conn = this.conn;
    this.conn = undefined;
    return conn ? conn.stop().catch(() => undefined) : Promise.resolve();
  }

  stats(): StageLegStats {
    const s: StageLegStats = { legId: this.legId, stageArn: this.stageArn, state: this.st, attempts: this.attempts, failures: this.failures };
    if (this.participantId) s.participantId = this.participantId;
    if (this.connectedAt === this.connectedAt) s.connectedAt = new Date(this.connectedAt).toISOString();
    if (this.lastError) s.lastError = this.lastError;
    if (this.tokenExpiresAt === this.tokenExpiresAt) s.tokenExpiresAt = new Date(this.tokenExpiresAt).toISOString();
    if (this.rotateAt === this.rotateAt) s.rotateAt = new Date(this.rotateAt).toISOString();
    if (this.sink) {
      s.sink = this.sink.stats();
      if (s.sink.rttMs !== undefined) s.rttMs = s.sink.rttMs;
    }
    const rtt = this.conn?.rttMs?.();
    if (rtt !== undefined) s.rttMs = rtt;
    return s;
  }

  /**
   * Idempotent. The sink leaves the router synchronously (no packet reaches this leg after it returns);
   * the promise settles when the WHIP session's DELETE has been answered or timed out.
   */
  close(reason = 'closed'): Promise<void> {
    if (this.stopping) return this.stopping;
    this.closedFlag = true;
    clearTimeout(this.retryTimer);
    const inflight = this.inflight;
    this.stopping = Promise.all([this.teardownConnection(), inflight?.catch(() => undefined)]).then(() => undefined);
    this.setState('closed');
    this.log.info({ reason }, 'stage.disconnected');
    this.emit('closed');
    this.removeAllListeners();
    return this.stopping;
  }
}
