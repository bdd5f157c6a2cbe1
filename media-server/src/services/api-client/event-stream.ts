/**
 * The `/ws?type=media-server` event stream: connects with the secret, reconnects with jittered exponential backoff
 * until stopped, and treats a socket with no ping or message for `idleTimeoutMs` as dead (the API pings every 30 s).
 * Every opening, the first included, is a 'resync': stage events sent before the socket was open reached no one.
 */
import WebSocket from 'ws';
import { API_ROUTES, ServerMessageSchema, WS_CLOSE, type Origin, type ServerId, type StageArn } from '@stagecast/protocol';
import type { Logger } from '../../logger.js';
import { backoffDelay } from '../backoff.js';
import type { ApiHttp } from './http.js';

export interface StageEvent {
  stageArn: StageArn;
  timestamp: string;
}

/** A stage's owner changed: `serverId` publishes into it, `previousServerId` keeps its leg until the handover ends. */
export interface StageAssignedEvent extends StageEvent {
  serverId: ServerId | null;
  previousServerId: ServerId | null;
}

export interface OriginChangedEvent {
  origin: Origin | null;
  timestamp: string;
}

export interface APIClientEvents {
  stage_created: [StageEvent];
  stage_deleted: [StageEvent];
  stage_assigned: [StageAssignedEvent];
  origin_changed: [OriginChangedEvent];
  connected: [];
  disconnected: [{ code: number; reason: string }];
  /** The WebSocket opened (first time or again): stage events may have been missed, sync everything. */
  resync: [];
  registered: [{ heartbeatIntervalMs: number }];
}

export type ConnState = 'down' | 'connecting' | 'up';

export interface EventStreamOptions {
  apiUrl: string;
  secret: string;
  serverId: string;
  handshakeTimeoutMs: number;
  log: Logger;
  now: () => number;
  backoff?: { baseMs: number; capMs: number };
  random?: () => number;
  idleTimeoutMs?: number;
  emit: <K extends keyof APIClientEvents>(event: K, ...args: APIClientEvents[K]) => void;
}

export class ApiEventStream {
  state: ConnState = 'down';
  reconnects = 0;
  messages = 0;
  private ws: WebSocket | undefined;
  private wanted = false;
  private attempt = 0;
  private everOpen = false;
  private timer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private lastSeen = 0;
  private failLogged = false;
  private stopped = false;

  constructor(
    private readonly http: ApiHttp,
    private readonly o: EventStreamOptions,
  ) {}

  /** Connects and keeps connected until stop(). */
  connect(): void {
    if (this.wanted || this.stopped) return;
    this.wanted = true;
    this.open();
  }

  private open(): void {
    if (!this.wanted || this.stopped) return;
    const url = `${this.o.apiUrl.replace(/^http/, 'ws')}${API_ROUTES.ws}?type=media-server&serverId=${encodeURIComponent(this.o.serverId)}`;
    this.state = 'connecting';
    const ws = new WebSocket(url, {
      headers: { authorization: `Bearer ${this.o.secret}` },
      handshakeTimeout: this.o.handshakeTimeoutMs,
      maxPayload: 1 << 20,
    });
    this.ws = ws;
    let opened = false;
    ws.on('open', () => {
      opened = true;
      this.state = 'up';
      this.attempt = 0;
      this.failLogged = false;
      this.lastSeen = this.o.now();
      this.armIdleCheck();
      const reconnect = this.everOpen;
      this.everOpen = true;
      if (reconnect) this.reconnects++;
      this.o.log.info({ reconnect }, 'websocket.connected');
      this.o.emit('connected');
      // Stage events sent before this moment reached no one (the start-up sync ran while the socket was opening).
      this.o.emit('resync');
    });
    ws.on('ping', () => {
      this.lastSeen = this.o.now();
    });
    ws.on('message', (data, isBinary) => {
      this.lastSeen = this.o.now();
      if (isBinary) return;
      this.onMessage(data.toString());
    });
    ws.on('unexpected-response', (req, res) => {
      const status = res.statusCode ?? 0;
      if (status === 401 || status === 403) this.http.logRefused('websocket', status);
      else if (!this.failLogged) this.o.log.warn({ status }, 'websocket.refused');
      this.failLogged = true;
      // Handling this event makes the request ours to abort; a reset of the refused socket must not throw.
      const ignore = (): void => undefined;
      res.on('error', ignore);
      req.on('error', ignore);
      res.resume();
      ws.terminate();
    });
    ws.on('error', (err) => {
      if (!this.failLogged && !opened) this.o.log.warn({ err: err.message }, 'websocket.connect_failed');
      if (!opened) this.failLogged = true;
    });
    ws.on('close', (code, reason) => {
      if (this.ws !== ws) return;
      this.ws = undefined;
      clearInterval(this.idleTimer);
      this.idleTimer = undefined;
      this.state = 'down';
      if (opened) {
        this.o.log.warn({ code, reason: reason.toString() }, 'websocket.disconnected');
        this.o.emit('disconnected', { code, reason: reason.toString() });
      }
      if (!this.wanted || this.stopped) return;
      const delay = backoffDelay(this.attempt++, { ...(this.o.backoff ?? { baseMs: 500, capMs: 30_000 }), random: this.o.random ?? Math.random });
      this.timer = setTimeout(() => this.open(), delay);
      this.timer.unref?.();
    });
  }

  private armIdleCheck(): void {
    const idle = this.o.idleTimeoutMs ?? 90_000;
    clearInterval(this.idleTimer);
    this.idleTimer = setInterval(() => {
      if (this.o.now() - this.lastSeen > idle) {
        this.o.log.warn({ idleMs: idle }, 'websocket.idle_timeout');
        this.ws?.terminate();
      }
    }, Math.max(50, Math.floor(idle / 3)));
    this.idleTimer.unref?.();
  }

  private onMessage(text: string): void {
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      this.o.log.warn('websocket.bad_message');
      return;
    }
    const m = ServerMessageSchema.safeParse(raw);
    if (!m.success) {
      this.o.log.debug('websocket.unknown_message');
      return;
    }
    this.messages++;
    const msg = m.data;
    if (msg.type === 'stage_created' || msg.type === 'stage_deleted') {
      this.o.emit(msg.type, { stageArn: msg.data.stageArn, timestamp: msg.data.timestamp });
    } else if (msg.type === 'stage_assigned') {
      const d = msg.data;
      this.o.emit('stage_assigned', { stageArn: d.stageArn, serverId: d.serverId, previousServerId: d.previousServerId ?? null, timestamp: d.timestamp });
    } else if (msg.type === 'origin_changed') {
      this.o.emit('origin_changed', { origin: msg.data.origin, timestamp: msg.data.timestamp });
    }
  }

  /** Closes the socket; no reconnect. Idempotent. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.wanted = false;
    clearTimeout(this.timer);
    clearInterval(this.idleTimer);
    const ws = this.ws;
    this.ws = undefined;
    this.state = 'down';
    if (ws) {
      ws.removeAllListeners();
      ws.on('error', () => undefined);
      if (ws.readyState === WebSocket.OPEN) ws.close(WS_CLOSE.goingAway, 'media server stopping');
      else ws.terminate();
    }
  }
}
