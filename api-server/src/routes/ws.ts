/**
 * The Media Server WebSocket (`/ws` or `/` with `?type=media-server`). The secret is checked BEFORE the upgrade:
 * a refused client gets a plain HTTP 401/403 and never a socket. Each connection numbers its messages (`seq`).
 */
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { WebSocket, WebSocketServer } from 'ws';
import { ERROR_CODES, ServerIdSchema, WS_CLOSE, type ErrorCode, type ServerId, type ServerMessage } from '@stagecast/protocol';
import { checkMediaServerSecret } from '../auth.js';
import type { Logger } from '../logger.js';
import type { EventBus } from '../services/EventBus.js';

export interface MediaSocketOptions {
  bus: EventBus;
  secret: string;
  enabled: boolean;
  pingIntervalMs: number;
  log: Logger;
  /** A Media Server's socket (`?serverId=`) opened or closed; not called while the API Server itself shuts down. */
  presence?: { opened(serverId: ServerId): Promise<void>; closed(serverId: ServerId): Promise<void> };
}

/** A socket that cannot keep up (this many bytes queued) is dropped; the Media Server re-syncs on reconnect. */
const MAX_BUFFERED = 4 * 1024 * 1024;

function refuse(socket: Duplex, code: ErrorCode, message: string): void {
  const status = ERROR_CODES[code];
  const body = JSON.stringify({ error: { code, message } });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

export function attachMediaServerSocket(app: FastifyInstance, o: MediaSocketOptions): void {
  const log = o.log.child({ component: 'ws' });
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  const alive = new WeakMap<WebSocket, boolean>();
  let closing = false;
  const presence = (what: 'opened' | 'closed', id: ServerId | undefined) => {
    if (!o.presence || !id || closing) return;
    o.presence[what](id).catch((err: Error) => log.error({ serverId: id, err: err.message }, 'ws.presence_failed'));
  };

  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      return refuse(socket, 'INVALID_INPUT', 'bad request target');
    }
    if (!o.enabled || (url.pathname !== '/ws' && url.pathname !== '/')) return refuse(socket, 'NOT_FOUND', 'no WebSocket here');
    if (url.searchParams.get('type') !== 'media-server') return refuse(socket, 'INVALID_INPUT', 'type must be media-server');
    const verdict = checkMediaServerSecret(req.headers, o.secret);
    if (verdict !== 'ok') {
      log.warn({ remote: req.socket.remoteAddress, verdict }, 'ws.refused');
      return verdict === 'missing'
        ? refuse(socket, 'UNAUTHORIZED', 'media server secret required')
        : refuse(socket, 'FORBIDDEN', 'media server secret not accepted');
    }
    wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, url.searchParams.get('serverId') ?? undefined, req));
  });

  function onConnection(ws: WebSocket, serverId: string | undefined, req: IncomingMessage): void {
    const clog = log.child({ serverId, remote: req.socket.remoteAddress });
    const parsed = ServerIdSchema.safeParse(serverId);
    const id = parsed.success ? parsed.data : undefined;
    let seq = 0;
    alive.set(ws, true);
    const unsubscribe = o.bus.subscribe((msg: ServerMessage) => {
      if (ws.readyState !== WebSocket.OPEN) return;
      if (ws.bufferedAmount > MAX_BUFFERED) {
        clog.warn({ buffered: ws.bufferedAmount }, 'ws.slow_consumer');
        ws.terminate();
        return;
      }
      ws.send(JSON.stringify({ ...msg, seq: ++seq }));
    });
    ws.on('pong', () => alive.set(ws, true));
    ws.on('message', () => {
      // The channel is one-way; client messages are ignored.
    });
    ws.on('error', (err) => clog.warn({ err: err.message }, 'ws.error'));
    ws.on('close', (code) => {
      unsubscribe();
      clog.info({ code }, 'ws.closed');
      presence('closed', id);
    });
    clog.info('ws.connected');
    presence('opened', id);
  }

  // Announcements may have been missed (the link between API Servers was cut): every Media Server reconnects, and
  // its client syncs everything on each opening.
  const unwatchResync = o.bus.onResync(() => {
    if (!wss.clients.size) return;
    log.warn({ sockets: wss.clients.size }, 'ws.resync');
    for (const ws of wss.clients) ws.close(WS_CLOSE.goingAway, 'resync');
  });

  // Keep-alive: a socket that did not answer the previous ping is dead.
  const pinger = setInterval(() => {
    for (const ws of wss.clients) {
      if (!alive.get(ws)) {
        ws.terminate();
        continue;
      }
      alive.set(ws, false);
      ws.ping();
    }
  }, o.pingIntervalMs);
  pinger.unref();

  app.addHook('preClose', async () => {
    closing = true;
    clearInterval(pinger);
    unwatchResync();
    for (const ws of wss.clients) ws.close(WS_CLOSE.goingAway, 'server shutting down');
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        for (const ws of wss.clients) ws.terminate();
        resolve();
      }, 1000);
      t.unref();
      const check = () => (wss.clients.size === 0 ? (clearTimeout(t), resolve()) : setTimeout(check, 20).unref());
      check();
    });
    wss.close();
  });
}
