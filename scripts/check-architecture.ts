/**
 * The architecture rules of STYLE.md, checked on every .ts file git knows of. Run by
 * scripts/test-all.sh after the type-check: `node --import tsx scripts/check-architecture.ts` exits 1 naming each
 * violation, 0 with a one-line summary.
 *
 * No parser: comments are blanked, then import / export-from / import() specifiers and `process.env` are found by
 * regular expression, skipping matches that start inside a string. Good enough for our code; a regex literal that
 * holds a quote or a comment opener could fool it.
 *
 * Where a file sits decides what it may import:
 *   app      api-server/ media-server/ stage-server/ web/   (src/ and test/)
 *   package  packages/<name>/                              (src/ and test/)
 *   tooling  scripts/ bench/ e2e/                          (start processes, measure, test across apps)
 *   test     any file under a test/ folder or named *.test.ts, in an app or a package
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { posix, resolve } from 'node:path';

export type RuleId = 'package-imports-app' | 'app-imports-other-app' | 'node-datachannel-outside-rtc' | 'process-env-outside-config' | 'route-imports-store';

export interface SourceFile {
  /** Repository-relative, '/'-separated. */
  path: string;
  source: string;
}

export interface Violation {
  rule: RuleId;
  file: string;
  line: number;
  /** The import specifier, or the expression (`process.env`). */
  text: string;
  why: string;
}

export const APPS = ['api-server', 'media-server', 'stage-server', 'web'] as const;

/**
 * The rules, each with what it exempts and why.
 *
 * - package-imports-app: nothing under packages/ (src or test) imports an app, by relative path or by its workspace
 *   name. Packages are shared by the apps; an app is never a library. No exemption.
 * - app-imports-other-app: a file of one app (src or test) never imports another app's src/, by relative path or
 *   workspace name. Apps talk through packages/protocol over the wire. Exempt: tooling (e2e/ and bench/ start and
 *   drive several apps, scripts/start.ts runs them all).
 * - node-datachannel-outside-rtc: only packages/rtc imports node-datachannel, so the native library has one owner and
 *   one lifecycle discipline. Exempt: tests anywhere and tooling — they make real peers (a viewer, a broadcaster, the
 *   bench's sinks) to drive the code under test from outside.
 * - process-env-outside-config: `process.env` is read only in an app's src/config.ts, the one place env becomes a typed
 *   Config. Exempt: tests and tooling (they build the environment of the processes they start, and read knobs such as
 *   IMPAIR_SECONDS). Everything else — app src/ beyond config.ts, packages/ src, web/ — gets its values passed in.
 *   (packages/service's logger decides pretty or JSON from process.stdout.isTTY, not from the environment; LOG_FORMAT is
 *   read by scripts/start.ts and passed in — so it needs no exception.)
 * - route-imports-store: nothing under an app's src/routes/ imports its src/store/ (type-only imports included):
 *   routes → services → store. No exemption.
 */
export const RULES: Record<RuleId, string> = {
  'package-imports-app': 'packages/* never import an app; apps depend on packages, not the other way round',
  'app-imports-other-app': "an app never imports another app's src; apps share code through packages/ and talk over the wire",
  'node-datachannel-outside-rtc': 'only packages/rtc imports node-datachannel (tests, e2e/ and bench/ may, to make peers)',
  'process-env-outside-config': "process.env is read only in an app's src/config.ts (and in tests, scripts/, bench/, e2e/)",
  'route-imports-store': 'routes never import the store: routes → services → store',
};

/**
 * A violation the tree has today and that is not small to fix: the check passes with it and fails on any new one.
 * An entry matches by rule, file and specifier, so another store import in the same file is still reported; an entry
 * that matches nothing any more fails the command until it is removed.
 */
export interface Debt {
  rule: RuleId;
  file: string;
  text: string;
  why: string;
}

