/**
 * The Media Server's client of the API Server: registration, heartbeats, the stage list, PUBLISH tokens and the
 * `/ws?type=media-server` event stream — one facade over three parts (api-client/): the HTTP client (timeouts,
 * typed errors, one log line per state change), the registration and heartbeat loop (a 404 on heartbeat
 * re-registers), and the WebSocket (jittered reconnects, 'resync' on every opening). It never crashes when the API
 * Server is away. A 401/403 is a wrong MEDIA_SERVER_SECRET and is logged as an error saying so.
 */
import { EventEmitter } from 'node:events';
import { API_ROUTES, StagesResponseSchema, TokenResponseSchema, type StageArn, type StagesResponse, type StageSummary, type TokenResponse } from '@stagecast/protocol';
import type { Logger } from '../logger.js';
import { ApiEventStream, type APIClientEvents, type ConnState } from './api-client/event-stream.js';
import { ApiHttp } from './api-client/http.js';
import { Registration, type HeartbeatPayload } from './api-client/registration.js';

export { ApiRequestError } from './api-client/http.js';
export { publisherReport, type HeartbeatPayload, type IngestKind, type LegState } from './api-client/registration.js';
export type { APIClientEvents, ConnState, OriginChangedEvent, StageAssignedEvent, StageEvent } from './api-client/event-stream.js';

export interface APIClientOptions {
  apiUrl: string;
  secret: string;
  serverId: string;
  advertisedIp: string;
  port: number;
  /** Base URL others reach this server at (PUBLIC_URL); default http://advertisedIp:port. */
  publicUrl?: string;
  /** MAX_LEGS, told to the API Server at registration. */
  maxLegs?: number;
  /** Debounce of an immediate heartbeat (heartbeatSoon). */
  nudgeDelayMs?: number;
  requestTimeoutMs: number;
  /** Fixed heartbeat interval; when undefined, the one the register response names. */
  heartbeatIntervalMs?: number;
  log: Logger;
  backoff?: { baseMs: number; capMs: number };
  random?: () => number;
  /** A WebSocket with no ping or message for this long is considered dead (the API pings every 30 s). */
  wsIdleTimeoutMs?: number;
  now?: () => number;
}

export interface APIClientStatus {
  registered: boolean;
  registrationFresh: boolean;
  heartbeatIntervalMs: number;
  lastHeartbeatAt?: string;
  heartbeat: 'ok' | 'failing' | 'unregistered';
  heartbeatFailures: number;
  reRegistrations: number;
  websocket: ConnState;
  wsReconnects: number;
  wsMessages: number;
  requestErrors: number;
}

export class APIClientService extends EventEmitter<APIClientEvents> {
  private readonly http: ApiHttp;
  private readonly reg: Registration;
  private readonly events: ApiEventStream;
  private readonly serverId: string;
  private stopped = false;

  constructor(o: APIClientOptions) {
    super();
    this.serverId = o.serverId;
    const log = o.log.child({ component: 'api-client' });
    const now = o.now ?? Date.now;
    this.http = new ApiHttp({ apiUrl: o.apiUrl, secret: o.secret, requestTimeoutMs: o.requestTimeoutMs, log });
    this.reg = new Registration(this.http, {
      serverId: o.serverId,
      advertisedIp: o.advertisedIp,
      port: o.port,
      ...(o.publicUrl ? { publicUrl: o.publicUrl } : {}),
      ...(o.maxLegs !== undefined ? { maxLegs: o.maxLegs } : {}),
      ...(o.nudgeDelayMs !== undefined ? { nudgeDelayMs: o.nudgeDelayMs } : {}),
      ...(o.heartbeatIntervalMs !== undefined ? { heartbeatIntervalMs: o.heartbeatIntervalMs } : {}),
      log,
      now,
      onRegistered: (heartbeatIntervalMs) => this.emit('registered', { heartbeatIntervalMs }),
    });
    this.events = new ApiEventStream(this.http, {
      apiUrl: o.apiUrl,
      secret: o.secret,
      serverId: o.serverId,
      handshakeTimeoutMs: o.requestTimeoutMs,
      log,
      now,
      ...(o.backoff ? { backoff: o.backoff } : {}),
      ...(o.random ? { random: o.random } : {}),
      ...(o.wsIdleTimeoutMs !== undefined ? { idleTimeoutMs: o.wsIdleTimeoutMs } : {}),
      emit: (event, ...args) => (this.emit as (e: string, ...a: unknown[]) => boolean)(event, ...args),
    });
  }

