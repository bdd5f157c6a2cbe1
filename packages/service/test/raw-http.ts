/** Raw HTTP exchanges, for what Node's HTTP server answers before any framework (431, 400). Used by every app's tests. */
import { connect } from 'node:net';

/** One raw HTTP exchange: what Node's server writes before any framework sees the request. */
export function rawRequest(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.write(request));
    let out = '';
    s.on('data', (d) => (out += d.toString()));
    s.on('error', (e) => (out ? resolve(out) : reject(e)));
    s.on('close', () => resolve(out));
  });
}

export function bodyOf(raw: string): unknown {
  return JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4));
}

/** A request whose header fields are larger than Node's limit (16 KiB): 431. */
export const oversizedHeaderRequest = (path = '/health') => `GET ${path} HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`;
