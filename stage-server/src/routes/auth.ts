import { Forbidden, Unauthorized } from '@stagecast/protocol';
import { bearerToken, secretEquals } from '@stagecast/service';

/** Admin API guard: missing credentials → Unauthorized (401), wrong ones → Forbidden (403). */
export function requireSecret(authorization: string | string[] | undefined, secret: string): void {
  const given = bearerToken(authorization);
  if (given === undefined) throw new Unauthorized('credentials required');
  if (given === '') throw new Unauthorized('Authorization: Bearer <STAGE_SERVER_SECRET> required');
  if (!secretEquals(given, secret)) throw new Forbidden('credentials not accepted');
}
