/** Helpers shared by the HTTP edge: zod parsing into typed errors, auth hooks. */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { InvalidInput } from '@stagecast/protocol';
import type { z } from 'zod';
import { assertAuth, type AuthVerdict } from '../auth.js';

export function parse<S extends z.ZodType>(schema: S, data: unknown, what = 'body'): z.output<S> {
  const r = schema.safeParse(data);
  if (!r.success) {
    const details = r.error.issues.map((i) => ({ path: i.path.map(String), code: i.code, message: i.message }));
    throw new InvalidInput(`invalid ${what}`, details);
  }
  return r.data;
}

/** An onRequest hook that refuses before the body is read: missing → 401, wrong → 403. */
export function authHook(check: (headers: FastifyRequest['headers']) => AuthVerdict, what: string) {
  return async (req: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    assertAuth(check(req.headers), what);
  };
}

export const iso = (ms: number | Date): string => (ms instanceof Date ? ms : new Date(ms)).toISOString();
