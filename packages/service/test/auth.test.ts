import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bearerToken, secretEquals, tokenHash } from '../src/index.js';

test('bearerToken: one reading of Authorization for every app — undefined when absent, "" when not one Bearer credential', () => {
  const cases: [string | string[] | undefined, string | undefined][] = [
    [undefined, undefined],
    ['Bearer abc.def-ghi_~+/=', 'abc.def-ghi_~+/='],
    ['bearer abc', 'abc'],
    ['BEARER\tabc', 'abc'],
    ['  Bearer   abc  ', 'abc'],
    [['Bearer first', 'Bearer second'], 'first'],
    ['', ''],
    ['Bearer', ''],
    ['Bearer ', ''],
    ['Basic dXNlcjpwYXNz', ''],
    ['Bearerabc', ''],
    ['Bearer two words', ''],
    ['Token abc', ''],
  ];
  for (const [header, want] of cases) assert.equal(bearerToken(header), want, JSON.stringify(header));
});

test('secretEquals: equal secrets match whatever their length; different or empty expected never match', () => {
  assert.equal(secretEquals('s3cret-value', 's3cret-value'), true);
  assert.equal(secretEquals('s3cret-valuE', 's3cret-value'), false);
  assert.equal(secretEquals('s3cret', 's3cret-value'), false, 'a prefix is not a match');
  assert.equal(secretEquals('s3cret-value-longer', 's3cret-value'), false);
  assert.equal(secretEquals('', ''), false, 'an unset secret accepts no one');
  assert.equal(secretEquals('x'.repeat(10_000), 'y'), false);
});

test('tokenHash: stable hex SHA-256, never the token', () => {
  assert.equal(tokenHash('abc'), tokenHash('abc'));
  assert.match(tokenHash('abc'), /^[0-9a-f]{64}$/);
  assert.notEqual(tokenHash('abc'), tokenHash('abd'));
});
