/**
 * A small REAL API Server stand-in (node:http + ws) implementing the Media Server's side of the contract:
 * register, heartbeat (404 for an unknown server), stages, token, and /ws?type=media-server with the
 * Bearer secret. It can stop and start again on the same port, forget servers, and fail calls on demand.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { HeartbeatRequestSchema, RegisterRequestSchema, TokenRequestSchema, stageIdOf, type HeartbeatRequest, type Origin, type RegisterRequest, type StageArn } from '@stagecast/protocol';

/** Who publishes into a stage (pool mode): the owner, and the previous owner during a handover. */
export interface FakeAssignment {
  serverId: string | null;
  previous: string | null;
}

export interface FakeApi {
  url: string;
  port: number;
  secret: string;
  stages: Set<StageArn>;
  servers: Map<string, { port: number; heartbeats: number; legs: unknown[]; publisherOnline?: boolean; register: RegisterRequest; last?: HeartbeatRequest }>;
  /**
   * Pool mode (an API Server that assigns stages): the stage list names each stage's owner and the origin, and a
   * token for a stage goes only to its owner or previous owner (409 to any other server). Off: the seed's contract.
   */
  pool: boolean;
  /** Every heartbeat received, in order. */
  heartbeatLog: HeartbeatRequest[];
  assignments: Map<StageArn, FakeAssignment>;
  origin: Origin | null;
  /** Sets a stage's owner and sends stage_assigned. */
  assign(arn: StageArn, serverId: string | null, previous?: string | null): void;
  /** Sets the origin and sends origin_changed. */
  setOrigin(origin: Origin | null): void;
  calls: { method: string; path: string; status: number }[];
  tokensIssued: Map<StageArn, number>;
  wsConnections: number;
  /** Upgrade requests, accepted or not. */
  wsAttempts: number;
  heartbeatIntervalMs: number;
  /** The next n calls to `path` answer `status`. */
  failNext(path: string, status: number, n?: number): void;
  createStage(arn: StageArn): void;
  deleteStage(arn: StageArn): void;
  forgetServers(): void;
  /** Holds every WebSocket upgrade (the socket stays 'connecting') until the returned function is called. */
  holdUpgrades(): () => void;
  openSockets(): number;
  stop(): Promise<void>;
  start(): Promise<void>;
}

