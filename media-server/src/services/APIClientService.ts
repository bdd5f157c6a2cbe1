/**
 * The Media Server's client of the API Server: registration, heartbeats, the stage list, PUBLISH tokens
 * and the `/ws?type=media-server` event stream. It never crashes when the API Server is away: every call
 * has a timeout, the WebSocket reconnects with jittered exponential backoff (and emits 'resync' on every
 * opening, the first included: stage events sent before the socket was open — during the start-up sync, or
 * during an outage — reached no one), a 404 on heartbeat re-registers, and failures are logged once per
 * state change, not per retry. A 401/403 is a wrong MEDIA_SERVER_SECRET and is logged as an error saying so.
 */
import { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import type { z } from 'zod';
import {
  API_ROUTES,
  HeartbeatResponseSchema,
  RegisterResponseSchema,
  ServerMessageSchema,
  StagesResponseSchema,
  TokenResponseSchema,
  WS_CLOSE,
  type HeartbeatRequest,
  type MediaServerStats,
  type PublisherReport,
  type StageArn,
  type StageSummary,
  type TokenResponse,
} from '@stagecast/protocol';
import type { Logger } from '../logger.js';
import { backoffDelay } from './backoff.js';

export type LegState = 'connecting' | 'connected' | 'failed' | 'closed';
export interface HeartbeatPayload {
  publisherOnline: boolean;
  legs: { stageArn: StageArn; state: LegState }[];
  /** The broadcaster's measured stream, for the API Server's dashboard. */
  publisher?: PublisherReport;
}

/** The heartbeat's view of the broadcaster, from the Media Server's stats: nothing while no one publishes. */
export function publisherReport(s: Pick<MediaServerStats, 'publisher' | 'stream'>): PublisherReport | undefined {
  if (!s.publisher.online) return undefined;
  const st = s.stream;
  return {
    bitrateBps: s.publisher.bitrateBps,
    ...(st?.width !== undefined ? { width: st.width } : {}),
    ...(st?.height !== undefined ? { height: st.height } : {}),
    ...(st?.frameRate !== undefined ? { frameRate: st.frameRate } : {}),
    ...(st?.profile !== undefined ? { profile: st.profile.slice(0, 64) } : {}),
  };
}

export interface StageEvent {
  stageArn: StageArn;
  timestamp: string;
}

export interface APIClientEvents {
  stage_created: [StageEvent];
  stage_deleted: [StageEvent];
  connected: [];
  disconnected: [{ code: number; reason: string }];
  /** The WebSocket opened (first time or again): stage events may have been missed, sync everything. */
  resync: [];
  registered: [{ heartbeatIntervalMs: number }];
}

/** A failed call to the API Server. status 0 = no answer (refused, timeout, bad JSON). */
export class ApiRequestError extends Error {
  constructor(
    readonly route: string,
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiRequestError';
  }
}

export interface APIClientOptions {
  apiUrl: string;
  secret: string;
  serverId: string;
  advertisedIp: string;
  port: number;
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

export type ConnState = 'down' | 'connecting' | 'up';

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
  private readonly o: APIClientOptions;
  private port: number;
  private readonly log: Logger;
  private readonly now: () => number;
  private hbInterval: number;
  private registered = false;
  private lastAckAt = NaN;
  private hbTimer: NodeJS.Timeout | undefined;
  private hbState: 'ok' | 'failing' | 'unregistered' = 'unregistered';
  private hbFailures = 0;
  private reRegistrations = 0;
  private heartbeatSource: () => HeartbeatPayload = () => ({ publisherOnline: false, legs: [] });
  private apiReachable: boolean | undefined;
  private requestErrors = 0;

  private ws: WebSocket | undefined;
  private wsState: ConnState = 'down';
  private wsWanted = false;
  private wsAttempt = 0;
  private wsEverOpen = false;
  private wsTimer: NodeJS.Timeout | undefined;
  private wsIdleTimer: NodeJS.Timeout | undefined;
  private wsLastSeen = 0;
  private wsReconnects = 0;
  private wsMessages = 0;
  private wsFailLogged = false;
  private refusedLogged = false;
  private stopped = false;

  constructor(o: APIClientOptions) {
    super();
    this.o = o;
    this.log = o.log.child({ component: 'api-client' });
    this.now = o.now ?? Date.now;
    this.hbInterval = o.heartbeatIntervalMs ?? 10_000;
    this.port = o.port;
  }

  /** The port we registered with, once known (PORT=0 binds an ephemeral one). */
  setAdvertisedPort(port: number): void {
    this.port = port;
  }

  get heartbeatIntervalMs(): number {
    return this.hbInterval;
  }
  get isRegistered(): boolean {
    return this.registered;
  }
  get websocketState(): ConnState {
    return this.wsState;
  }

  /** Registration is fresh: acknowledged by the API Server within the last 3 heartbeat intervals. */
  registrationFresh(): boolean {
    return this.registered && this.now() - this.lastAckAt < 3 * this.hbInterval;
  }

  status(): APIClientStatus {
    const s: APIClientStatus = {
      registered: this.registered,
      registrationFresh: this.registrationFresh(),
      heartbeatIntervalMs: this.hbInterval,
      heartbeat: this.hbState,
      heartbeatFailures: this.hbFailures,
      reRegistrations: this.reRegistrations,
      websocket: this.wsState,
      wsReconnects: this.wsReconnects,
      wsMessages: this.wsMessages,
      requestErrors: this.requestErrors,
    };
    if (this.lastAckAt === this.lastAckAt) s.lastHeartbeatAt = new Date(this.lastAckAt).toISOString();
    return s;
  }

  // ---- REST ------------------------------------------------------------------------------------

  async register(): Promise<void> {
    let res: z.infer<typeof RegisterResponseSchema>;
    try {
      res = await this.request(API_ROUTES.register, 'POST', RegisterResponseSchema, {
        serverId: this.o.serverId,
        ipAddress: this.o.advertisedIp,
        port: this.port,
      });
    } catch (err) {
      if (err instanceof ApiRequestError && (err.status === 401 || err.status === 403)) this.logRefused('register', err.status);
      throw err;
    }
    this.refusedLogged = false;
    if (this.o.heartbeatIntervalMs === undefined) this.hbInterval = res.heartbeatIntervalMs;
    this.registered = true;
    this.lastAckAt = this.now();
    this.setHbState('ok');
    this.log.info({ heartbeatIntervalMs: this.hbInterval, reRegistrations: this.reRegistrations }, 'registered');
    this.emit('registered', { heartbeatIntervalMs: this.hbInterval });
  }

  /** Where heartbeats get publisherOnline and the legs from (StageManager). */
  setHeartbeatSource(fn: () => HeartbeatPayload): void {
    this.heartbeatSource = fn;
  }

  /** One heartbeat. A 404 means the API Server forgot us (restart with a new store): register again. */
  async heartbeat(payload: HeartbeatPayload = this.heartbeatSource()): Promise<void> {
    const body: HeartbeatRequest = { serverId: this.o.serverId, publisherOnline: payload.publisherOnline, legs: payload.legs, ...(payload.publisher ? { publisher: payload.publisher } : {}) };
    try {
      const res = await this.request(API_ROUTES.heartbeat, 'POST', HeartbeatResponseSchema, body);
      if (this.o.heartbeatIntervalMs === undefined) this.hbInterval = res.heartbeatIntervalMs;
      this.lastAckAt = this.now();
      this.setHbState('ok');
    } catch (err) {
      if (err instanceof ApiRequestError && err.status === 404) {
        this.registered = false;
        this.setHbState('unregistered');
        this.reRegistrations++;
        this.log.warn('heartbeat.unknown_server');
        await this.register();
        return;
      }
      this.hbFailures++;
      this.setHbState('failing');
      throw err;
    }
  }

  /** Heartbeats (or registration attempts, until registered) on the interval, until stop(). */
  startHeartbeat(): void {
    if (this.hbTimer || this.stopped) return;
    const loop = async (): Promise<void> => {
      try {
        if (!this.registered) await this.register();
        else await this.heartbeat();
      } catch {
        // logged once per state change in request()/setHbState()
      }
      if (this.stopped) return;
      this.hbTimer = setTimeout(() => void loop(), this.registered ? this.hbInterval : Math.min(this.hbInterval, 2000));
      this.hbTimer.unref?.();
    };
    this.hbTimer = setTimeout(() => void loop(), this.hbInterval);
    this.hbTimer.unref?.();
  }

  stopHeartbeat(): void {
    clearTimeout(this.hbTimer);
    this.hbTimer = undefined;
  }

  async getActiveStages(): Promise<StageSummary[]> {
    const res = await this.request(API_ROUTES.stages, 'GET', StagesResponseSchema);
    return res.stages;
  }

  /** A PUBLISH token; `whipFailed` tells the API Server our last WHIP POST into the stage failed at its endpoint. */
  async getStageToken(stageArn: StageArn, opts: { whipFailed?: boolean } = {}): Promise<TokenResponse> {
    return this.request(API_ROUTES.token, 'POST', TokenResponseSchema, { stageArn, serverId: this.o.serverId, ...(opts.whipFailed ? { whipFailed: true } : {}) });
  }

  private async request<S extends z.ZodType>(route: string, method: 'GET' | 'POST', schema: S, body?: unknown): Promise<z.infer<S>> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.o.secret}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    let text: string;
    try {
      res = await fetch(this.o.apiUrl + route, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(this.o.requestTimeoutMs),
      });
      text = await res.text();
    } catch (err) {
      this.requestErrors++;
      this.setReachable(false, err);
      throw new ApiRequestError(route, 0, 'UNREACHABLE', `API Server unreachable: ${(err as Error).message}`);
    }
    this.setReachable(true);
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      this.requestErrors++;
      const e = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
      throw new ApiRequestError(route, res.status, e?.code ?? 'HTTP_' + res.status, e?.message ?? `HTTP ${res.status}`);
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      this.requestErrors++;
      throw new ApiRequestError(route, res.status, 'BAD_RESPONSE', `unexpected response from ${route}: ${parsed.error.message}`);
    }
    return parsed.data;
  }

  /** The API Server refused our secret: nothing will work until an operator fixes it, so say what to check. Once per outage. */
  private logRefused(what: 'register' | 'websocket', status: number): void {
    if (this.refusedLogged) return;
    this.refusedLogged = true;
    this.log.error(
      { status, apiUrl: this.o.apiUrl, hint: 'check MEDIA_SERVER_SECRET: it must be the same at the API Server and the Media Server' },
      `${what}.refused`,
    );
  }

  private setReachable(up: boolean, err?: unknown): void {
    if (this.apiReachable === up) return;
    const first = this.apiReachable === undefined;
    this.apiReachable = up;
    if (!up) this.log.warn({ err: (err as Error)?.message }, 'api.unreachable');
    else if (!first) this.log.info('api.reachable');
  }

  private setHbState(s: 'ok' | 'failing' | 'unregistered'): void {
    if (this.hbState === s) return;
    const prev = this.hbState;
    this.hbState = s;
    if (s === 'failing') this.log.warn('heartbeat.failing');
    else if (s === 'ok' && prev === 'failing') this.log.info('heartbeat.recovered');
  }

  // ---- WebSocket --------------------------------------------------------------------------------

  /** Connects `/ws?type=media-server` and keeps it connected until stop(). */
  connectWebSocket(): void {
    if (this.wsWanted || this.stopped) return;
    this.wsWanted = true;
    this.openWs();
  }

  private openWs(): void {
    if (!this.wsWanted || this.stopped) return;
    const url = `${this.o.apiUrl.replace(/^http/, 'ws')}${API_ROUTES.ws}?type=media-server&serverId=${encodeURIComponent(this.o.serverId)}`;
    this.wsState = 'connecting';
    const ws = new WebSocket(url, {
      headers: { authorization: `Bearer ${this.o.secret}` },
      handshakeTimeout: this.o.requestTimeoutMs,
      maxPayload: 1 << 20,
    });
    this.ws = ws;
    let opened = false;
    ws.on('open', () => {
      opened = true;
      this.wsState = 'up';
      this.wsAttempt = 0;
      this.wsFailLogged = false;
      this.wsLastSeen = this.now();
      this.armIdleCheck();
      const reconnect = this.wsEverOpen;
      this.wsEverOpen = true;
      if (reconnect) this.wsReconnects++;
      this.log.info({ reconnect }, 'websocket.connected');
      this.emit('connected');
      // Stage events sent before this moment reached no one (the start-up sync ran while the socket was opening).
      this.emit('resync');
    });
    ws.on('ping', () => {
      this.wsLastSeen = this.now();
    });
    ws.on('message', (data, isBinary) => {
      this.wsLastSeen = this.now();
      if (isBinary) return;
      this.onMessage(data.toString());
    });
    ws.on('unexpected-response', (req, res) => {
      const status = res.statusCode ?? 0;
      if (status === 401 || status === 403) this.logRefused('websocket', status);
      else if (!this.wsFailLogged) this.log.warn({ status }, 'websocket.refused');
      this.wsFailLogged = true;
      // Handling this event makes the request ours to abort; a reset of the refused socket must not throw.
      const ignore = (): void => undefined;
      res.on('error', ignore);
      req.on('error', ignore);
      res.resume();
      ws.terminate();
    });
    ws.on('error', (err) => {
      if (!this.wsFailLogged && !opened) this.log.warn({ err: err.message }, 'websocket.connect_failed');
      if (!opened) this.wsFailLogged = true;
    });
    ws.on('close', (code, reason) => {
      if (this.ws !== ws) return;
      this.ws = undefined;
      clearInterval(this.wsIdleTimer);
      this.wsIdleTimer = undefined;
      this.wsState = 'down';
      if (opened) {
        this.log.warn({ code, reason: reason.toString() }, 'websocket.disconnected');
        this.emit('disconnected', { code, reason: reason.toString() });
      }
      if (!this.wsWanted || this.stopped) return;
      const delay = backoffDelay(this.wsAttempt++, { ...(this.o.backoff ?? { baseMs: 500, capMs: 30_000 }), random: this.o.random ?? Math.random });
      this.wsTimer = setTimeout(() => this.openWs(), delay);
      this.wsTimer.unref?.();
    });
  }

  private armIdleCheck(): void {
    const idle = this.o.wsIdleTimeoutMs ?? 90_000;
    clearInterval(this.wsIdleTimer);
    this.wsIdleTimer = setInterval(() => {
      if (this.now() - this.wsLastSeen > idle) {
        this.log.warn({ idleMs: idle }, 'websocket.idle_timeout');
        this.ws?.terminate();
      }
    }, Math.max(50, Math.floor(idle / 3)));
    this.wsIdleTimer.unref?.();
  }

  private onMessage(text: string): void {
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      this.log.warn('websocket.bad_message');
      return;
    }
    const m = ServerMessageSchema.safeParse(raw);
    if (!m.success) {
      this.log.debug('websocket.unknown_message');
      return;
    }
    this.wsMessages++;
    const msg = m.data;
    if (msg.type === 'stage_created' || msg.type === 'stage_deleted') {
      this.emit(msg.type, { stageArn: msg.data.stageArn, timestamp: msg.data.timestamp });
    }
  }

  /** A last heartbeat saying we serve nothing, so the API Server knows at once (graceful shutdown). */
  async sendFinalHeartbeat(): Promise<void> {
    if (!this.registered) return;
    try {
      await this.request(API_ROUTES.heartbeat, 'POST', HeartbeatResponseSchema, { serverId: this.o.serverId, publisherOnline: false, legs: [], stopping: true });
    } catch {
      // best effort
    }
  }

  /** Stops heartbeats and the WebSocket (no reconnect). Idempotent. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.wsWanted = false;
    this.stopHeartbeat();
    clearTimeout(this.wsTimer);
    clearInterval(this.wsIdleTimer);
    const ws = this.ws;
    this.ws = undefined;
    this.wsState = 'down';
    if (ws) {
      ws.removeAllListeners();
      ws.on('error', () => undefined);
      if (ws.readyState === WebSocket.OPEN) ws.close(WS_CLOSE.goingAway, 'media server stopping');
      else ws.terminate();
    }
  }
}
