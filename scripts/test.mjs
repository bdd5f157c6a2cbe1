#!/usr/bin/env node
// Runs the test suites with Node's own test runner (TypeScript through tsx).
// usage: node scripts/test.mjs [--unit] [dir ...]   --unit leaves out e2e/ (real multi-process tests)
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const args = process.argv.slice(2);
const unit = args.includes('--unit');
const dirs = args.filter((a) => !a.startsWith('--'));
const roots = dirs.length
  ? dirs.map((d) => resolve(process.cwd(), d))
  : ['packages', 'api-server', 'stage-server', 'media-server', 'scripts', 'e2e'].map((d) => join(root, d)).filter((d) => !(unit && d.endsWith('e2e')));

function walk(dir, out) {
  if (dir.endsWith('.test.ts')) {
    out.push(dir);
    return out;
  }
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of entries) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const files = roots.flatMap((r) => walk(r, [])).sort();
if (files.length === 0) {
  console.error('no test files found under', roots.map((r) => relative(root, r)).join(', '));
  process.exit(1);
}
// A file whose process never exits (a socket or timer left open) would hold the runner until CI's own limit: the
// whole run gets RUN_TIMEOUT_MIN (default 30) minutes, then its process group is killed and the run fails, naming why.
const limitMin = Number(process.env.RUN_TIMEOUT_MIN ?? 30);
const child = spawn(
  process.execPath,
  ['--expose-gc', '--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=1', ...files.map((f) => relative(process.cwd(), f))],
  { stdio: 'inherit', env: { ...process.env, NODE_ENV: 'test' }, detached: true },
);
const killGroup = (sig) => {
  try {
    process.kill(-child.pid, sig);
  } catch {
    /* already gone */
  }
};
const watchdog = setTimeout(() => {
  console.error(`\ntest run exceeded ${limitMin} min: a test file did not finish or its process did not exit (an open handle); killed`);
  killGroup('SIGKILL');
}, limitMin * 60_000);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => killGroup(sig));
child.on('exit', (code, signal) => {
  clearTimeout(watchdog);
  process.exit(code ?? (signal ? 1 : 1));
});
