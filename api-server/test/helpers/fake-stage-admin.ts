/**
 * A tiny REAL HTTP server implementing exactly the stage server's admin API (packages/protocol stage-server.ts),
 * for when the real stage server is not available. Bearer STAGE_SERVER_SECRET. In memory.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CreateStageRequestSchema, localStageArn, STAGE_SERVER_ROUTES, type LocalStage } from '@stagecast/protocol';

export interface FakeStageAdmin {
  url: string;
  stages: Map<string, LocalStage>;
  calls: { method: string; path: string }[];
  /** The next n calls answer 503 (transient failures). */
  failNext(n: number): void;
  /** While set, every request (GET /health too) answers 503: a server that is away but keeps its stages. */
  setAway(away: boolean): void;
  close(): Promise<void>;
}

export async function startFakeStageAdmin(secret: string): Promise<FakeStageAdmin> {
  const stages = new Map<string, LocalStage>();
  const calls: { method: string; path: string }[] = [];
  let failures = 0;
  let away = false;
  let url = '';
  const server: Server = createServer((req, res) => {
    const send = (status: number, body?: unknown) => {
      res.writeHead(status, body === undefined ? {} : { 'content-type': 'application/json' });
      res.end(body === undefined ? undefined : JSON.stringify(body));
    };
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = (req.url ?? '/').split('?')[0]!;
      calls.push({ method: req.method ?? '', path });
      if (away) return send(503, { error: { code: 'INTERNAL', message: 'away' } });
      // Liveness, open as the real stage server's is (the API Server's StageServerPool reads it).
      if (req.method === 'GET' && path === '/health') return send(200, { status: 'ok', service: 'stage-server' });
      const auth = req.headers.authorization;
      if (!auth) return send(401, { error: { code: 'UNAUTHORIZED', message: 'bearer required' } });
      if (auth !== `Bearer ${secret}`) return send(403, { error: { code: 'FORBIDDEN', message: 'wrong secret' } });
      if (failures > 0) {
        failures--;
        return send(503, { error: { code: 'INTERNAL', message: 'injected failure' } });
      }
      if (path === STAGE_SERVER_ROUTES.stages && req.method === 'GET') return send(200, { stages: [...stages.values()] });
      if (path === STAGE_SERVER_ROUTES.stages && req.method === 'POST') {
        let body: unknown;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString() || '{}');
        } catch {
          return send(400, { error: { code: 'INVALID_INPUT', message: 'bad json' } });
        }
        const r = CreateStageRequestSchema.safeParse(body);
        if (!r.success) return send(400, { error: { code: 'INVALID_INPUT', message: 'bad body' } });
        const stageId = randomBytes(8).toString('hex');
        const stage: LocalStage = {
          stageArn: localStageArn(stageId),
          stageId: stageId as LocalStage['stageId'],
          name: r.data.name ?? '',
          tags: r.data.tags ?? {},
          createdAt: new Date().toISOString(),
          whipUrl: url + STAGE_SERVER_ROUTES.whip(stageId),
          whepUrl: url + STAGE_SERVER_ROUTES.whep(stageId),
        };
        stages.set(stageId, stage);
        return send(201, { stage });
      }
      const m = /^\/admin\/stages\/([^/]+)$/.exec(path);
      if (m && req.method === 'DELETE') {
        const id = decodeURIComponent(m[1]!);
        if (!stages.delete(id)) return send(404, { error: { code: 'NOT_FOUND', message: 'no such stage' } });
        return send(204);
      }
      if (m && req.method === 'GET') {
        const s = stages.get(decodeURIComponent(m[1]!));
        return s ? send(200, { stage: s }) : send(404, { error: { code: 'NOT_FOUND', message: 'no such stage' } });
      }
      return send(404, { error: { code: 'NOT_FOUND', message: 'no route' } });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    stages,
    calls,
    failNext(n) {
      failures = n;
    },
    setAway(v) {
      away = v;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