export const KNOWN_DEBT: readonly Debt[] = [
  {
    rule: 'route-imports-store',
    file: 'api-server/src/routes/views.ts',
    text: '../store/store.js',
    why:
      'type-only: the wire mappings take the store record types (StageWithCounts, MediaServerRecord, ScalingEventRecord), ' +
      'which live in the store interface; the routes also reach the store at run time through the services bag ' +
      '(dashboard.ts, health.ts, cost.ts call s.store) — moving the records into a domain module and the reads behind ' +
      'services is a refactor of its own, not a fix in passing',
  },
];

type Where =
  | { kind: 'app'; name: string; test: boolean; rest: string }
  | { kind: 'package'; name: string; test: boolean; rest: string }
  | { kind: 'tooling'; name: string; test: true; rest: string }
  | { kind: 'other'; name: ''; test: boolean; rest: string };

function locate(path: string): Where {
  const [top = '', ...restParts] = path.split('/');
  const test = /(^|\/)test\//.test(path) || path.endsWith('.test.ts');
  if ((APPS as readonly string[]).includes(top)) return { kind: 'app', name: top, test, rest: restParts.join('/') };
  if (top === 'packages' && restParts.length > 1) {
    const [name = '', ...rest] = restParts;
    return { kind: 'package', name, test, rest: rest.join('/') };
  }
  if (top === 'scripts' || top === 'bench' || top === 'e2e') return { kind: 'tooling', name: top, test: true, rest: restParts.join('/') };
  return { kind: 'other', name: '', test, rest: path };
}

