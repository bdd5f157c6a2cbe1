/**
 * The web pages (/broadcast, /watch, /dashboard), served from the Vite build in WEB_DIST_DIR. A deliberately tiny
 * static handler: a fixed list of pages, and /assets/<file> whose names are checked against a strict pattern (no
 * path can leave the directory). Hashed assets are cached for a year; the HTML is revalidated every time.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { NotFound } from '@stagecast/protocol';
import type { Services } from '../services.js';

const PAGES: Record<string, string> = {
  '/': 'index.html',
  '/broadcast': 'broadcast.html',
  '/watch': 'watch.html',
  '/dashboard': 'dashboard.html',
};

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.map': 'application/json; charset=utf-8',
  '.woff2': 'font/woff2',
};

/** A file name Vite writes into assets/ (name-hash.ext): letters, digits, dot, dash, underscore; no leading dot. */
const ASSET_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,200}$/;

/** Security headers for our own pages: scripts only from us (the IVS SDK too: it is built from its npm package). */
const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "connect-src 'self' http: https: ws: wss:",
  "img-src 'self' data:",
  "media-src 'self' blob:",
  "worker-src 'self' blob:",
  "style-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

export function pagesAvailable(distDir: string): boolean {
  return existsSync(join(distDir, 'watch.html'));
}

export async function pageRoutes(app: FastifyInstance, s: Services): Promise<void> {
  const dir = s.config.webDistDir;
  if (pagesAvailable(dir)) s.log.info({ dir }, 'web.pages_served');
  else s.log.warn({ dir, fix: 'npm run build -w web (npm start builds them)' }, 'web.pages_missing');

  async function send(reply: FastifyReply, file: string, cache: string): Promise<FastifyReply> {
    let body: Buffer;
    try {
      body = await readFile(join(dir, file));
    } catch {
      throw new NotFound(file.endsWith('.html') ? 'web pages not built: run `npm run build -w web`' : `no asset ${file}`);
    }
    const type = TYPES[extname(file)] ?? 'application/octet-stream';
    reply.header('content-type', type).header('cache-control', cache).header('x-content-type-options', 'nosniff');
    if (type.startsWith('text/html')) reply.header('content-security-policy', CSP).header('referrer-policy', 'no-referrer');
    return reply.send(body);
  }

  for (const [path, file] of Object.entries(PAGES)) {
    app.get(path, (_req, reply) => send(reply, file, 'no-cache'));
  }
  app.get('/assets/:name', (req, reply) => {
    const { name } = req.params as { name: string };
    if (!ASSET_NAME.test(name) || name.includes('..')) throw new NotFound(`no asset ${name}`);
    return send(reply, join('assets', name), 'public, max-age=31536000, immutable');
  });
}
