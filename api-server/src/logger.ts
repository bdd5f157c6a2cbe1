/** pino JSON logs. Redaction at the logger, so no call site can leak a secret by mistake. */
import pino, { type DestinationStream, type Logger } from 'pino';

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

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'api-server' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    },
    destination ?? pino.destination({ fd: 1, sync: false }),
  );
}
