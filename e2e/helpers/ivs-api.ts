/**
 * An API Server stand-in for e2e runs where the Media Server must see Amazon IVS stages (arn:aws:…) while the media
 * really goes to our stage server: it implements the Media Server's side of the contract (register, heartbeat,
 * stages, PUBLISH token, /ws) and, for the stage server, the JWKS its participant tokens are verified with and the
 * participant-events sink. Tokens are real ES384 participant JWTs (the claims IVS uses) for the LOCAL stage, so
 * the stage server accepts them; the whipUrl handed out is whatever the test maps the stage to (a 307 chain).
 * The Media Server's code path is the production one: it only sees an IVS ARN, a token and a WHIP URL.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair, type JWK } from 'jose';
import { WebSocketServer } from 'ws';
import { API_ROUTES, stageIdOf, type StageArn } from '@stagecast/protocol';

export interface IvsStageMapping {
  /** What the Media Server is told: arn:aws:ivs:… */
  ivsArn: StageArn;
  /** The stage server's stage the token is for (its `resource` claim). */
  localArn: StageArn;
  /** The WHIP URL handed to the Media Server (e.g. the first hop of a redirect chain). */
  whipUrl: string;
}

export interface IvsApi {
  url: string;
  stages: IvsStageMapping[];
  /** Every PUBLISH token issued (the redirect chain accepts exactly these). */
  issued: Set<string>;
  tokenCalls: number;
  registered(): boolean;
  /** A participant token for the stage server: publish or subscribe. */
  sign(localArn: StageArn, capability: 'publish' | 'subscribe', whipUrl: string): Promise<string>;
  stop(): Promise<void>;
}

export async function startIvsApi(o: { secret: string; heartbeatIntervalMs?: number }): Promise<IvsApi> {
  const { publicKey, privateKey } = await generateKeyPair('ES384', { extractable: true });
  const jwk = (await exportJWK(publicKey)) as JWK;
  jwk.kid = 'e2e-ivs';
  jwk.alg = 'ES384';
  jwk.use = 'sig';
  let servers = 0;
  const wss = new WebSocketServer({ noServer: true });
  const api: IvsApi = {
    url: '',
    stages: [],
    issued: new Set(),
    tokenCalls: 0,
    registered: () => servers > 0,
    async sign(localArn, capability, whipUrl) {
      return new SignJWT({
        resource: localArn,
        topic: stageIdOf(localArn),
        whip_url: whipUrl,
        capabilities: { allow_publish: capability === 'publish', allow_subscribe: capability === 'subscribe' },
        version: '1.0',
      })
        .setProtectedHeader({ alg: 'ES384', kid: jwk.kid!, typ: 'JWT' })
        .setJti(`${capability === 'publish' ? 'pub' : 'sub'}_${randomBytes(6).toString('hex')}`)
        .setIssuedAt()
        .setExpirationTime('1h')
        .sign(privateKey);
    },
    async stop() {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };

  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  async function handle(req: IncomingMessage, res: ServerResponse, raw: string): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]!;
    if (path === API_ROUTES.jwks) return json(res, 200, { keys: [jwk] });
    if (path === API_ROUTES.participantEvents) return json(res, 200, { ok: true });
    if (req.headers.authorization !== `Bearer ${o.secret}`) return json(res, 401, { error: { code: 'UNAUTHORIZED', message: 'secret' } });
    const body = raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
    const interval = o.heartbeatIntervalMs ?? 500;
    if (path === API_ROUTES.register) {
      servers++;
      return json(res, 200, { ok: true, serverId: body.serverId, heartbeatIntervalMs: interval });
    }
    if (path === API_ROUTES.heartbeat) return json(res, 200, { ok: true, heartbeatIntervalMs: interval });
    if (path === API_ROUTES.stages) {
      return json(res, 200, { stages: api.stages.map((s) => ({ stageArn: s.ivsArn, stageId: stageIdOf(s.ivsArn), viewerCount: 0, capacity: 50, state: 'active' })) });
    }
    if (path === API_ROUTES.token) {
      api.tokenCalls++;
      const s = api.stages.find((x) => x.ivsArn === body.stageArn);
      if (!s) return json(res, 404, { error: { code: 'NOT_FOUND', message: 'no such stage' } });
      const token = await api.sign(s.localArn, 'publish', s.whipUrl);
      api.issued.add(token);
      return json(res, 200, { token, whipUrl: s.whipUrl, participantId: `pub_${api.tokenCalls}`, expiresAt: new Date(Date.now() + 3_600_000).toISOString() });
    }
    return json(res, 404, { error: { code: 'NOT_FOUND', message: 'no such route' } });
  }

  const server: Server = createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => void handle(req, res, raw).catch((e: unknown) => json(res, 500, { error: { code: 'INTERNAL', message: String(e) } })));
  });
  server.on('upgrade', (req, socket, head) => {
    if (!req.url?.startsWith(API_ROUTES.ws) || req.headers.authorization !== `Bearer ${o.secret}`) {
      socket.on('error', () => undefined);
      socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  api.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return api;
}
