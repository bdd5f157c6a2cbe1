/** The Media Server's pino logger (redaction list shared by every app: @stagecast/service). */
import { createServiceLogger, type Logger } from '@stagecast/service';
import type { DestinationStream } from 'pino';

export type { Logger };

export function createLogger(level: string, base: Record<string, unknown> = {}, destination?: DestinationStream): Logger {
  return createServiceLogger('media-server', level, { base, ...(destination ? { destination } : {}) });
}
