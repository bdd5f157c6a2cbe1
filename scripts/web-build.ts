/**
 * web/dist, built with Vite when it is missing or older than web/'s sources (a fresh clone, or edited pages). Used by
 * `npm start` and by the e2e tests that open the pages, so neither serves a stale or missing build.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '..');

/** Newest mtime under a path (node_modules and dist left out). */
function newest(p: string): number {
  if (!existsSync(p)) return 0;
  const st = statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  let t = st.mtimeMs;
  for (const name of readdirSync(p)) if (name !== 'node_modules' && name !== 'dist') t = Math.max(t, newest(join(p, name)));
  return t;
}

/** Returns the directory to serve: `webDistDir` as given (someone else's build), or web/dist built when stale. */
export function buildWebIfNeeded(webDistDir?: string, log: (msg: string) => void = console.log): string {
  const web = join(ROOT, 'web');
  const dist = resolve(ROOT, webDistDir ?? join('web', 'dist'));
  if (webDistDir) return dist;
  const built = existsSync(join(dist, 'watch.html')) ? statSync(join(dist, 'watch.html')).mtimeMs : 0;
  if (built && built >= newest(web)) return dist;
  log(built ? 'web pages changed: rebuilding web/dist …' : 'building the web pages into web/dist …');
  const vite = [join(web, 'node_modules', 'vite', 'bin', 'vite.js'), join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js')].find(existsSync);
  if (!vite) throw new Error('vite is not installed: run `npm ci` at the root first');
  const r = spawnSync(process.execPath, [vite, 'build', '--logLevel', 'warn'], { cwd: web, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`building the web pages failed (exit ${r.status ?? r.signal})`);
  return dist;
}
