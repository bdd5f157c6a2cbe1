/**
 * Credentials on the wire, read and compared one way in every process. Dependency-free, so the WHIP/WHEP transport
 * (packages/rtc) uses the same reading as the apps.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * The token of an `Authorization: Bearer <token>` header (RFC 6750 §2.1; the scheme is case-insensitive).
 * undefined: no header at all; '': a header that is not one Bearer credential (another scheme, no token, two words).
 * Callers tell "missing" (401) from "wrong" (403) with that difference.
 */
export function bearerToken(value: string | readonly string[] | undefined): string | undefined {
  const v = typeof value === 'string' ? value : value?.[0];
  if (v === undefined) return undefined;
  const m = /^Bearer[ \t]+(\S+)$/i.exec(v.trim());
  return m ? m[1]! : '';
}

const sha256 = (s: string): Buffer => createHash('sha256').update(s).digest();

/**
 * Constant-time comparison of a presented secret with the expected one. Both sides are hashed first, so the
 * comparison takes the same time whatever the lengths; an empty expected secret never matches.
 */
export function secretEquals(given: string, expected: string): boolean {
  return timingSafeEqual(sha256(given), sha256(expected)) && expected.length > 0;
}

/** A stable, non-reversible id of a token (hex SHA-256), for keying sessions and logs without keeping the token. */
export function tokenHash(token: string): string {
  return sha256(token).toString('hex');
}
