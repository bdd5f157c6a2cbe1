/**
 * Logs for people and for machines. JSON is the format whenever the output is not a terminal (a file, a pipe, a log
 * collector); on a terminal the lines are pretty-printed (pino-pretty), unless LOG_FORMAT says otherwise.
 * `npm start` pipes every app's output to prefix it with `[app]`, so the apps write JSON and scripts/start.ts, which
 * owns the terminal, pretty-prints each line; an app started alone on a terminal pretty-prints itself.
 */
import pinoPretty from 'pino-pretty';

export type LogFormat = 'json' | 'pretty';

/** The decision: an explicit 'json' / 'pretty' wins; otherwise (unset, '', 'auto') pretty on a terminal only. */
export function chooseLogFormat(o: { isTTY: boolean | undefined; requested?: string | undefined }): LogFormat {
  const r = o.requested?.trim().toLowerCase();
  if (r === 'json' || r === 'pretty') return r;
  return o.isTTY === true ? 'pretty' : 'json';
}

export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;

const PRETTY_OPTIONS = {
  translateTime: 'SYS:HH:MM:ss.l',
  // `service` is in the [app] prefix of npm start's lines; pid and hostname say nothing on one machine.
  ignore: 'pid,hostname,service',
  singleLine: true,
} as const;

/** One JSON log line → one readable line (no trailing newline). A line that is not JSON is returned as it is. */
export function prettyLineFormatter(o: { colorize: boolean }): (line: string) => string {
  const format = pinoPretty.prettyFactory({ ...PRETTY_OPTIONS, colorize: o.colorize });
  return (line) => {
    if (!line.startsWith('{')) return line;
    try {
      return format(JSON.parse(line) as object).replace(/\n+$/, '');
    } catch {
      return line;
    }
  };
}

/** A synchronous pino-pretty stream to stdout, for an app whose own output is a terminal. */
export function prettyStdout(): NodeJS.WritableStream {
  return pinoPretty.build({ ...PRETTY_OPTIONS, colorize: true, sync: true, destination: 1 });
}
