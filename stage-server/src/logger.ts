import pino, { type Logger } from 'pino';

/** pino JSON to stdout, with secrets redacted at the logger so no call site can leak one. */
export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'stage-server' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: [
        'authorization',
        'token',
        'secret',
        '*.authorization',
        '*.token',
        '*.secret',
        'req.headers.authorization',
        'headers.authorization',
      ],
      censor: '[redacted]',
    },
  });
}