/** Comments replaced by spaces (newlines kept, so offsets and line numbers stay); strings left as they are. */
function blankComments(src: string): string {
  return src.replace(/("(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'|`(?:\\.|[^`\\])*`)|\/\/[^\n]*|\/\*[\s\S]*?\*\//g, (m, str: string | undefined) =>
    str !== undefined ? m : m.replace(/[^\n]/g, ' '),
  );
}

/** Also the contents of strings blanked: what is left is code only. */
function blankStrings(code: string): string {
  return code.replace(/"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'|`(?:\\.|[^`\\])*`/g, (m) => m[0] + m.slice(1, -1).replace(/[^\n]/g, ' ') + m[0]);
}

const IMPORT_PATTERNS = [
  /\bimport\s+(?:type\s+)?(?:[\w$*{}\s,]+?\s+from\s*)?(['"])([^'"\n]+)\1/g, // import x from 'a'; import 'a'; import type {…} from 'a'
  /\bexport\s+(?:type\s+)?(?:\*(?:\s+as\s+[\w$]+)?|\{[^}]*\})\s*from\s*(['"])([^'"\n]+)\1/g, // export … from 'a'
  /\bimport\s*\(\s*(['"`])([^'"`\n]+)\1/g, // import('a')
  /\brequire\s*\(\s*(['"])([^'"\n]+)\1/g, // require('a'), in case
];

interface Found {
  index: number;
  text: string;
}

function findImports(code: string, codeOnly: string): Found[] {
  const out: Found[] = [];
  for (const re of IMPORT_PATTERNS) {
    for (const m of code.matchAll(re)) {
      const i = m.index ?? 0;
      // The keyword must be code, not the inside of a string (codeOnly keeps it only outside strings).
      if (codeOnly.slice(i, i + 6) !== code.slice(i, i + 6)) continue;
      out.push({ index: i, text: m[2] ?? '' });
    }
  }
  return out.sort((a, b) => a.index - b.index);
}

const lineOf = (src: string, index: number): number => src.slice(0, index).split('\n').length;

/** The repository path a specifier points to: relative ones resolved from the file, workspace names to their folder. */
function target(file: string, spec: string): string | null {
  if (spec.startsWith('./') || spec.startsWith('../')) return posix.normalize(posix.join(posix.dirname(file), spec));
  const name = spec.split('/')[0] ?? '';
  if ((APPS as readonly string[]).includes(name)) return spec; // the apps' workspace names are their folders
  return null;
}

const isDatachannel = (spec: string): boolean => spec === 'node-datachannel' || spec.startsWith('node-datachannel/');

export function checkArchitecture(files: readonly SourceFile[], debt: readonly Debt[] = KNOWN_DEBT): Violation[] {
  return checkAll(files).filter((v) => !debt.some((d) => matches(d, v)));
}

/** The debt entries that no longer match anything: fixed, so they must leave the list. */
export function unusedDebt(files: readonly SourceFile[], debt: readonly Debt[] = KNOWN_DEBT): Debt[] {
  const all = checkAll(files);
  return debt.filter((d) => !all.some((v) => matches(d, v)));
}

const matches = (d: Debt, v: Violation): boolean => d.rule === v.rule && d.file === v.file && d.text === v.text;

function checkAll(files: readonly SourceFile[]): Violation[] {
  const out: Violation[] = [];
  for (const f of files) {
    const where = locate(f.path);
    const code = blankComments(f.source);
    const codeOnly = blankStrings(code);
    const add = (rule: RuleId, index: number, text: string): void => {
      out.push({ rule, file: f.path, line: lineOf(f.source, index), text, why: RULES[rule] });
    };

    for (const imp of findImports(code, codeOnly)) {
      const to = target(f.path, imp.text);
      const toWhere = to === null ? null : locate(to);

      if (where.kind === 'package' && toWhere?.kind === 'app') add('package-imports-app', imp.index, imp.text);

      if (where.kind === 'app' && toWhere?.kind === 'app' && toWhere.name !== where.name && (toWhere.rest === 'src' || toWhere.rest.startsWith('src/')))
        add('app-imports-other-app', imp.index, imp.text);

      if (isDatachannel(imp.text) && !where.test && !(where.kind === 'package' && where.name === 'rtc'))
        add('node-datachannel-outside-rtc', imp.index, imp.text);

      if (
        where.kind === 'app' &&
        where.rest.startsWith('src/routes/') &&
        toWhere?.kind === 'app' &&
        toWhere.name === where.name &&
        (toWhere.rest === 'src/store' || toWhere.rest.startsWith('src/store/'))
      )
        add('route-imports-store', imp.index, imp.text);
    }

    const envAllowed = where.test || (where.kind === 'app' && where.rest === 'src/config.ts');
    if (!envAllowed) {
      // process.env, process['env'] and const { env } = process; the keyword must be code, not inside a string.
      for (const m of code.matchAll(/\bprocess\s*(?:\.\s*env\b|\[\s*(['"`])env\1\s*\])|\{[^{}]*\benv\b[^{}]*\}\s*=\s*process\b/g)) {
        const i = m.index ?? 0;
        if (codeOnly.slice(i, i + 7) === code.slice(i, i + 7)) add('process-env-outside-config', i, 'process.env');
      }
    }
  }
  return out;
}

/**
 * The repository's .ts sources as git sees them: tracked, plus new files not yet added (so a local run sees them too),
 * minus what .gitignore leaves out, node_modules, build output and files deleted from the working tree.
 */
export function repoSources(root: string): SourceFile[] {
  const paths = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard', '--', '*.ts'], { cwd: root, encoding: 'utf8' })
    .split('\0')
    .filter((p) => p !== '' && !/(^|\/)(node_modules|dist)\//.test(p) && !p.endsWith('.d.ts') && existsSync(resolve(root, p)));
  return [...new Set(paths)].map((p) => ({ path: p, source: readFileSync(resolve(root, p), 'utf8') }));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  // usage: node --import tsx scripts/check-architecture.ts [repository root]   (default: this repository)
  const root = resolve(process.argv[2] ?? resolve(import.meta.dirname, '..'));
  const files = repoSources(root);
  const found = checkArchitecture(files);
  const stale = unusedDebt(files);
  for (const v of found) console.error(`${v.file}:${v.line}  [${v.rule}]  ${v.text}  — ${v.why}`);
  for (const d of stale) console.error(`KNOWN_DEBT entry no longer matches (fixed? remove it): [${d.rule}] ${d.file} ${d.text}`);
  if (found.length > 0 || stale.length > 0) {
    console.error(`architecture check: ${found.length} violation(s), ${stale.length} stale KNOWN_DEBT entries in ${files.length} files`);
    process.exit(1);
  }
  console.log(`architecture check: ${files.length} files, ${Object.keys(RULES).length} rules, no new violations (${KNOWN_DEBT.length} known debt)`);
}
