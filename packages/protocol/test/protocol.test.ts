import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ERROR_CODES,
  ServerMessageSchema,
  StageArnSchema,
  StagecastError,
  localStageArn,
  stageIdOf,
  ViewerJoinResponseSchema,
} from '../src/index.js';

test('a local stage ARN has the IVS shape and yields its stage id', () => {
  const arn = localStageArn('abcDEF_123');
  assert.equal(StageArnSchema.parse(arn), arn);
  assert.equal(stageIdOf(arn), 'abcDEF_123');
  assert.equal(StageArnSchema.safeParse('arn:aws:ivs:us-east-1:123456789012:stage/oWXSOfbOLMte').success, true);
  assert.equal(StageArnSchema.safeParse('stage/x').success, false);
  assert.equal(StageArnSchema.safeParse('arn:aws:ivs:us-east-1:123456789012:stage/../../x').success, false);
});

test('stage events keep the seed shape {type, data:{stageArn, timestamp}}', () => {
  const msg = { type: 'stage_created', data: { stageArn: localStageArn('a'), timestamp: new Date().toISOString() } };
  assert.deepEqual(ServerMessageSchema.parse(msg), msg);
  assert.equal(ServerMessageSchema.safeParse({ type: 'stage_created', data: { stageArn: 'nope' } }).success, false);
  assert.equal(ServerMessageSchema.safeParse({ type: 'unknown', data: {} }).success, false);
});

test('viewer join response requires a playback description', () => {
  const base = {
    viewerId: 'v1',
    stageArn: localStageArn('a'),
    stageId: 'a',
    token: 't',
    expiresAt: new Date().toISOString(),
    heartbeatIntervalMs: 10000,
  };
  assert.equal(ViewerJoinResponseSchema.safeParse({ ...base, playback: { type: 'whep', url: 'http://127.0.0.1:3002/stages/a/whep' } }).success, true);
  assert.equal(ViewerJoinResponseSchema.safeParse({ ...base, playback: { type: 'ivs' } }).success, true);
  assert.equal(ViewerJoinResponseSchema.safeParse({ ...base, playback: { type: 'hls' } }).success, false);
});

test('every error code maps to a 4xx or 5xx and errors serialise to {error:{code,message}}', () => {
  for (const status of Object.values(ERROR_CODES)) assert.ok(status >= 400 && status < 600);
  const e = new StagecastError('CONFLICT', 'taken', { details: { x: 1 } });
  assert.equal(e.status, 409);
  assert.deepEqual(e.toBody(), { error: { code: 'CONFLICT', message: 'taken', details: { x: 1 } } });
});