export async function startFakeApi(o: {
  secret: string;
  heartbeatIntervalMs?: number;
  tokenTtlMs?: number;
  port?: number;
  /** Where stages take WHIP: `${whipBase}/stages/<id>/whip` (default: a closed port). */
  whipBase?: string;
}): Promise<FakeApi> {
  const failures = new Map<string, { status: number; n: number }>();
  let server: Server | undefined;
  let wss: WebSocketServer | undefined;
  let seq = 0;
  let upgradeGate: Promise<void> | undefined;
  const api: FakeApi = {
    url: '',
    port: o.port ?? 0,
    secret: o.secret,
    stages: new Set(),
    servers: new Map(),
    pool: false,
    heartbeatLog: [],
    assignments: new Map(),
    origin: null,
    assign(arn, serverId, previous = null) {
      api.assignments.set(arn, { serverId, previous });
      send({ type: 'stage_assigned', seq: ++seq, data: { stageArn: arn, serverId, previousServerId: previous, timestamp: new Date().toISOString() } });
    },
    setOrigin(origin) {
      api.origin = origin;
      send({ type: 'origin_changed', seq: ++seq, data: { origin, timestamp: new Date().toISOString() } });
    },
    calls: [],
    tokensIssued: new Map(),
    wsConnections: 0,
    wsAttempts: 0,
    heartbeatIntervalMs: o.heartbeatIntervalMs ?? 200,
    failNext(path, status, n = 1) {
      failures.set(path, { status, n });
    },
    createStage(arn) {
      api.stages.add(arn);
      broadcast('stage_created', arn);
    },
    deleteStage(arn) {
      api.stages.delete(arn);
      broadcast('stage_deleted', arn);
    },
    forgetServers() {
      api.servers.clear();
    },
    holdUpgrades() {
      let release!: () => void;
      upgradeGate = new Promise<void>((r) => (release = r));
      return () => {
        upgradeGate = undefined;
        release();
      };
    },
    openSockets() {
      return wss ? wss.clients.size : 0;
    },
    async stop() {
      if (!server) return;
      for (const ws of wss?.clients ?? []) ws.terminate();
      wss?.close();
      const s = server;
      server = undefined;
      wss = undefined;
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    },
    async start() {
      if (server) return;
      wss = new WebSocketServer({ noServer: true });
      wss.on('connection', () => api.wsConnections++);
      server = createServer((req, res) => handle(req, res));
      server.on('upgrade', (req, socket, head) => {
        api.wsAttempts++;
        const u = new URL(req.url ?? '/', 'http://x');
        if (u.pathname !== '/ws' || u.searchParams.get('type') !== 'media-server' || req.headers.authorization !== `Bearer ${o.secret}`) {
          socket.on('error', () => undefined); // the refused client may reset the connection
          socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
          return;
        }
        const w = wss!;
        const accept = () => w.handleUpgrade(req, socket, head, (ws: WebSocket) => w.emit('connection', ws, req));
        if (upgradeGate) void upgradeGate.then(accept);
        else accept();
      });
      const s = server;
      await new Promise<void>((r) => s.listen(api.port, '127.0.0.1', () => r()));
      api.port = (s.address() as AddressInfo).port;
      api.url = `http://127.0.0.1:${api.port}`;
    },
  };

  function broadcast(type: 'stage_created' | 'stage_deleted', arn: StageArn): void {
    send({ type, seq: ++seq, data: { stageArn: arn, timestamp: new Date().toISOString() } });
  }
  function send(m: unknown): void {
    const msg = JSON.stringify(m);
    for (const ws of wss?.clients ?? []) ws.send(msg);
  }

  function handle(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = (req.url ?? '/').split('?')[0]!;
      const send = (status: number, body: unknown) => {
        api.calls.push({ method: req.method ?? '', path, status });
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (req.headers.authorization !== `Bearer ${o.secret}`) return send(req.headers.authorization ? 403 : 401, { error: { code: 'FORBIDDEN', message: 'secret' } });
      const f = failures.get(path);
      if (f && f.n > 0) {
        f.n--;
        return send(f.status, { error: { code: 'INTERNAL', message: 'injected' } });
      }
      let body: unknown;
      try {
        body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : undefined;
      } catch {
        return send(400, { error: { code: 'INVALID_INPUT', message: 'json' } });
      }
      if (path === '/api/media/register' && req.method === 'POST') {
        const r = RegisterRequestSchema.parse(body);
        api.servers.set(r.serverId, { port: r.port, heartbeats: 0, legs: [], register: r });
        return send(200, { ok: true, serverId: r.serverId, heartbeatIntervalMs: api.heartbeatIntervalMs });
      }
      if (path === '/api/media/heartbeat' && req.method === 'POST') {
        const h = HeartbeatRequestSchema.parse(body);
        api.heartbeatLog.push(h);
        const s = api.servers.get(h.serverId);
        if (!s) return send(404, { error: { code: 'NOT_FOUND', message: 'unknown media server: register again' } });
        s.heartbeats++;
        s.legs = h.legs ?? [];
        s.last = h;
        if (h.publisherOnline !== undefined) s.publisherOnline = h.publisherOnline;
        return send(200, { ok: true, heartbeatIntervalMs: api.heartbeatIntervalMs });
      }
      if (path === '/api/media/stages' && req.method === 'GET') {
        const stages = [...api.stages].map((arn) => {
          const base = { stageArn: arn, stageId: stageIdOf(arn), viewerCount: 0, capacity: 50, state: 'active' };
          if (!api.pool) return base;
          const a = api.assignments.get(arn);
          return { ...base, mediaServerId: a?.serverId ?? null, previousMediaServerId: a?.previous ?? null };
        });
        return send(200, api.pool ? { stages, origin: api.origin } : { stages });
      }
      if (path === '/api/media/token' && req.method === 'POST') {
        const t = TokenRequestSchema.parse(body);
        if (!api.stages.has(t.stageArn)) return send(404, { error: { code: 'NOT_FOUND', message: 'no such active stage' } });
        const a = api.assignments.get(t.stageArn);
        if (api.pool && t.serverId !== undefined && a?.serverId !== t.serverId && a?.previous !== t.serverId) {
          return send(409, { error: { code: 'CONFLICT', message: 'this stage is assigned to another media server' } });
        }
        const n = (api.tokensIssued.get(t.stageArn) ?? 0) + 1;
        api.tokensIssued.set(t.stageArn, n);
        return send(200, {
          token: `tok-${stageIdOf(t.stageArn)}-${n}`,
          whipUrl: `${o.whipBase ?? 'http://127.0.0.1:9'}/stages/${stageIdOf(t.stageArn)}/whip`,
          participantId: `pub_${n}`,
          expiresAt: new Date(Date.now() + (o.tokenTtlMs ?? 3_600_000)).toISOString(),
        });
      }
      return send(404, { error: { code: 'NOT_FOUND', message: 'no such route' } });
    });
  }

  await api.start();
  return api;
}
