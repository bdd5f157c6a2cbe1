/** Shared-secret checks over the one Bearer reading and constant-time comparison of @stagecast/service. */
import { Forbidden, HEADERS, Unauthorized } from '@stagecast/protocol';
import { bearerToken, secretEquals } from '@stagecast/service';

type Headers = Record<string, string | string[] | undefined>;

export const secretMatches = secretEquals;

export type AuthVerdict = 'ok' | 'missing' | 'wrong';

function header(h: Headers, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

function bearer(h: Headers): string | undefined {
  return bearerToken(h[HEADERS.authorization]);
}

function verdict(given: string | undefined, expected: string): AuthVerdict {
  if (given === undefined || given === '') return 'missing';
  return secretMatches(given, expected) ? 'ok' : 'wrong';
}

/** Client endpoints: `x-api-key`. */
export function checkApiKey(h: Headers, expected: string): AuthVerdict {
  return verdict(header(h, HEADERS.apiKey), expected);
}

/** Media Server: `Authorization: Bearer` or `x-media-server-secret`. */
export function checkMediaServerSecret(h: Headers, expected: string): AuthVerdict {
  return verdict(bearer(h) || header(h, HEADERS.mediaServerSecret), expected);
}

/** Stage server → API Server: `Authorization: Bearer`. */
export function checkBearer(h: Headers, expected: string): AuthVerdict {
  return verdict(bearer(h), expected);
}

/** A route with two credentials: either one right is enough; a wrong one is 403 unless the other is right; none is 401. */
export function eitherVerdict(a: AuthVerdict, b: AuthVerdict): AuthVerdict {
  if (a === 'ok' || b === 'ok') return 'ok';
  return a === 'missing' && b === 'missing' ? 'missing' : 'wrong';
}

export function assertAuth(v: AuthVerdict, what: string): void {
  if (v === 'missing') throw new Unauthorized(`${what} required`);
  if (v === 'wrong') throw new Forbidden(`${what} not accepted`);
}
