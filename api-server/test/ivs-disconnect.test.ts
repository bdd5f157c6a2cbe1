/**
 * On IVS a released or expired seat's viewer is disconnected (DisconnectParticipant), since IVS tokens outlive seats:
 * the disconnector alone against IVS mocked with aws-sdk-client-mock (rate, retries, dedupe, bound), then the API
 * Server end to end (leave → disconnect; missed heartbeats → disconnect).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import type { StageArn, ViewerId } from '@stagecast/protocol';
import { createLogger } from '../src/logger.js';
import { createIvsClient } from '../src/providers/ivs.js';
import { IVS_DISCONNECT_TPS, IvsParticipantDisconnector } from '../src/providers/ivs-disconnect.js';
import { Pacer } from '../src/providers/pacing.js';
import { apiKey, call, LogCapture, startApi } from './helpers/api.js';
import { awsError, FakeIvs } from './helpers/fake-ivs.js';
import { waitFor } from './helpers/wait.js';

const ivs = new FakeIvs();
after(() => ivs.restore());

function reset(): void {
  ivs.stages.clear();
  ivs.calls.length = 0;
  ivs.participants.clear();
}

function disconnector(maxQueue?: number) {
  const logs = new LogCapture();
  const log = createLogger('info', logs);
  const d = new IvsParticipantDisconnector(createIvsClient('us-east-1'), {
    pacer: new Pacer(IVS_DISCONNECT_TPS, log, { attempts: 5, baseDelayMs: 20, maxDelayMs: 100 }, 1),
    log,
    ...(maxQueue ? { maxQueue } : {}),
  });
  return { d, logs };
}

const vid = (n: number) => `v_viewer${n}` as ViewerId;

test('released seats are disconnected at IVS, never faster than 5 per second; a viewer queued twice is disconnected once', async () => {
  reset();
  const stage = ivs.addStage('stageA', { activeSessionId: 'st-1' }).arn as StageArn;
  const { d } = disconnector();
  for (let i = 0; i < 16; i++) d.released(vid(i), stage, 'left');
  d.released(vid(3), stage, 'expired'); // again, before its turn
  await d.idle();
  const calls = ivs.callsOf('DisconnectParticipant');
  assert.equal(calls.length, 16);
  assert.deepEqual(new Set(calls.map((c) => c.input.participantId)), new Set(Array.from({ length: 16 }, (_, i) => vid(i))));
  assert.ok(calls.every((c) => c.input.stageArn === stage && typeof c.input.reason === 'string'));
  assert.ok(ivs.maxInWindow(['DisconnectParticipant'], 990) <= IVS_DISCONNECT_TPS, `at most 5 in any second (got ${ivs.maxInWindow(['DisconnectParticipant'], 990)})`);
  assert.deepEqual(d.stats(), { queued: 0, disconnected: 16, alreadyGone: 0, failed: 0, dropped: 0 });
});

test('the participant id IVS assigned at join is the one disconnected; throttling is retried; a participant IVS no longer knows is a success', async () => {
  reset();
  const stage = ivs.addStage('stageB', { activeSessionId: 'st-1' }).arn as StageArn;
  const { d, logs } = disconnector();
  d.seated(vid(1), stage, 'ivsP41');
  ivs.failNext('DisconnectParticipant', 2, () => awsError('ThrottlingException', 'Rate exceeded'));
  d.released(vid(1), stage, 'expired');
  await d.idle();
  const calls = ivs.callsOf('DisconnectParticipant');
  assert.equal(calls.length, 3, 'two throttled attempts, then the call');
  assert.equal(calls[2]!.input.participantId, 'ivsP41');
  assert.match(calls[2]!.input.reason, /expired/);

  ivs.failNext('DisconnectParticipant', 1, () => awsError('ResourceNotFoundException', 'participant not found', 404));
  d.released(vid(2), stage, 'left');
  await d.idle();
  assert.equal(d.stats().alreadyGone, 1);
  ivs.failNext('DisconnectParticipant', 1, () => awsError('AccessDeniedException', 'not authorized', 403));
  d.released(vid(3), stage, 'left');
  await d.idle();
  assert.equal(d.stats().failed, 1);
  assert.ok(logs.lines().some((l) => l.msg === 'ivs.disconnect_failed' && /ivs:DisconnectParticipant/.test(String(l.err))), 'names the IAM permission');
});

test('the queue is bounded: past it the oldest are dropped and counted (their tokens still expire); stop() drops the rest', async () => {
  reset();
  const stage = ivs.addStage('stageC', { activeSessionId: 'st-1' }).arn as StageArn;
  const { d, logs } = disconnector(3);
  try {
    for (let i = 0; i < 8; i++) d.released(vid(i), stage, 'left');
    // The first was taken at once; 7 more arrived for 3 places.
    assert.equal(d.stats().dropped, 4);
    assert.equal(logs.lines().filter((l) => l.msg === 'ivs.disconnect_queue_full').length, 1);
    d.stop();
    await d.idle();
    assert.ok(ivs.callsOf('DisconnectParticipant').length <= 2);
    d.released(vid(9), stage, 'left');
    assert.equal(d.stats().queued, 0, 'nothing after stop()');
  } finally {
    d.stop();
  }
});

test('ivs end to end: a viewer who leaves and a viewer whose heartbeats stop are disconnected at IVS, by the participant id IVS gave them', async () => {
  reset();
  const api = await startApi({
    stageUrl: 'http://127.0.0.1:9',
    env: { STAGE_PROVIDER: 'ivs', AWS_REGION: 'us-east-1', STAGE_POOL_ID: 'pool-a', IVS_VIEWER_RECONCILE_INTERVAL_S: '0', MIN_STAGES: '1', VIEWER_HEARTBEAT_INTERVAL_MS: '1000' },
  });
  try {
    await waitFor(() => ivs.stages.size === 1 || undefined, { what: 'the IVS stage' });
    const join = async () => {
      const r = await call(`${api.url}/api/viewers/join`, { headers: apiKey, json: {} });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      return r.body as { viewerId: string; stageArn: string };
    };
    const arn = [...ivs.stages.keys()][0]!;
    const kicks = () => ivs.callsOf('DisconnectParticipant').filter((c) => c.input.stageArn === arn);
    const leaver = await join();
    const quiet = await join();
    const [pLeaver, pQuiet] = ivs.callsOf('CreateParticipantToken').map((c, i) => ({ userId: c.input.userId, participantId: `ivsP${i + 1}` }));
    assert.equal(pLeaver!.userId, leaver.viewerId);

    assert.equal((await call(`${api.url}/api/viewers/${leaver.viewerId}`, { method: 'DELETE', headers: apiKey })).status, 204);
    await waitFor(() => kicks().length >= 1 || undefined, { what: 'the leaver disconnected' });
    const first = kicks()[0]!.input;
    assert.deepEqual([first.stageArn, first.participantId], [leaver.stageArn, pLeaver!.participantId]);

    // No heartbeat from the other: after 3 intervals its seat expires, and so does its IVS connection.
    await waitFor(() => kicks().length >= 2 || undefined, { timeoutMs: 8000, what: 'the silent viewer disconnected' });
    const second = kicks()[1]!.input;
    assert.deepEqual([second.stageArn, second.participantId], [quiet.stageArn, pQuiet!.participantId]);
    assert.match(second.reason, /expired/);
  } finally {
    await api.stop();
  }
});
