/** Framework-free HTTP shapes the WHIP/WHEP endpoints take and give, and small helpers shared by them. */
import type { ErrorCode } from '@stagecast/protocol';
export interface HttpRequest {
  method: string;
  /** Path and query, as received. */
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[]>;
  body?: string | Buffer;
}

export function header(req: Pick<HttpRequest, 'headers'>, name: string): string | undefined {
  const v = req.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** The media type without parameters, lower case. */
export function contentType(req: Pick<HttpRequest, 'headers'>): string {
  return (header(req, 'content-type') ?? '').split(';')[0]!.trim().toLowerCase();
}

/** A JSON error body in the project's shape ({error:{code,message}}), with a code from the closed list. */
export function problem(status: number, code: ErrorCode, message: string, headers: Record<string, string | string[]> = {}): HttpResponse {
  return {
    status,
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ error: { code, message } }),
  };
}

export interface IceServerConfig {
  urls: string; // stun:host:port or turn:host:port?transport=udp
  username?: string;
  credential?: string;
}

/** RFC 9725 §4.6 Link headers for the ICE servers. */
export function iceServerLinks(servers: readonly IceServerConfig[]): string[] {
  const q = (s: string) => `"${s.replace(/["\\]/g, '')}"`;
  return servers.map((s) =>
    s.username !== undefined && s.credential !== undefined
      ? `<${s.urls}>; rel="ice-server"; username=${q(s.username)}; credential=${q(s.credential)}; credential-type="password"`
      : `<${s.urls}>; rel="ice-server"`,
  );
}

/** node-datachannel's ICE server strings: stun:host:port, turn:user:pass@host:port. */
export function toNodeDatachannelIce(servers: readonly IceServerConfig[]): string[] {
  return servers.map((s) => {
    const u = s.urls;
    const colon = u.indexOf(':');
    const scheme = u.slice(0, colon);
    const rest = u.slice(colon + 1).split('?')[0]!;
    if (s.username === undefined || s.credential === undefined) return `${scheme}:${rest}`;
    return `${scheme}:${encodeURIComponent(s.username)}:${encodeURIComponent(s.credential)}@${rest}`;
  });
}
