import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { checkArchitecture, KNOWN_DEBT, repoSources, unusedDebt, type RuleId, type SourceFile } from './check-architecture.js';

const rulesOf = (files: SourceFile[]): RuleId[] => checkArchitecture(files, []).map((v) => v.rule);

describe('checkArchitecture', () => {
  it('reports a package importing an app, by relative path and by workspace name', () => {
    const found = checkArchitecture(
      [
        { path: 'packages/service/src/a.ts', source: "import { x } from '../../../api-server/src/config.js';\n" },
        { path: 'packages/rtc/test/b.ts', source: "\n\nimport type { Y } from 'media-server/src/app.js';\n" },
      ],
      [],
    );
    assert.deepEqual(
      found.map((v) => [v.rule, v.file, v.line, v.text]),
      [
        ['package-imports-app', 'packages/service/src/a.ts', 1, '../../../api-server/src/config.js'],
        ['package-imports-app', 'packages/rtc/test/b.ts', 3, 'media-server/src/app.js'],
      ],
    );
  });

  it("reports an app importing another app's src, from src and from its tests", () => {
    assert.deepEqual(
      rulesOf([
        { path: 'api-server/src/services/x.ts', source: "export { StageRoom } from '../../../stage-server/src/services/StageRoom.js';\n" },
        { path: 'media-server/test/y.test.ts', source: "const m = await import('../../api-server/src/app.js');\n" },
      ]),
      ['app-imports-other-app', 'app-imports-other-app'],
    );
  });

  it('reports node-datachannel imported outside packages/rtc, and lets packages/rtc, tests and tooling use it', () => {
    const found = checkArchitecture(
      [
        { path: 'media-server/src/media/rtc.ts', source: "import nodeDataChannel from 'node-datachannel';\n" },
        { path: 'packages/service/src/p.ts', source: "import { PeerConnection } from 'node-datachannel/polyfill';\n" },
        { path: 'packages/rtc/src/transport/peer.ts', source: "import ndc from 'node-datachannel';\n" },
        { path: 'stage-server/test/viewer.ts', source: "import ndc from 'node-datachannel';\n" },
        { path: 'e2e/helpers/viewer.ts', source: "import ndc from 'node-datachannel';\n" },
        { path: 'bench/send-floor.ts', source: "import ndc from 'node-datachannel';\n" },
      ],
      [],
    );
    assert.deepEqual(
      found.map((v) => [v.rule, v.file]),
      [
        ['node-datachannel-outside-rtc', 'media-server/src/media/rtc.ts'],
        ['node-datachannel-outside-rtc', 'packages/service/src/p.ts'],
      ],
    );
  });

  it('reports process.env read outside an app config.ts, in its three spellings, and allows config, tests and tooling', () => {
    const found = checkArchitecture(
      [
        { path: 'api-server/src/services/A.ts', source: 'const a = 1;\nconst port = process.env.PORT;\n' },
        { path: 'packages/service/src/logger.ts', source: "const f = process['env'].LOG_FORMAT;\n" },
        { path: 'web/src/watch.ts', source: 'const { env } = process;\n' },
        { path: 'api-server/src/config.ts', source: 'const raw = process.env;\n' },
        { path: 'api-server/test/helpers/process.ts', source: 'spawn(x, { env: { ...process.env } });\n' },
        { path: 'scripts/start.ts', source: 'const env = process.env;\n' },
        { path: 'e2e/scenarios/impair.ts', source: 'const s = process.env.IMPAIR_SECONDS;\n' },
        { path: 'bench/impair.ts', source: 'const e = process.env;\n' },
      ],
      [],
    );
    assert.deepEqual(
      found.map((v) => [v.rule, v.file, v.line]),
      [
        ['process-env-outside-config', 'api-server/src/services/A.ts', 2],
        ['process-env-outside-config', 'packages/service/src/logger.ts', 1],
        ['process-env-outside-config', 'web/src/watch.ts', 1],
      ],
    );
  });

  it("reports a route importing its app's store, type-only imports included", () => {
    assert.deepEqual(
      rulesOf([
        { path: 'api-server/src/routes/stages.ts', source: "import type { StageRecord } from '../store/store.js';\n" },
        { path: 'stage-server/src/routes/admin/x.ts', source: "import { open } from '../../store/sqlite.js';\n" },
      ]),
      ['route-imports-store', 'route-imports-store'],
    );
  });

  it('passes clean code, and does not count imports or process.env that sit in comments or strings', () => {
    const clean = `/** Reads process.env? No: import x from '../../api-server/src/app.js' is only prose. */
import {
  StageInfo,
  type MediaServerInfo,
} from '@stagecast/protocol';
import { planScaling } from '../services/planning.js';
// import ndc from 'node-datachannel';
/* const p = process.env.PORT; */
const msg = "process.env is read in config.ts; import 'node-datachannel' only in rtc";
const tpl = \`import x from '../store/store.js'\`;
export { msg, tpl };
`;
    assert.deepEqual(checkArchitecture([{ path: 'api-server/src/routes/clean.ts', source: clean }], []), []);
  });

  it('leaves out exactly the known debt, and names a debt entry that no longer matches', () => {
    const debt = [{ rule: 'route-imports-store' as const, file: 'api-server/src/routes/views.ts', text: '../store/store.js', why: 'test' }];
    const files = [{ path: 'api-server/src/routes/views.ts', source: "import type { R } from '../store/store.js';\nimport { s } from '../store/sqlite.js';\n" }];
    assert.deepEqual(
      checkArchitecture(files, debt).map((v) => v.text),
      ['../store/sqlite.js'],
    );
    assert.deepEqual(unusedDebt([{ path: 'api-server/src/routes/views.ts', source: '' }], debt), debt);
  });

  it('passes the repository as it is, and every KNOWN_DEBT entry still matches a real violation', () => {
    const files = repoSources(resolve(import.meta.dirname, '..'));
    assert.ok(files.length > 100, `only ${files.length} tracked .ts files found`);
    assert.deepEqual(checkArchitecture(files), []);
    assert.deepEqual(unusedDebt(files), []);
    assert.ok(KNOWN_DEBT.every((d) => d.why.length > 0));
  });

  it('the command exits 1 naming a deliberate violation in a repository (a new file, not yet git-added, included), and 0 with a summary once it is gone', (t) => {
    const repo = mkdtempSync(join(tmpdir(), 'arch-check-'));
    t.after(() => rmSync(repo, { recursive: true, force: true }));
    const write = (path: string, source: string): void => {
      mkdirSync(dirname(join(repo, path)), { recursive: true });
      writeFileSync(join(repo, path), source);
    };
    // The known debt of the real tree, so the command's stale-debt check has its match.
    write('api-server/src/routes/views.ts', "import type { R } from '../store/store.js';\n");
    write('packages/service/src/leak.ts', "import { loadConfig } from '../../../api-server/src/config.js';\n");
    write('node_modules/x/index.ts', "import ndc from 'node-datachannel';\n"); // never checked
    write('web/src/ignored.ts', 'const p = process.env.PORT;\n'); // left out by .gitignore
    write('.gitignore', 'web/src/ignored.ts\n');
    execFileSync('git', ['init', '-q'], { cwd: repo });
    execFileSync('git', ['add', 'api-server'], { cwd: repo }); // packages/service/src/leak.ts is new, not yet added
    const run = () =>
      spawnSync(process.execPath, ['--import', 'tsx', resolve(import.meta.dirname, 'check-architecture.ts'), repo], { encoding: 'utf8' });

    const bad = run();
    assert.equal(bad.status, 1, bad.stderr);
    assert.match(bad.stderr, /packages\/service\/src\/leak\.ts:1 {2}\[package-imports-app\] {2}\.\.\/\.\.\/\.\.\/api-server\/src\/config\.js/);
    assert.doesNotMatch(bad.stderr, /node_modules|ignored\.ts/);

    write('packages/service/src/leak.ts', 'export const fine = 1;\n');
    const good = run();
    assert.equal(good.status, 0, good.stderr);
    assert.match(good.stdout, /^architecture check: 2 files, 5 rules, no new violations/);
  });
});
