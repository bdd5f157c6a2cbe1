/**
 * The tool's HTTP client: node:http(s) with keep-alive agents, lighter per request than fetch — at 1,000 joins a
 * second the client's own CPU must not be what the latency measures. JSON in, status and text out.
 */
import http from 'node:http';
import https from 'node:https';

export interface HttpAnswer {
  status: number;
  text: string;
}

const agents = {
  'http:': new http.Agent({ keepAlive: true, maxSockets: 512 }),
  'https:': new https.Agent({ keepAlive: true, maxSockets: 512 }),
};

/** Rejects on a network error, on `signal`, or after `timeoutMs` with no complete answer. */
export function request(
  method: string,
  url: string,
  o: { headers?: Record<string, string>; body?: string; timeoutMs: number; signal?: AbortSignal },
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    const headers: Record<string, string> = { ...o.headers };
    if (o.body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(o.body));
    }
    const req = mod.request(u, { method, headers, agent: agents[u.protocol as 'http:' | 'https:'], ...(o.signal ? { signal: o.signal } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', fail);
    });
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${o.timeoutMs} ms`)), o.timeoutMs);
    function fail(err: Error) {
      clearTimeout(timer);
      reject(err);
    }
    req.on('error', fail);
    req.end(o.body);
  });
}

/** Closes the idle keep-alive sockets, so the process can exit. */
export function closeAgents(): void {
  for (const a of Object.values(agents)) a.destroy();
}
