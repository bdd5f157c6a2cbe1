/** Input parsing for the routes; every error leaves as `{error:{code,message}}` through the shared handler. */
import { InvalidInput } from '@stagecast/protocol';
import { registerErrorHandling } from '@stagecast/service';
import type { z } from 'zod';

export { registerErrorHandling };

/** Parses untrusted input with a protocol schema; 400 with the issues as details. */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const r = schema.safeParse(value);
  if (!r.success) {
    throw new InvalidInput(
      `invalid ${what}`,
      r.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })),
    );
  }
  return r.data;
}
