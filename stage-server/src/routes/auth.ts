import { createHash, timingSafeEqual } from 'node:crypto';
import { Forbidden, Unauthorized } from '@stagecast/protocol';

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(header: string | string[] | undefined): string | undefined {
  const h = Array.isArray(header) ? header[0] : header;
  if (!h) return undefined;
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(h);
  return m ? m[1] : undefined;
}

/** Constant-time comparison (hashing first makes the lengths equal, so the length leaks nothing either). */
export function secretEquals(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** Admin API guard: missing credentials → Unauthorized (401), wrong ones → Forbidden (403). */
export function requireSecret(authorization: string | string[] | undefined, secret: string): void {
  const given = bearerToken(authorization);
  if (given === undefined) {
    if (authorization) throw new Unauthorized('Authorization: Bearer <STAGE_SERVER_SECRET> required');
    throw new Unauthorized('credentials required');
  }
  if (!secretEquals(given, secret)) throw new Forbidden('credentials not accepted');
}
