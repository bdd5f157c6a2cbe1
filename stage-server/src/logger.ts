/** The stage server's pino logger (redaction list shared by every app: @stagecast/service). */
import { createServiceLogger, type Logger } from '@stagecast/service';

export function createLogger(level: string): Logger {
  return createServiceLogger('stage-server', level);
}
