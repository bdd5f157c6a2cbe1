import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chooseLogFormat, prettyLineFormatter } from '../src/index.js';

test('log format: readable on a terminal, JSON whenever the output is not one; LOG_FORMAT=json|pretty overrides', () => {
  const cases: [boolean | undefined, string | undefined, 'json' | 'pretty'][] = [
    [true, undefined, 'pretty'],
    [false, undefined, 'json'],
    [undefined, undefined, 'json'], // a pipe or a file: process.stdout.isTTY is undefined
    [true, '', 'pretty'],
    [true, 'auto', 'pretty'],
    [false, 'auto', 'json'],
    [true, 'json', 'json'],
    [true, ' JSON ', 'json'],
    [false, 'pretty', 'pretty'],
    [undefined, 'Pretty', 'pretty'],
    [false, 'nonsense', 'json'],
  ];
  for (const [isTTY, requested, want] of cases) assert.equal(chooseLogFormat({ isTTY, requested }), want, `isTTY=${isTTY} LOG_FORMAT=${requested}`);
});

test('pretty lines: a JSON log line becomes one readable line with level, event and fields; other lines pass unchanged', () => {
  const pretty = prettyLineFormatter({ colorize: false });
  const line = JSON.stringify({ level: 30, time: '2026-01-01T10:00:00.000Z', service: 'api-server', pid: 1, hostname: 'h', msg: 'stage.created', stageArn: 'arn:x' });
  const out = pretty(line);
  assert.ok(!out.includes('\n'), out);
  assert.match(out, /INFO/);
  assert.match(out, /stage\.created/);
  assert.match(out, /stageArn/);
  assert.ok(!out.startsWith('{'), 'not JSON any more');
  assert.ok(!/hostname|pid/.test(out), 'pid and hostname are left out');
  assert.equal(pretty('invalid configuration: PORT must be a number'), 'invalid configuration: PORT must be a number');
  assert.equal(pretty('{not json'), '{not json');
});
