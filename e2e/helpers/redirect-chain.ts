/**
 * A chain of WHIP redirects shaped like IVS's global endpoint (https://global.whip.live-video.net answers
 * 307 Temporary Redirect, possibly more than once): N real HTTP servers, each on its own origin (port, and host
 * when given), that check `Authorization: Bearer <token>` — 401 when absent, 403 when not a token the test
 * accepts — and answer 307 to the next hop, the last one to the real WHIP endpoint. Any method is redirected
 * (POST, and DELETE if a client sent one here); the path is kept from hop to hop.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RedirectHit {
  hop: number;
  method: string;
  path: string;
  status: number;
  /** The body arrived intact (a 307 must be re-sent with the same body). */
  bodyBytes: number;
}

export interface RedirectChain {
  /** The first hop's origin (http://host:port): POST to base + path. */
  base: string;
  hits: RedirectHit[];
  close(): Promise<void>;
}

export async function startRedirectChain(o: {
  /** Hosts to bind, one per hop (e.g. ['127.0.0.1', '127.0.0.2'] to change origin at each hop). */
  hosts: string[];
  /** Where the last hop sends a request for `path` (an absolute WHIP URL), or undefined for 404. */
  target(path: string): string | undefined;
  /** Is this bearer token one the chain should let through? */
  acceptToken(token: string): boolean;
}): Promise<RedirectChain> {
  const hits: RedirectHit[] = [];
  const servers: Server[] = [];
  const bases: string[] = [];
  for (let hop = 0; hop < o.hosts.length; hop++) {
    const server = createServer((req, res) => {
      let bytes = 0;
      req.on('data', (c: Buffer) => (bytes += c.length));
      req.on('end', () => {
        const path = req.url ?? '/';
        const hit = (status: number) => hits.push({ hop, method: req.method ?? '', path, status, bodyBytes: bytes });
        const auth = req.headers.authorization;
        const token = auth?.startsWith('Bearer ') ? auth.slice(7) : undefined;
        if (!token) {
          hit(401);
          res.writeHead(401, { 'www-authenticate': 'Bearer', 'content-type': 'application/json' }).end('{"error":"token required"}');
          return;
        }
        if (!o.acceptToken(token)) {
          hit(403);
          res.writeHead(403, { 'content-type': 'application/json' }).end('{"error":"token not accepted"}');
          return;
        }
        const next = hop + 1 < bases.length ? bases[hop + 1] + path : o.target(path);
        if (!next) {
          hit(404);
          res.writeHead(404).end();
          return;
        }
        hit(307);
        res.writeHead(307, { location: next }).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, o.hosts[hop], () => r()));
    servers.push(server);
    bases.push(`http://${o.hosts[hop]}:${(server.address() as AddressInfo).port}`);
  }
  return {
    base: bases[0]!,
    hits,
    async close() {
      for (const s of servers) {
        s.closeAllConnections();
        await new Promise<void>((r) => s.close(() => r()));
      }
    },
  };
}
