/**
 * Runs an e2e scenario file inside a fresh private network namespace (see netns.ts) and returns the JSON it prints
 * on its `RESULT ` line, with everything it printed (for failure messages). The scenario is killed at timeoutMs.
 */
import { ROOT } from './apps.js';
import { createNetns } from './netns.js';

export function runScenario(file: string, timeoutMs: number): Promise<{ result: any; output: string }> {
  const ns = createNetns();
  return new Promise((resolve, reject) => {
    const child = ns.spawn(process.execPath, ['--import', 'tsx', file], { cwd: ROOT, env: { ...process.env, NODE_ENV: 'test' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      ns.destroy();
      const line = output.split('\n').find((l) => l.startsWith('RESULT '));
      if (!line) return reject(new Error(`scenario printed no result:\n${output.slice(-3000)}`));
      resolve({ result: JSON.parse(line.slice(7)), output });
    });
  });
}
