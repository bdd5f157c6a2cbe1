/** A pino logger that keeps its JSON lines in memory, so tests can assert on event names. */
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/logger.js';

export class LogCapture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
  lines(): Record<string, unknown>[] {
    return this.text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }
  count(msg: string): number {
    return this.lines().filter((l) => l.msg === msg).length;
  }
}

export function testLogger(level = 'debug'): { log: Logger; logs: LogCapture } {
  const logs = new LogCapture();
  return { log: createLogger(level, { serverId: 'test' }, logs), logs };
}
