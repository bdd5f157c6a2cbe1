/**
 * pino logs for every app: JSON, or readable lines when written straight to a terminal (log-format.ts). Redaction at the logger, from one list, so no call site of any app can leak a token
 * or secret by mistake — a header redacted in one app and not in another was how the three copies drifted.
 */
import pino, { type DestinationStream, type Logger } from 'pino';
import { chooseLogFormat, prettyStdout, type LogFormat } from './log-format.js';

export type { Logger };

export const REDACT_PATHS = [
  'authorization',
  'token',
  'secret',
  '*.authorization',
  '*.token',
  '*.secret',
  '*["x-api-key"]',
  '*["x-media-server-secret"]',
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers["x-media-server-secret"]',
  'headers.authorization',
  'headers["x-api-key"]',
  'headers["x-media-server-secret"]',
];

export function createServiceLogger(
  service: string,
  level: string,
  o: { base?: Record<string, unknown>; destination?: DestinationStream; format?: LogFormat } = {},
): Logger {
  // The terminal check applies to stdout only: a given destination (tests, a file) always gets JSON.
  const format = o.destination ? 'json' : (o.format ?? chooseLogFormat({ isTTY: process.stdout.isTTY }));
  return pino(
    {
      level,
      base: { service, ...o.base },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    },
    o.destination ?? (format === 'pretty' ? (prettyStdout() as DestinationStream) : pino.destination({ fd: 1, sync: false })),
  );
}