  /** The port we registered with, once known (PORT=0 binds an ephemeral one). */
  setAdvertisedPort(port: number): void {
    this.reg.port = port;
  }

  /** The base URL we register with (others pull the relay from it). */
  get url(): string {
    return this.reg.url;
  }

  get heartbeatIntervalMs(): number {
    return this.reg.hbInterval;
  }
  get isRegistered(): boolean {
    return this.reg.registered;
  }
  get websocketState(): ConnState {
    return this.events.state;
  }

  /** Registration is fresh: acknowledged by the API Server within the last 3 heartbeat intervals. */
  registrationFresh(): boolean {
    return this.reg.fresh();
  }

  status(): APIClientStatus {
    const r = this.reg;
    const s: APIClientStatus = {
      registered: r.registered,
      registrationFresh: r.fresh(),
      heartbeatIntervalMs: r.hbInterval,
      heartbeat: r.hbState,
      heartbeatFailures: r.hbFailures,
      reRegistrations: r.reRegistrations,
      websocket: this.events.state,
      wsReconnects: this.events.reconnects,
      wsMessages: this.events.messages,
      requestErrors: this.http.requestErrors,
    };
    if (r.lastAckAt === r.lastAckAt) s.lastHeartbeatAt = new Date(r.lastAckAt).toISOString();
    return s;
  }

  // ---- registration and heartbeats ---------------------------------------------------------------

  register(): Promise<void> {
    return this.reg.register();
  }

  /** Where heartbeats get publisherOnline and the legs from (StageManager). */
  setHeartbeatSource(fn: () => HeartbeatPayload): void {
    this.reg.setHeartbeatSource(fn);
  }

  /** One heartbeat. A 404 means the API Server forgot us (restart with a new store): register again. */
  heartbeat(payload?: HeartbeatPayload): Promise<void> {
    return payload ? this.reg.heartbeat(payload) : this.reg.heartbeat();
  }

  /** An immediate (debounced) heartbeat: the API Server should learn of a change now, not at the next interval. */
  heartbeatSoon(): void {
    this.reg.nudge();
  }

  /** Heartbeats (or registration attempts, until registered) on the interval, until stop(). */
  startHeartbeat(): void {
    if (this.stopped) return;
    this.reg.start();
  }

  stopHeartbeat(): void {
    this.reg.stopHeartbeat();
  }

  /** A last heartbeat saying we serve nothing, so the API Server knows at once (graceful shutdown). */
  sendFinalHeartbeat(): Promise<void> {
    return this.reg.sendFinal();
  }

  // ---- stages and tokens -------------------------------------------------------------------------

  async getActiveStages(): Promise<StageSummary[]> {
    return (await this.getStages()).stages;
  }

  /** The stage list with its owners, and the origin (absent from an older API Server). */
  getStages(): Promise<StagesResponse> {
    return this.http.request(API_ROUTES.stages, 'GET', StagesResponseSchema);
  }

  /** A PUBLISH token; `whipFailed` tells the API Server our last WHIP POST into the stage failed at its endpoint. */
  getStageToken(stageArn: StageArn, opts: { whipFailed?: boolean } = {}): Promise<TokenResponse> {
    return this.http.request(API_ROUTES.token, 'POST', TokenResponseSchema, { stageArn, serverId: this.serverId, ...(opts.whipFailed ? { whipFailed: true } : {}) });
  }

  // ---- the event stream --------------------------------------------------------------------------

  /** Connects `/ws?type=media-server` and keeps it connected until stop(). */
  connectWebSocket(): void {
    if (this.stopped) return;
    this.events.connect();
  }

  /** Stops heartbeats and the WebSocket (no reconnect). Idempotent. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.reg.stop();
    this.events.stop();
  }
}
