/**
 * Runs an e2e scenario file inside a fresh private network namespace (see netns.ts) and returns the JSON it prints
 * on its `RESULT ` line, with everything it printed (for failure messages). At timeoutMs the scenario gets `signal`
 * (SIGKILL by default; SIGINT lets one that started `npm start` stop its children), and SIGKILL 10 s later.
 */
import { ROOT } from './apps.js';
import { createNetns } from './netns.js';

export function runScenario(file: string, timeoutMs: number, opts: { signal?: NodeJS.Signals } = {}): Promise<{ result: any; output: string }> {
  const ns = createNetns();
  return new Promise((resolve, reject) => {
    const child = ns.spawn(process.execPath, ['--import', 'tsx', file], { cwd: ROOT, env: { ...process.env, NODE_ENV: 'test' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    let hardKill: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      child.kill(opts.signal ?? 'SIGKILL');
      hardKill = setTimeout(() => child.kill('SIGKILL'), 10_000);
    }, timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      clearTimeout(hardKill);
      ns.destroy();
      const line = output.split('\n').find((l) => l.startsWith('RESULT '));
      if (!line) return reject(new Error(`scenario printed no result:\n${output.slice(-3000)}`));
      resolve({ result: JSON.parse(line.slice(7)), output });
    });
  });
}
